"""Probe runs on a Dask cluster: the coordinator's executor and the worker's task.

`DaskExecutor.run` sends one self-contained task per RunRequest to the cluster
and waits for it, cancellably; like every executor it never touches the store
(the `Measurer` alone records runs). On a worker, `probe_task` materializes the
commit in a cache private to the worker process (a mirror clone of the
repository, `--shared` when it is a path the worker can see, with one checkout
per task running at once), runs the probe through `probe.run_probe`, and
returns the Run, plus the probe's artifacts when the coordinator's folder is
not visible from the worker. Workers add no worktree and no ref to the user's
repository: on a shared file system, a `git worktree prune` on another machine
would break a worktree whose path only exists on this one. A watchdog process
removes the cache, and kills probes still running in it, when the worker
process dies; the scheduler then runs the lost task again on another worker.
"""

from __future__ import annotations

import atexit
import dataclasses
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import uuid
from pathlib import Path, PurePosixPath
from typing import Any

import distributed

from .errors import BisectorError, GitError, UsageError
from .executors import StartCounter
from .git_ops import GitRepo, _run_git
from .model import Run, RunRequest
from .probe import run_probe

ARTIFACTS_LIMIT = 64 << 20  # bytes of artifacts one task may send back to the coordinator
_POLL = 0.1  # seconds between looks at the cancel event while a task runs

Files = list[tuple[str, bytes]]  # (path relative to the artifacts folder, content)


class ExecutorError(BisectorError):
    """The cluster could not run a probe task (a failing probe is a Run, not this)."""


# ---------------------------------------------------------------- coordinator


