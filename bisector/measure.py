"""One gate for every probe run of a hunt: reuse from the store, or run and record.

`Measurer.measure` is the only way the search and attribution obtain a run. It
checks the store first (so a resumed hunt repeats nothing), materializes the
commit in the hunt's worktree, runs the probe, stores the run at once (so a
killed hunt loses nothing), retries a failed run once, and refuses a run whose
reported config contradicts a pin. It counts what it did, for budgets and tests.

OK and skip (exit 125) runs are answers and are reused; failed, timed-out and invalid
runs are not: each invocation tries again (once more on failure), since the usual fix for
them (a longer --timeout, a mended environment or probe) is outside what the store keys.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from .errors import ProbeFailedAtEndpoint, ProbeProtocolError, UsageError
from .executors import Checkout, Executor, LocalExecutor
from .model import Outcome, Run, RunRequest
from .settings import same_value
from .store import Store

MAX_ATTEMPTS = 2  # a failed run is retried once, then the commit is untestable


class Measurer:
    def __init__(
        self,
        store: Store,
        runner: Executor | Checkout | Sequence[Checkout],
        command: str,
        *,
        hunt_id: str,
        artifacts_root: Path,
        pins: Mapping[str, Any] | None = None,
        timeout: float | None = None,
    ) -> None:
        self.store = store
        # Worktrees are run on locally; anything else is an executor (e.g. a Dask cluster).
        self.executor = runner if isinstance(runner, Executor) else LocalExecutor(runner)
        self.command = command
        self.hunt_id = hunt_id
        self.artifacts_root = artifacts_root
        self.pins = dict(pins or {})
        self.timeout = timeout
        self.probe_runs = 0  # runs actually executed by this measurer
        self.failed_runs = 0  # of them, runs that failed (retries included; exit 125 aside)
        self.reused = 0  # requests answered from the store, this measurer's own runs included
        self._made: set[int] = set()  # run ids this measurer executed
        self._read: set[int] = set()  # run ids it answered from the store
        self._failures: dict[tuple[str, str, int, str], int] = {}  # failed tries, this process
        self._lock = threading.Lock()  # counters and callbacks, from worker threads
        self._cancel = threading.Event()

    def request(self, commit: str, seed: int, overrides: Mapping[str, Any] | None = None
                ) -> RunRequest:
        return RunRequest(commit, self.command, seed, {**(overrides or {}), **self.pins})

    def measure(self, commit: str, seed: int, overrides: Mapping[str, Any] | None = None,
                *, role: str = "search") -> Run:
        """The run of the probe at `commit` with `seed` and the pins plus `overrides`.

        Returns an OK or SKIP run, or the last failed attempt once retries are spent.
        """
        request = self.request(commit, seed, overrides)
        stored = self.store.reusable_run(request)
        if stored is not None:
            return self._done(stored, role, reused=True)
        key = (request.commit, request.command, request.seed, request.overrides_key)
        with self._lock:
            attempts = self._failures.get(key, 0)
        if attempts >= MAX_ATTEMPTS:
            return self._done(self.store.runs_for(request)[-1], role, reused=True)
        # attempts are numbered after every stored failure: no earlier artifacts overwritten
        stored_failures = self.store.failed_attempts(request)
        while True:
            run = self._execute(request, attempt=stored_failures + attempts)
            self._done(run, role, reused=False)
            if run.outcome in (Outcome.OK, Outcome.SKIP):
                return run
            attempts += 1
            with self._lock:
                self._failures[key] = attempts
            if attempts >= MAX_ATTEMPTS:
                return run

    @property
    def read_back(self) -> int:
        """Distinct stored runs reused that earlier invocations made (on a fresh store: 0)."""
        with self._lock:
            return len(self._read - self._made)

    def measure_many(self, wanted: Iterable[tuple[str, int]],
                     overrides: Mapping[str, Any] | None = None, *,
                     role: str | Sequence[str] = "search") -> list[Run]:
        """`measure` for each (commit, seed), up to one run per worktree at a time.

        `role` is the role of every run, or one role per run.
        """
        wanted = list(wanted)
        roles = [role] * len(wanted) if isinstance(role, str) else list(role)
        jobs = [(c, s, r) for (c, s), r in zip(wanted, roles, strict=True)]
        if self.executor.jobs == 1 or len(wanted) <= 1:
            return [self.measure(c, s, overrides, role=r) for c, s, r in jobs]
        with ThreadPoolExecutor(max_workers=self.executor.jobs) as pool:
            futures = [pool.submit(self.measure, c, s, overrides, role=r) for c, s, r in jobs]
            try:
                return [f.result() for f in futures]
            except BaseException:
                self._cancel.set()  # Ctrl-C or an error: stop the runs still in flight
                for f in futures:
                    f.cancel()
                raise

    def _execute(self, request: RunRequest, attempt: int) -> Run:
        run = self.executor.run(request, artifacts_dir=self._artifacts_dir(request, attempt),
                                timeout=self.timeout, cancel=self._cancel)
        run = self.store.add_run(run)
        with self._lock:
            self.probe_runs += 1
            self.failed_runs += run.outcome not in (Outcome.OK, Outcome.SKIP)
        if run.ok:
            self._check_pins(run)
        return run

    def _done(self, run: Run, role: str, *, reused: bool) -> Run:
        assert run.run_id is not None
        self.store.link_run(self.hunt_id, run.run_id, role)
        if reused and run.ok:
            self._check_pins(run)
        with self._lock:
            self.reused += reused
            (self._read if reused else self._made).add(run.run_id)
        return run

    def _check_pins(self, run: Run) -> None:
        for key, asked in self.pins.items():
            if key in run.config and not same_value(run.config[key], asked):
                raise ProbeProtocolError(
                    f"at {run.request.commit[:8]} the probe ignored --pin {key}: asked for "
                    f"{json.dumps(asked)}, it reported {json.dumps(run.config[key])}; make "
                    "the probe apply BISECTOR_OVERRIDES to its config")

    def _artifacts_dir(self, request: RunRequest, attempt: int) -> Path:
        digest = hashlib.sha1(
            f"{request.command}\0{request.overrides_key}".encode()).hexdigest()[:10]
        return self.artifacts_root / f"{request.commit[:12]}-s{request.seed}-{digest}-{attempt}"


def require_measurement(run: Run, metrics: Sequence[str], where: str, hint: str) -> None:
    """Raise unless `run` measured every metric: at an endpoint nothing else will do.

    `where` names the commit's role ("the good commit"), `hint` what to do on failure.
    """
    sha = run.request.commit[:8]
    if run.outcome is Outcome.OK:
        missing = [name for name in metrics if name not in run.metrics]
        if missing:
            reported = ", ".join(sorted(run.metrics)) or "none"
            raise ProbeProtocolError(f"the probe did not report {', '.join(map(repr, missing))} "
                                     f"at {sha}; it reported: {reported}")
        return
    if run.outcome is Outcome.INVALID:
        raise ProbeProtocolError(f"at {where} {sha}: {run.error}")
    if "not found" in run.error and run.exit_code == 127:
        raise UsageError(run.error)
    if run.outcome is Outcome.SKIP:
        raise ProbeFailedAtEndpoint(f"the probe says {where} {sha} cannot be tested (exit 125): "
                                    f"{hint}", run.output_tail)
    raise ProbeFailedAtEndpoint(f"the probe fails at {where} {sha}: {run.error}; {hint}",
                                run.output_tail)
