"""Where probe runs execute: the executor interface and the local one.

An executor takes a RunRequest and returns the Run; it never touches the store
(the coordinating `Measurer` alone records runs). The local executor keeps one
worktree per slot, so `jobs` runs can be in flight at once, and gives each slot
its own `CUDA_VISIBLE_DEVICES` when GPUs are listed.
"""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol, runtime_checkable

from .model import Run, RunRequest
from .probe import run_probe


class Checkout(Protocol):
    path: Path

    def checkout(self, sha: str) -> None: ...


@runtime_checkable
class Executor(Protocol):
    jobs: int  # runs that may be in flight at once

    def run(self, request: RunRequest, *, artifacts_dir: Path, timeout: float | None,
            cancel: threading.Event) -> Run: ...


@runtime_checkable
class SignalsStarts(Protocol):
    """An executor that can tell when runs have started (their probe, or their task, sent)."""

    def wait_started(self, n: int, timeout: float) -> bool: ...

    def wait_idle(self, timeout: float) -> bool: ...


class StartCounter:
    """Counts started and finished runs across threads, and waits on either."""

    def __init__(self) -> None:
        self._started = self._finished = 0
        self._changed = threading.Condition()

    def started(self) -> None:
        with self._changed:
            self._started += 1
            self._changed.notify_all()

    def finished(self) -> None:
        with self._changed:
            self._finished += 1
            self._changed.notify_all()

    def wait_started(self, n: int, timeout: float) -> bool:
        """Wait until `n` runs in all have started, or `timeout` seconds; True if they have."""
        with self._changed:
            return self._changed.wait_for(lambda: self._started >= n, timeout)

    def wait_idle(self, timeout: float) -> bool:
        """Wait until no run is in flight, or `timeout` seconds; True if none is."""
        with self._changed:
            return self._changed.wait_for(lambda: self._finished >= self._started, timeout)


class LocalExecutor(StartCounter):
    """Runs probes as local processes, one per worktree slot."""

    def __init__(self, worktrees: Checkout | Sequence[Checkout],
                 gpus: Sequence[str] = ()) -> None:
        trees = list(worktrees) if isinstance(worktrees, Sequence) else [worktrees]
        self.jobs = len(trees)
        self._free: queue.SimpleQueue[tuple[int, Checkout]] = queue.SimpleQueue()
        for slot, tree in enumerate(trees):
            self._free.put((slot, tree))
        self.gpus = list(gpus)
        super().__init__()  # a run has started once it is handed to its probe process

    def run(self, request: RunRequest, *, artifacts_dir: Path, timeout: float | None,
            cancel: threading.Event) -> Run:
        slot, tree = self._free.get()  # a slot is free whenever a thread asks: jobs == threads
        try:
            env = None
            if self.gpus:
                env = dict(os.environ, CUDA_VISIBLE_DEVICES=self.gpus[slot % len(self.gpus)])
            tree.checkout(request.commit)
            self.started()
            try:
                return run_probe(request, tree.path, timeout=timeout,
                                 artifacts_dir=artifacts_dir, env=env, cancel=cancel,
                                 scratch=getattr(tree, "scratch", None))
            finally:
                self.finished()
        finally:
            self._free.put((slot, tree))
