"""Probe runs on a real Dask LocalCluster (two worker processes) over real git histories.

Each test checks the answer, where the probes ran, and that the user's
repository is exactly as it was. The probe command logs "<pid> <cwd>" when it
starts and PROBE_LOG logs "<commit> <seed>" when it finishes; paths are baked
into the command because workers do not see this process's environment.
"""

from __future__ import annotations

import os
import pickle
import re
import shlex
import signal
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

distributed = pytest.importorskip("distributed")

from gitrepo import History, git, probe_cmd, snapshot  # noqa: E402

from bisector import session  # noqa: E402
from bisector.dask_executor import (  # noqa: E402
    DaskExecutor,
    WorkerCache,
    _unpack,
    close_worker_caches,
    probe_task,
)
from bisector.errors import GitError, UsageError  # noqa: E402
from bisector.executors import Executor  # noqa: E402
from bisector.git_ops import BisectWorktree, GitRepo  # noqa: E402
from bisector.measure import Measurer  # noqa: E402
from bisector.model import Direction, RunRequest  # noqa: E402
from bisector.settings import FindSettings  # noqa: E402
from bisector.store import Store  # noqa: E402


def new_cluster(**extra: Any) -> Any:
    return distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                    dashboard_address=":0", **extra)


@pytest.fixture(scope="module")
def client() -> Iterator[Any]:
    with new_cluster() as cluster, distributed.Client(cluster, set_as_default=False) as c:
        yield c


def logged_probe(tmp_path: Path) -> tuple[str, Path, Path]:
    """A probe command that logs its start (pid, cwd) and, through PROBE_LOG, its finish."""
    starts, finishes = tmp_path / "starts.log", tmp_path / "finishes.log"
    cmd = (f'echo "$$ $PWD" >> {shlex.quote(str(starts))}; '
           f"PROBE_LOG={shlex.quote(str(finishes))} exec {probe_cmd()}")
    return cmd, starts, finishes


def lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def wait_for(check: Callable[[], Any], timeout: float = 15.0) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := check()):
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.05)
    return value


def worker_pid_of(cwd: str) -> int:
    """The worker process whose cache holds this checkout (bisector-dask-<pid>-...)."""
    m = re.search(r"bisector-dask-(\d+)-", cwd)
    assert m, cwd
    return int(m.group(1))


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_runs_on_workers_match_local_runs(client: Any, tmp_path: Path) -> None:
    # c1 (0.9) -- c2 (0.8) -- c3 (0.5), each value with seed noise
    h = History(tmp_path / "repo")
    shas = h.linear([0.9, 0.8, 0.5], noise=0.05)
    before = snapshot(h.path)
    cmd, starts, finishes = logged_probe(tmp_path)
    cache = tmp_path / "cache"
    wanted = [(sha, seed) for sha in shas for seed in (0, 1)]

    with Store(tmp_path / "dask.db") as store, \
            DaskExecutor(client, str(h.path), cache_dir=str(cache)) as ex:
        assert isinstance(ex, Executor)
        assert ex.jobs == 2  # two workers of one thread each
        m = Measurer(store, ex, cmd, hunt_id=store.start_hunt("find", {}),
                     artifacts_root=tmp_path / "artifacts")
        assert not ex.wait_started(1, timeout=0.01)
        remote = m.measure_many(wanted)
        assert m.probe_runs == 6
        assert ex.wait_started(6, timeout=0) and not ex.wait_started(7, timeout=0.01)
        # runs in parallel may start in either order: compare them by seed
        stored = sorted((r.request for r in store.runs_at(shas[1])), key=lambda q: q.seed)
        assert stored == [r.request for r in remote[2:4]]
    dask_starts = lines(starts)
    assert len(dask_starts) == 6
    assert all(cwd.startswith(str(cache)) for cwd in (s.split(" ", 1)[1] for s in dask_starts))
    assert len({worker_pid_of(s) for s in dask_starts}) == 2  # both workers took runs

    with Store(tmp_path / "local.db") as store, BisectWorktree(GitRepo(h.path), shas[-1]) as wt:
        m = Measurer(store, [wt], cmd, hunt_id=store.start_hunt("find", {}),
                     artifacts_root=tmp_path / "local-artifacts")
        local = [m.measure(c, s) for c, s in wanted]

    def seen(runs: list[Any]) -> list[Any]:
        return [(r.request, r.outcome, dict(r.metrics), dict(r.config)) for r in runs]

    assert seen(remote) == seen(local)
    assert len({r.metrics["ssim"] for r in remote}) == 6  # seeds and commits all differ
    assert snapshot(h.path) == before


