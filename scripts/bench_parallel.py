"""Wall time and rounds of `bisector find --jobs N`, as ratios to --jobs 1, in one run.

A 1,000-commit history with a deterministic probe that sleeps 1 s per run (so
the two cores are not the limit). Each setting uses a fresh store. With
--dask, the same hunts also run through the Dask executor on a local cluster.
A second table says where each wall time goes: process start, imports and exit;
worktrees; the endpoint round; the later rounds of probe runs; the hunt's own
work between rounds (engine, git); the report.

    python scripts/bench_parallel.py [--commits 1000] [--sleep 1.0] [--jobs 1 2 4 8] [--dask]
                                     [--probe-python python3]

The probe runs as `python3 probe.py` from PATH; when that is a shim (pyenv), each
start costs a tenth of a second of CPU, which four probes starting at once on two
cores turn into a longer round. `--probe-python /path/to/python3` shows the
figures without it.
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


def hunt(repo: Path, good: str, jobs: int, tmp: Path, python: str, *extra: str
         ) -> tuple[float, dict]:
    store = tmp / f"store-{jobs}-{len(extra)}.sqlite"
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "bisector", "find", "--repo", str(repo), "--good", good,
         "--metric", "score", "--direction", "higher", "--probe", f"{python} probe.py",
         "--no-attribute", "--jobs", str(jobs), "--store", str(store),
         "--out", str(tmp / "report"), "--json", *extra],
        capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(proc.stderr)
    wall = time.perf_counter() - t0
    result = json.loads(proc.stdout)
    return wall, result


def rounds(r: dict) -> str:
    """"1+4": the endpoint round, then the rounds of the search (and of verification)."""
    return f"1+{r['rounds']}"


def parts(wall: float, r: dict) -> dict[str, float]:
    """Where the wall time of one hunt went, in seconds; the parts add up to it."""
    t, batches = r["timing"], r["batches"]
    probes = {role: sum(b["seconds"] for b in batches if b["role"] == role)
              for role in ("endpoint", "search", "verify")}
    return {"start": wall - sum(t.values()), "setup": t["setup"], **probes,
            "other": t["hunt"] - sum(probes.values()), "cleanup": t["cleanup"],
            "report": t["report"]}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--commits", type=int, default=1000)
    p.add_argument("--sleep", type=float, default=1.0)
    p.add_argument("--jobs", type=int, nargs="+", default=[1, 2, 4, 8])
    p.add_argument("--dask", action="store_true")
    p.add_argument("--probe-python", default="python3",
                   help="the interpreter in the probe command (default: python3 from PATH)")
    a = p.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-parallel-"))
    try:
        # culprit at 61.3%: not a point that halving reaches early by luck
        built = build(tmp / "repo", a.commits, culprit=a.commits * 613 // 1000, sleep=a.sleep)
        print(f"history: {a.commits} commits, probe `{a.probe_python} probe.py` sleeps "
              f"{a.sleep} s; culprit {built.culprit[:8]}")
        print("wall: the whole command; hunt: the search itself, without start-up, worktrees "
              "and the report; rounds: the endpoint round + the search's rounds")
        print(f"{'executor':8} {'jobs':>4} {'wall s':>7} {'ratio':>6} {'hunt s':>7} {'ratio':>6} "
              f"{'rounds':>6} {'runs':>5}  culprit")
        base: tuple[float, float] | None = None
        rows: dict[int, float] = {}
        split: list[tuple[str, int, dict[str, float]]] = []

        def show(executor: str, jobs: int, wall: float, r: dict, note: str = "") -> None:
            assert base is not None
            inner = r["timing"]["hunt"]
            found = r["first_bad"]["commit"]
            print(f"{executor:8} {jobs:>4} {wall:7.1f} {wall / base[0]:6.2f} {inner:7.1f} "
                  f"{inner / base[1]:6.2f} {rounds(r):>6} {r['probe_runs']:>5}  {found[:8]} "
                  f"{'ok' if found == built.culprit else 'WRONG'}{note}")
            split.append((executor, jobs, parts(wall, r)))

        for jobs in a.jobs:
            wall, r = hunt(built.path, built.shas[0], jobs, tmp, a.probe_python)
            base = base or (wall, r["timing"]["hunt"])
            rows[jobs] = wall
            show("local", jobs, wall, r)
        if a.dask:
            from distributed import LocalCluster

            for jobs in a.jobs:
                if jobs == 1:
                    continue
                with LocalCluster(n_workers=jobs, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster:
                    wall, r = hunt(built.path, built.shas[0], jobs, tmp, a.probe_python,
                                   "--executor", "dask", "--scheduler",
                                   cluster.scheduler_address)
                show("dask", jobs, wall, r, f"  (vs local: {wall / rows[jobs]:.2f}x)")
        print("target: --jobs 4 at most 0.45 of --jobs 1; Dask within 10% of local")
        print("\nwhere the wall time goes, seconds (start: process start, imports, exit; "
              "endpoint/search/verify: rounds of probe runs; other: the hunt's own work)")
        names = list(split[0][2])
        print(f"{'executor':8} {'jobs':>4} " + " ".join(f"{n:>8}" for n in names))
        for executor, jobs, part in split:
            print(f"{executor:8} {jobs:>4} " + " ".join(f"{part[n]:8.2f}" for n in names))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
