"""Per-step overhead of `bisector find` outside the probe, next to plain `git bisect run`.

Builds a 1,000-commit history with a trivial deterministic probe, then in one
process times (a) `bisector find` and (b) `git bisect run` of the same probe in a
linked worktree of the same repository. Overhead per step = (wall time - time
spent in the probe) / steps. The probe's own time is measured by running it
directly, the same way for both.

    python scripts/bench_overhead.py [--commits 1000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from make_history import build  # noqa: E402

CHECK = "python3 probe.py | grep -q '\"score\": 10.0'"  # good when the value is the good one


def probe_seconds(repo: Path, n: int = 20) -> float:
    t = []
    for _ in range(n):
        t0 = time.perf_counter()
        subprocess.run(["sh", "-c", CHECK], cwd=repo, check=False)
        t.append(time.perf_counter() - t0)
    return statistics.median(t)


def time_bisector(repo: Path, good: str) -> tuple[float, int, str, dict[str, float]]:
    """Wall time of the hunt loop (probes included), runs, culprit, and the fixed costs."""
    tmp = Path(tempfile.mkdtemp())  # a fresh store: nothing reused
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "bisector", "find", "--repo", str(repo), "--good", good,
         "--metric", "score", "--direction", "higher", "--probe", "python3 probe.py",
         "--no-attribute", "--store", str(tmp / "store.sqlite"), "--out", str(tmp / "report"),
         "--json"],
        capture_output=True, text=True, check=True)
    wall = time.perf_counter() - t0
    result = json.loads(proc.stdout)
    shutil.rmtree(tmp)
    timing = result["timing"]
    fixed = dict(timing, process=wall - sum(timing.values()))
    del fixed["hunt"]
    return timing["hunt"], result["probe_runs"], result["first_bad"]["commit"], fixed


def time_git_bisect_run(repo: Path, good: str) -> tuple[float, int, str]:
    wt = Path(tempfile.mkdtemp()) / "wt"
    subprocess.run(["git", "worktree", "add", "-q", "--detach", str(wt), "main"], cwd=repo,
                   check=True)
    try:
        t0 = time.perf_counter()
        subprocess.run(["git", "bisect", "start", "main", good], cwd=wt, check=True,
                       capture_output=True)
        proc = subprocess.run(["git", "bisect", "run", "sh", "-c", CHECK], cwd=wt, check=True,
                              capture_output=True, text=True)
        wall = time.perf_counter() - t0
        steps = proc.stdout.count("running ")
        first_bad = proc.stdout.split(" is the first bad commit")[0].split()[-1]
        subprocess.run(["git", "bisect", "reset"], cwd=wt, capture_output=True)
    finally:
        subprocess.run(["git", "worktree", "remove", "--force", str(wt)], cwd=repo)
        shutil.rmtree(wt.parent, ignore_errors=True)
    # git bisect run does not run the endpoints; bisector measures good twice and bad once.
    return wall, steps, first_bad


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--commits", type=int, default=1000)
    p.add_argument("--repeat", type=int, default=3)
    a = p.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-overhead-"))
    try:
        built = build(tmp / "repo", a.commits, culprit=a.commits * 613 // 1000)
        probe = probe_seconds(built.path)
        rows = []
        fixed: dict[str, list[float]] = {}
        for _ in range(a.repeat):
            bw, bruns, bfound, bfixed = time_bisector(built.path, built.shas[0])
            for k, v in bfixed.items():
                fixed.setdefault(k, []).append(v)
            gw, gruns, gfound = time_git_bisect_run(built.path, built.shas[0])
            assert bfound == gfound == built.culprit, (bfound, gfound, built.culprit)
            rows.append(((bw - bruns * probe) / bruns, (gw - gruns * probe) / gruns, bruns,
                         gruns))
        b_over = statistics.median(r[0] for r in rows)
        g_over = statistics.median(r[1] for r in rows)
        print(f"history: {a.commits} commits; probe alone: {probe * 1000:.1f} ms per run")
        print(f"bisector find   : {rows[0][2]} probe runs, overhead {b_over * 1000:.1f} ms/step")
        print(f"git bisect run  : {rows[0][3]} probe runs, overhead {g_over * 1000:.1f} ms/step")
        print(f"ratio bisector/git: {b_over / g_over:.2f}x   (target: <= 3x and <= 300 ms/step)")
        once = ", ".join(f"{k} {statistics.median(v) * 1000:.0f} ms" for k, v in fixed.items())
        print(f"bisector's once-per-hunt costs (not in the per-step figure): {once}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