class DaskExecutor(StartCounter):
    """Runs each probe as a task on a Dask cluster. Use as a context manager.

    `scheduler` is an address (`tcp://host:8786`; the executor opens and closes
    its own client) or a `distributed.Client` (left open). `repo` is a path the
    workers see at the same place (shared file system) or a URL they can clone.
    `jobs` defaults to how many tasks the cluster can run at once now.
    `resources` (e.g. {"GPU": 1}) is asked of the scheduler for every task.
    `retries` reruns a task that raised (a lost worker is rerun by the scheduler
    itself, up to its `allowed-failures`).
    """

    def __init__(self, scheduler: str | distributed.Client, repo: str, *,
                 jobs: int | None = None, resources: dict[str, float] | None = None,
                 cache_dir: str | None = None, retries: int = 1) -> None:
        super().__init__()  # a run has started once its task is submitted
        self._owns_client = isinstance(scheduler, str)
        if isinstance(scheduler, str):
            try:
                self.client = distributed.Client(  # type: ignore[no-untyped-call]
                    scheduler, set_as_default=False)
            except (OSError, TimeoutError) as exc:
                raise UsageError(f"cannot reach the Dask scheduler at {scheduler}: {exc}; "
                                 "check --scheduler") from None
        else:
            self.client = scheduler
        self.resources = dict(resources or {})
        self.cache_dir = cache_dir
        self.retries = retries
        try:
            self.repo = _repo_source(repo)
            self.jobs = jobs if jobs is not None else self._capacity()
        except BaseException:
            self.close()
            raise

    def __enter__(self) -> DaskExecutor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._owns_client:
            self.client.close()  # type: ignore[no-untyped-call]

    def _capacity(self) -> int:
        """Tasks the cluster can run at once: threads, or units of the asked resources."""
        workers = self.client.scheduler_info(n_workers=-1)["workers"].values()
        total = 0
        for w in workers:
            slots = int(w.get("nthreads", 1))
            for name, need in self.resources.items():
                slots = min(slots, int(float(w.get("resources", {}).get(name, 0)) // need))
            total += slots
        if total == 0 and workers and self.resources:
            asked = ", ".join(f"{k}={v:g}" for k, v in self.resources.items())
            raise UsageError(f"no worker of the Dask cluster offers {asked}: start workers "
                             f"with `dask worker ... --resources \"{asked}\"`")
        return max(total, 1)  # no worker yet (an adaptive cluster): one until told --jobs

    def run(self, request: RunRequest, *, artifacts_dir: Path, timeout: float | None,
            cancel: threading.Event) -> Run:
        if cancel.is_set():
            raise KeyboardInterrupt
        artifacts_dir = artifacts_dir.absolute()
        # Made here, so a worker that sees this folder knows it shares our file system.
        artifacts_dir.mkdir(parents=True, exist_ok=True)
        key = f"bisector-probe-{request.commit[:12]}-{uuid.uuid4().hex}"
        future = self.client.submit(
            probe_task, self.repo, request, timeout, str(artifacts_dir), self.cache_dir, key,
            key=key, pure=False, retries=self.retries, resources=self.resources or None)
        self.started()
        try:
            return self._wait(future, key, artifacts_dir, cancel, request)
        finally:
            self.finished()

    def _wait(self, future: distributed.Future[Any], key: str, artifacts_dir: Path,
              cancel: threading.Event, request: RunRequest) -> Run:
        run: Run
        try:
            finished = threading.Event()
            future.add_done_callback(lambda _: finished.set())  # type: ignore[no-untyped-call]
            while not finished.wait(_POLL):
                if cancel.is_set():
                    raise KeyboardInterrupt
            run, files = future.result()
        except distributed.KilledWorker as exc:
            raise ExecutorError(f"probe at {request.commit[:8]} killed every Dask worker that "
                                f"ran it ({exc}); check the workers' memory and logs") from None
        except BisectorError:
            raise
        except Exception as exc:
            raise ExecutorError(f"probe task at {request.commit[:8]} failed on the cluster: "
                                f"{type(exc).__name__}: {exc}; check that the workers run the "
                                "same bisector[dask] as here") from exc
        except BaseException:
            self._stop(future, key)  # Ctrl-C or a cancelled hunt: no probe left running
            raise
        if files is not None:
            _unpack(files, artifacts_dir)
            run = dataclasses.replace(run, artifacts=str(artifacts_dir))
        return run

    def _stop(self, future: distributed.Future[Any], key: str) -> None:
        future.cancel()  # type: ignore[no-untyped-call]
        try:
            self.client.run(cancel_task, key, on_error="ignore")
        except Exception:  # a cluster already gone has no probe to stop
            pass


def _repo_source(repo: str) -> str:
    """The git directory of a local repository (what a worker clones), or the URL as given."""
    path = Path(repo).expanduser()
    if "://" in repo or not path.exists():
        return repo
    return str(GitRepo(path).common_dir)


def _unpack(files: Files, folder: Path) -> None:
    for name, data in files:
        rel = PurePosixPath(name)
        if rel.is_absolute() or ".." in rel.parts:
            continue  # sent by a worker; never write outside the folder
        target = folder.joinpath(*rel.parts)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)


# ---------------------------------------------------------------- worker


def probe_task(repo: str, request: RunRequest, timeout: float | None, artifacts_dir: str,
               cache_dir: str | None, key: str) -> tuple[Run, Files | None]:
    """Run one probe on this worker: check the commit out, run it, return (run, artifacts).

    Artifacts come back only when `artifacts_dir` is not visible here (no shared
    file system); otherwise the probe writes straight into it and they are None.
    """
    cancel = _register(key)
    cache = worker_cache(cache_dir)
    try:
        slot = cache.acquire(repo, request.commit)
        try:
            shared = Path(artifacts_dir)
            local = not (shared.is_dir() and os.access(shared, os.W_OK | os.X_OK))
            folder = cache.top / "artifacts" / shared.name if local else shared
            try:
                run = run_probe(request, slot.path, timeout=timeout, artifacts_dir=folder,
                                cancel=cancel)
            except KeyboardInterrupt:
                # The coordinator cancelled; a plain exception keeps the worker alive.
                raise ExecutorError(f"probe task {key} cancelled") from None
        finally:
            cache.release(slot)
        if not local:
            return run, None
        return _pack(folder, run)
    finally:
        with _REGISTRY_LOCK:
            _RUNNING.pop(key, None)


def _pack(folder: Path, run: Run) -> tuple[Run, Files | None]:
    files: Files = []
    size = 0
    for path in sorted(folder.rglob("*")):
        if path.is_file() and not path.is_symlink():
            size += path.stat().st_size
            if size > ARTIFACTS_LIMIT:
                # Too big to send: keep them on this machine and record where.
                kept = Path(tempfile.gettempdir()) / "bisector-artifacts" / folder.name
                shutil.rmtree(kept, ignore_errors=True)
                kept.parent.mkdir(parents=True, exist_ok=True)
                shutil.move(str(folder), kept)
                return dataclasses.replace(run, artifacts=str(kept)), None
            files.append((path.relative_to(folder).as_posix(), path.read_bytes()))
    shutil.rmtree(folder, ignore_errors=True)
    return run, files


_RUNNING: dict[str, threading.Event] = {}  # key -> cancel event of a task running here
_CANCELLED: set[str] = set()  # keys cancelled before they started here
_REGISTRY_LOCK = threading.Lock()


def _register(key: str) -> threading.Event:
    event = threading.Event()
    with _REGISTRY_LOCK:
        if key in _CANCELLED:
            _CANCELLED.discard(key)
            event.set()
        _RUNNING[key] = event
    return event


def cancel_task(key: str) -> bool:
    """Stop the probe of task `key` if it runs in this process (sent by `Client.run`)."""
    with _REGISTRY_LOCK:
        event = _RUNNING.get(key)
        if event is None:
            _CANCELLED.add(key)
            return False
    event.set()
    return True


# A separate process, so it outlives a worker killed with SIGKILL: when the
# worker's end of the pipe closes, it kills the probes still working in the
# cache (their own process groups; a non-leader only by itself) and removes it.
_WATCHDOG = r"""
import os, shutil, signal, sys
top = os.path.realpath(sys.argv[1])
sys.stdin.read()
for pid in (os.listdir("/proc") if os.path.isdir("/proc") else []):
    try:
        cwd = os.readlink(f"/proc/{pid}/cwd")
    except (OSError, ValueError):
        continue
    if cwd == top or cwd.startswith(top + os.sep):
        try:
            if os.getpgid(int(pid)) == int(pid):
                os.killpg(int(pid), signal.SIGKILL)
            else:
                os.kill(int(pid), signal.SIGKILL)
        except OSError:
            pass
shutil.rmtree(top, ignore_errors=True)
"""


@dataclasses.dataclass
class _Slot:
    """One checkout of a mirror; one task at a time uses it."""

    repo: str
    path: Path
    ceiling: Path
    head: str = ""

    def checkout(self, sha: str) -> None:
        """Hold exactly `sha`, discarding what the previous probe left behind."""
        if self.head != sha:
            _run_git(["checkout", "--force", "--detach", "--quiet", sha], self.path,
                     ceiling=self.ceiling)
            self.head = sha
        else:
            _run_git(["reset", "--hard", "--quiet"], self.path, ceiling=self.ceiling)
        _run_git(["clean", "-ffdxq"], self.path, ceiling=self.ceiling)


class WorkerCache:
    """This worker process's mirrors and checkouts, in one folder gone when the process is."""

    def __init__(self, parent: Path) -> None:
        parent.mkdir(parents=True, exist_ok=True)
        self.top = Path(tempfile.mkdtemp(prefix=f"bisector-dask-{os.getpid()}-", dir=parent))
        self._watchdog: subprocess.Popen[bytes] | None = subprocess.Popen(
            # -I -S: it needs the standard library only, so it skips site-packages
            [sys.executable, "-I", "-S", "-c", _WATCHDOG, str(self.top)], stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd="/",
            start_new_session=True)
        self._lock = threading.Lock()  # mirrors, fetches and the slot lists
        self._mirrors: dict[str, Path] = {}
        self._seen: set[tuple[str, str]] = set()  # (repo, sha) known to be in its mirror
        self._free: dict[str, list[_Slot]] = {}
        self._made = 0

    def acquire(self, repo: str, sha: str) -> _Slot:
        with self._lock:
            mirror = self._mirror(repo, sha)
            free = self._free.setdefault(repo, [])
            if not free:  # a new checkout holds exactly `sha` already
                self._made += 1
                slot = _Slot(repo, self.top / f"wt-{self._made}", self.top, head=sha)
                _run_git(["worktree", "add", "--detach", "--quiet", str(slot.path), sha],
                         mirror, ceiling=self.top)
                return slot
            slot = free.pop()
        slot.checkout(sha)
        return slot

    def release(self, slot: _Slot) -> None:
        with self._lock:
            self._free.setdefault(slot.repo, []).append(slot)

    def _mirror(self, repo: str, sha: str) -> Path:
        """The mirror clone of `repo` in this cache, holding commit `sha` (lock held)."""
        mirror = self._mirrors.get(repo)
        if mirror is None:
            mirror = self.top / f"repo-{hashlib.sha1(repo.encode()).hexdigest()[:12]}.git"
            # A path: borrow its objects (alternates), so its new commits appear here at once.
            local = "://" not in repo and Path(repo).exists()
            args = ["clone", "--mirror", "--quiet", *(["--shared"] if local else [])]
            try:
                _run_git([*args, repo, str(mirror)], self.top, ceiling=self.top)
            except GitError as exc:
                raise GitError(f"worker cannot clone {repo} ({exc}): give the workers a path "
                               "on a shared file system or a URL they can fetch (--remote)"
                               ) from None
            self._mirrors[repo] = mirror
        if (repo, sha) in self._seen:
            return mirror
        if not _has_commit(mirror, sha):
            _run_git(["fetch", "--quiet", "origin"], mirror, check=False, ceiling=self.top)
        if not _has_commit(mirror, sha):  # not on any ref: ask for it by name
            _run_git(["fetch", "--quiet", "origin", sha], mirror, check=False, ceiling=self.top)
        if not _has_commit(mirror, sha):
            raise GitError(f"commit {sha[:8]} is not in {repo} as the worker sees it: "
                           "push it there")
        self._seen.add((repo, sha))  # commits do not leave a mirror: no need to look again
        return mirror

    def close(self) -> None:
        shutil.rmtree(self.top, ignore_errors=True)
        if self._watchdog is not None:
            assert self._watchdog.stdin is not None
            self._watchdog.stdin.close()  # its work is done; it only finds an empty place
            self._watchdog.wait()
            self._watchdog = None


def _has_commit(mirror: Path, sha: str) -> bool:
    proc = _run_git(["cat-file", "-e", f"{sha}^{{commit}}"], mirror, check=False)
    return proc.returncode == 0


_CACHES: dict[str, WorkerCache] = {}  # one per cache folder in this process
_CACHES_LOCK = threading.Lock()


def worker_cache(cache_dir: str | None) -> WorkerCache:
    """This process's cache under `cache_dir` (default: the temp folder), made once."""
    parent = cache_dir or tempfile.gettempdir()
    with _CACHES_LOCK:
        cache = _CACHES.get(parent)
        if cache is None:
            if not _CACHES:
                atexit.register(close_worker_caches)
            cache = _CACHES[parent] = WorkerCache(Path(parent))
        return cache


def close_worker_caches() -> None:
    """Remove this process's caches (at exit; the watchdog covers a killed process)."""
    with _CACHES_LOCK:
        caches = list(_CACHES.values())
        _CACHES.clear()
    for cache in caches:
        cache.close()

