"""Wall time and rounds of `bisector find --jobs N`, as ratios to --jobs 1, in one run.

A 1,000-commit history with a deterministic probe that sleeps 1 s per run (so
the two cores are not the limit). Each setting uses a fresh store. With
--dask, the same hunts also run through the Dask executor on a local cluster.

    python scripts/bench_parallel.py [--commits 1000] [--sleep 1.0] [--jobs 1 2 4 8] [--dask]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from make_history import build  # noqa: E402


def hunt(repo: Path, good: str, jobs: int, tmp: Path, *extra: str) -> tuple[float, dict]:
    store = tmp / f"store-{jobs}-{len(extra)}.sqlite"
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "bisector", "find", "--repo", str(repo), "--good", good,
         "--metric", "score", "--direction", "higher", "--probe", "python3 probe.py",
         "--no-attribute", "--jobs", str(jobs), "--store", str(store),
         "--out", str(tmp / "report"), "--json", *extra],
        capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(proc.stderr)
    wall = time.perf_counter() - t0
    result = json.loads(proc.stdout)
    return wall, result


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--commits", type=int, default=1000)
    p.add_argument("--sleep", type=float, default=1.0)
    p.add_argument("--jobs", type=int, nargs="+", default=[1, 2, 4, 8])
    p.add_argument("--dask", action="store_true")
    a = p.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-parallel-"))
    try:
        # culprit at 61.3%: not a point that halving reaches early by luck
        built = build(tmp / "repo", a.commits, culprit=a.commits * 613 // 1000, sleep=a.sleep)
        print(f"history: {a.commits} commits, probe sleeps {a.sleep} s; culprit "
              f"{built.culprit[:8]}")
        print("wall: the whole command; hunt: the search itself, without start-up, worktrees "
              "and the report")
        print(f"{'executor':8} {'jobs':>4} {'wall s':>7} {'ratio':>6} {'hunt s':>7} {'ratio':>6} "
              f"{'rounds':>6} {'runs':>5}  culprit")
        base: tuple[float, float] | None = None
        rows = {}
        for jobs in a.jobs:
            wall, r = hunt(built.path, built.shas[0], jobs, tmp)
            inner = r["timing"]["hunt"]
            base = base or (wall, inner)
            rows[jobs] = wall
            found = r["first_bad"]["commit"]
            print(f"{'local':8} {jobs:>4} {wall:7.1f} {wall / base[0]:6.2f} {inner:7.1f} "
                  f"{inner / base[1]:6.2f} {r['rounds']:>6} {r['probe_runs']:>5}  {found[:8]} "
                  f"{'ok' if found == built.culprit else 'WRONG'}")
        if a.dask:
            from distributed import LocalCluster

            for jobs in a.jobs:
                if jobs == 1:
                    continue
                with LocalCluster(n_workers=jobs, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster:
                    wall, r = hunt(built.path, built.shas[0], jobs, tmp, "--executor", "dask",
                                   "--scheduler", cluster.scheduler_address)
                found = r["first_bad"]["commit"]
                inner = r["timing"]["hunt"]
                assert base is not None
                print(f"{'dask':8} {jobs:>4} {wall:7.1f} {wall / base[0]:6.2f} {inner:7.1f} "
                      f"{inner / base[1]:6.2f} {r['rounds']:>6} {r['probe_runs']:>5}  {found[:8]} "
                      f"{'ok' if found == built.culprit else 'WRONG'}  "
                      f"(vs local: {wall / rows[jobs]:.2f}x)")
        print("target: --jobs 4 at most 0.45 of --jobs 1; Dask within 10% of local")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
