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
