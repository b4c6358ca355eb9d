"""--jobs and --executor dask through the CLI, on real histories with real probes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from gitrepo import History, probe_cmd, run_cli


def hunt(repo: Path, good: str, *extra: str) -> dict:
    proc = run_cli("find", "--repo", str(repo), "--good", good, "--metric", "ssim",
                   "--probe", probe_cmd(), "--json", "--no-attribute",
                   "--store", str(repo.parent / f"store{'-'.join(extra)}.sqlite"), *extra)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_jobs_1_and_4_find_the_same_culprit(tmp_path: Path) -> None:
    # c1 .. c37 (0.9) -> c38 .. c80 (0.5), deterministic probe
    h = History(tmp_path / "repo")
    shas = h.linear([0.9] * 37 + [0.5] * 43)
    one = hunt(h.path, shas[0], "--jobs", "1")
    four = hunt(h.path, shas[0], "--jobs", "4")
    assert one["first_bad"]["commit"] == four["first_bad"]["commit"] == shas[37]
    assert one["first_bad"]["mean"] == four["first_bad"]["mean"]
    assert one["first_bad"]["parent_mean"] == four["first_bad"]["parent_mean"]
    # four at a time costs some runs, never many: multisection
    assert four["probe_runs"] <= 3 * one["probe_runs"]


def test_dask_local_cluster_runs_a_real_hunt(tmp_path: Path) -> None:
    distributed = pytest.importorskip("distributed")
    h = History(tmp_path / "repo")
    shas = h.linear([0.9] * 9 + [0.5] * 11, noise=0.02)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster:
        result = hunt(h.path, shas[0], "--executor", "dask", "--scheduler",
                      cluster.scheduler_address)
    assert result["status"] == "found"
    assert result["first_bad"]["commit"] == shas[9]
    assert result["first_bad"]["confidence"] >= 0.99


def test_dask_without_scheduler_is_a_usage_error(tmp_path: Path) -> None:
    h = History(tmp_path / "repo")
    shas = h.linear([0.9, 0.5])
    proc = run_cli("find", "--repo", str(h.path), "--good", shas[0], "--metric", "ssim",
                   "--probe", probe_cmd(), "--executor", "dask")
    assert proc.returncode == 2 and "--scheduler" in proc.stderr


class _Here:
    """A checkout that stays where it is: these probes read no commit."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def checkout(self, sha: str) -> None:
        pass


@pytest.mark.parametrize("seconds, runs, hides", [(0.0, 3, False), (1.0, 1, True)])
def test_imports_wait_for_probes_long_enough_to_hide_them(tmp_path: Path, seconds: float,
                                                          runs: int, hides: bool) -> None:
    # beside runs of a tenth of a second the preload's imports slowed each run by as much
    # again: they go ahead only while a run stays in flight
    import threading

    from bisector.executors import LocalExecutor
    from bisector.model import RunRequest
    from bisector.session import _probes_run_long

    ex = LocalExecutor(_Here(tmp_path))
    answer: list[bool] = []
    waiter = threading.Thread(target=lambda: answer.append(_probes_run_long(ex, 1)))
    waiter.start()
    for seed in range(runs):
        ex.run(RunRequest("0" * 40, f"sleep {seconds}", seed),
               artifacts_dir=tmp_path / f"a{seed}", timeout=None, cancel=threading.Event())
    waiter.join()
    assert answer == [hides]