def test_find_session_hunts_on_the_cluster(client: Any, tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    # c1 .. c6 (0.9) -> c7 .. c15 (0.6): first bad is c7
    h = History(tmp_path / "repo")
    shas = h.linear([0.9] * 6 + [0.6] * 9)
    before = snapshot(h.path)
    cmd, starts, finishes = logged_probe(tmp_path)
    cache = tmp_path / "cache"
    ex = DaskExecutor(client, str(h.path), cache_dir=str(cache))
    # The seam: the session keeps its worktree for git's bisect log, probes go to the cluster.
    monkeypatch.setattr(session, "Measurer",
                        lambda store, _trees, *a, **k: Measurer(store, ex, *a, **k))
    settings = FindSettings(repo=h.path, good=shas[0], bad=shas[-1], metrics=("ssim",),
                            direction=Direction.HIGHER, probe=cmd, attribute=False,
                            store=tmp_path / "store.db", out=tmp_path / "report")
    result = session.FindSession(settings).run()
    assert result["status"] == "found"
    assert result["first_bad"]["commit"] == shas[6]
    assert result["first_bad"]["mean"] == pytest.approx(0.6)
    assert result["probe_runs"] == len(lines(finishes)) > 0
    assert all(s.split(" ", 1)[1].startswith(str(cache)) for s in lines(starts))
    assert snapshot(h.path) == before


def test_worker_killed_mid_probe_reruns_elsewhere(tmp_path: Path) -> None:
    h = History(tmp_path / "repo")
    shas = h.linear([0.9, 0.4], slow=2)  # each probe sleeps 2 s before it reports
    before = snapshot(h.path)
    cmd, starts, finishes = logged_probe(tmp_path)
    cache = tmp_path / "cache"
    with new_cluster(resources={"GPU": 1}) as cluster, \
            distributed.Client(cluster, set_as_default=False) as client:
        # retries=0: a rerun can only come from the scheduler rescheduling a lost worker's task.
        ex = DaskExecutor(client, str(h.path), cache_dir=str(cache), resources={"GPU": 1},
                          retries=0)
        assert ex.jobs == 2  # one GPU on each worker
        with ThreadPoolExecutor(1) as pool:
            pending = pool.submit(ex.run, RunRequest(shas[1], cmd, 3),
                                  artifacts_dir=tmp_path / "art", timeout=60,
                                  cancel=threading.Event())
            first = wait_for(lambda: lines(starts))[0]
            victim = worker_pid_of(first)
            assert victim in client.run(os.getpid).values()
            os.kill(victim, signal.SIGKILL)
            run = pending.result(timeout=60)
        assert run.ok and run.value("ssim") == pytest.approx(0.4)
        started = lines(starts)
        assert len(started) == 2 and worker_pid_of(started[1]) != victim
        # The orphaned probe (it would have finished first) was killed with its worker.
        assert lines(finishes) == [f"{shas[1]} 3"]
        assert not alive(int(first.split()[0]))
        wait_for(lambda: not any(p.name.startswith(f"bisector-dask-{victim}-")
                                 for p in cache.iterdir()))
    wait_for(lambda: not any(cache.iterdir()))  # workers gone: their caches too
    assert snapshot(h.path) == before


def test_cancel_stops_the_probe_on_the_worker(client: Any, tmp_path: Path) -> None:
    h = History(tmp_path / "repo")
    hang = h.commit(value=0.9, hang=True)
    fine = h.commit(value=0.7)
    cmd, starts, _ = logged_probe(tmp_path)
    ex = DaskExecutor(client, str(h.path), cache_dir=str(tmp_path / "cache"))
    cancel = threading.Event()
    with ThreadPoolExecutor(1) as pool:
        pending = pool.submit(ex.run, RunRequest(hang, cmd, 0), artifacts_dir=tmp_path / "a",
                              timeout=None, cancel=cancel)
        probe_pid = int(wait_for(lambda: lines(starts))[0].split()[0])
        assert alive(probe_pid)
        cancel.set()
        with pytest.raises(KeyboardInterrupt):
            pending.result(timeout=20)
    wait_for(lambda: not alive(probe_pid), timeout=10)
    # The worker lives on and runs the next probe.
    run = ex.run(RunRequest(fine, cmd, 0), artifacts_dir=tmp_path / "b", timeout=30,
                 cancel=threading.Event())
    assert run.value("ssim") == pytest.approx(0.7)


def test_repository_url_is_cloned_by_workers(client: Any, tmp_path: Path) -> None:
    h = History(tmp_path / "origin")
    first = h.commit(value=0.7)
    cmd, starts, _ = logged_probe(tmp_path)
    ex = DaskExecutor(client, h.path.as_uri(), cache_dir=str(tmp_path / "cache"))
    assert ex.repo == h.path.as_uri()
    runs = [ex.run(RunRequest(first, cmd, 0), artifacts_dir=tmp_path / "a", timeout=30,
                   cancel=threading.Event())]
    later = h.commit(value=0.3)  # pushed after a worker cloned: fetched on demand
    runs.append(ex.run(RunRequest(later, cmd, 0), artifacts_dir=tmp_path / "b", timeout=30,
                       cancel=threading.Event()))
    assert [r.value("ssim") for r in runs] == pytest.approx([0.7, 0.3])


def test_resources_no_worker_offers_are_a_usage_error(client: Any, tmp_path: Path) -> None:
    h = History(tmp_path / "repo")
    h.commit(value=0.5)
    with pytest.raises(UsageError, match="GPU=1"):
        DaskExecutor(client, str(h.path), resources={"GPU": 1})


def test_worker_cache_fetches_new_commits_and_refuses_unknown_ones(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    h = History(tmp_path / "origin")
    first = h.commit(value=0.7)
    url = h.path.as_uri()
    cache = WorkerCache(tmp_path / "cache")
    try:
        slot = cache.acquire(url, first)
        assert '"value": 0.7' in (slot.path / "behavior.json").read_text()
        (slot.path / "leftover.txt").write_text("from the last probe")
        cache.release(slot)
        later = h.commit(value=0.3)
        again = cache.acquire(url, later)
        assert again.path == slot.path  # the checkout is reused, cleaned and moved on
        assert '"value": 0.3' in (again.path / "behavior.json").read_text()
        assert not (again.path / "leftover.txt").exists()
        cache.release(again)
        # A commit on no ref of the origin is asked for by its name.
        unreferenced = h.commit(value=0.1)
        git(h.path, "reset", "-q", "--hard", later)
        slot = cache.acquire(url, unreferenced)
        assert '"value": 0.1' in (slot.path / "behavior.json").read_text()
        cache.release(slot)
        with pytest.raises(GitError, match="push it"):
            cache.acquire(url, "0123456789" * 4)  # exists nowhere
        # A commit found once is not looked up (nor fetched) again.
        looked: list[str] = []
        monkeypatch.setattr("bisector.dask_executor._has_commit",
                            lambda mirror, sha: looked.append(sha) or True)
        cache.release(cache.acquire(url, later))
        assert looked == []
    finally:
        cache.close()
    assert not cache.top.exists()


def test_artifacts_come_back_when_the_folder_is_not_shared(tmp_path: Path) -> None:
    h = History(tmp_path / "repo")
    sha = h.commit(value=0.5)
    before = snapshot(h.path)
    cmd = ('echo hello > "$BISECTOR_ARTIFACTS/note.txt"; mkdir "$BISECTOR_ARTIFACTS/sub"; '
           f'echo x > "$BISECTOR_ARTIFACTS/sub/y.txt"; {probe_cmd()}')
    cache = tmp_path / "cache"
    try:
        elsewhere = tmp_path / "coordinator" / "artifacts" / "run-1"  # not visible "here"
        run, files = probe_task(str(h.path / ".git"), RunRequest(sha, cmd, 0), 30,
                                str(elsewhere), str(cache), "task-1")
        assert run.ok and run.value("ssim") == 0.5
        assert dict(files or []) == {"note.txt": b"hello\n", "sub/y.txt": b"x\n"}
        assert pickle.loads(pickle.dumps(run)) == run
        _unpack([*(files or []), ("../escape.txt", b"no")], elsewhere)
        assert (elsewhere / "sub" / "y.txt").read_bytes() == b"x\n"
        assert not (elsewhere.parent / "escape.txt").exists()

        shared = tmp_path / "shared"
        shared.mkdir()
        run, files = probe_task(str(h.path / ".git"), RunRequest(sha, cmd, 1), 30,
                                str(shared), str(cache), "task-2")
        assert files is None and run.artifacts == str(shared)
        assert (shared / "note.txt").read_text() == "hello\n"
    finally:
        close_worker_caches()
    assert list(cache.iterdir()) == []
    assert snapshot(h.path) == before
