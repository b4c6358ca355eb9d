"""Accuracy and probe runs of the real `bisector find` under noise, next to plain bisection.

For each cell (N commits, effect in noise sigmas, share of the noise variance
that comes from the seed, slow drift or not) it builds fresh synthetic
histories with a known culprit at a random place (scripts/make_history.py),
runs the real `bisector find` CLI on them, and in the same run a plain
`git bisect run` whose step script compares the mean of k probe runs with the
midpoint of the endpoints (k = 1 and 5). It prints accuracy, mean and 95th
percentile probe runs, and the information bound log2(N)/C, where C is the
capacity in bits of one run seen as a binary-input Gaussian channel with
separation d sigma (d / sqrt(1 - rho) once paired seeds cancel the shared part).

    python scripts/bench_noise.py --quick            # a few cells, few trials
    python scripts/bench_noise.py --trials 50        # the targets' cells
    python scripts/bench_noise.py --full --trials 50 # every cell (hours)
    python scripts/bench_noise.py --cell 300,3,0,0 --seed 11 --no-baselines  # new histories
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import random
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from make_history import build  # noqa: E402

STEP = r'''
import json, os, subprocess, sys
k, mid = int(sys.argv[1]), float(sys.argv[2])
vals = []
for seed in range(k):
    out = subprocess.run([sys.executable, "probe.py"], capture_output=True, text=True,
                         env=dict(os.environ, BISECTOR_SEED=str(seed),
                                  BISECTOR_COMMIT=subprocess.run(["git", "rev-parse", "HEAD"],
                                  capture_output=True, text=True).stdout.strip()))
    vals.append(json.loads(out.stdout.strip().splitlines()[-1])["metrics"]["score"])
sys.exit(0 if sum(vals) / k > mid else 1)
'''


@dataclass(frozen=True)
class Cell:
    n: int
    d: float  # effect in noise sigmas (0: no regression)
    rho: float  # share of the noise variance shared by seed
    drift: float  # slow decline over the range, in sigmas
    fail: float = 0.0  # share of (commit, seed) runs that crash
    diverge: float = 0.0  # share that report 30 sigmas low (a diverged training)


def capacity(d: float) -> float:
    """Bits per use of the binary-input Gaussian channel with inputs +-d/2, unit noise."""
    if d <= 0:
        return 0.0
    x, w = np.polynomial.hermite_e.hermegauss(80)
    w = w / w.sum()
    y = d / 2 + x  # received when +d/2 was sent
    llr = np.logaddexp(0, -2 * (d / 2) * y)  # log(1 + e^{-d y})
    return float(1 - np.sum(w * llr) / math.log(2))


def probe_runs_plain(repo: Path, good: str, bad: str, k: int) -> tuple[str | None, int]:
    def mean_at(sha: str) -> float:
        wt = repo.parent / f"ep-{sha[:8]}"
        if not wt.exists():
            subprocess.run(["git", "worktree", "add", "-q", "--detach", str(wt), sha],
                           cwd=repo, check=True)
        vals = []
        for seed in range(k):
            out = subprocess.run([sys.executable, "probe.py"], cwd=wt, capture_output=True,
                                 text=True, env={"BISECTOR_SEED": str(seed),
                                                 "BISECTOR_COMMIT": sha, "PATH": "/usr/bin"})
            vals.append(json.loads(out.stdout.strip().splitlines()[-1])["metrics"]["score"])
        return sum(vals) / k

    mid = (mean_at(good) + mean_at(bad)) / 2
    wt = repo.parent / "plain-wt"
    subprocess.run(["git", "worktree", "add", "-q", "--detach", str(wt), bad], cwd=repo,
                   check=True)
    (repo.parent / "step.py").write_text(STEP)
    subprocess.run(["git", "bisect", "start", bad, good], cwd=wt, capture_output=True,
                   check=True)
    proc = subprocess.run(["git", "bisect", "run", sys.executable,
                           str(repo.parent / "step.py"), str(k), repr(mid)],
                          cwd=wt, capture_output=True, text=True)
    steps = proc.stdout.count("running ")
    found = None
    if " is the first bad commit" in proc.stdout:
        found = proc.stdout.split(" is the first bad commit")[0].split()[-1]
    return found, 2 * k + steps * k


def trial(args: tuple[Cell, int, bool]) -> dict[str, object]:
    cell, seed, baselines = args
    rng = random.Random(seed)
    tmp = Path(tempfile.mkdtemp(prefix="bench-noise-"))
    try:
        culprit = rng.randrange(cell.n // 10, cell.n - cell.n // 10) if cell.d > 0 else None
        built = build(tmp / "repo", cell.n + 1, culprit, effect=cell.d, noise=1.0,
                      rho=cell.rho, drift=cell.drift, salt=seed, fail=cell.fail,
                      diverge=cell.diverge)
        proc = subprocess.run(
            [sys.executable, "-m", "bisector", "find", "--repo", str(built.path),
             "--good", built.shas[0], "--metric", "score", "--direction", "higher",
             "--probe", "python3 probe.py", "--no-attribute", "--min-effect",
             str(max(cell.d, 1.0) / 2), "--store", str(tmp / "store.sqlite"),
             "--out", str(tmp / "report"), "--json"],
            capture_output=True, text=True)
        result = json.loads(proc.stdout) if proc.stdout.strip() else {"status": "error"}
        found = (result.get("first_bad") or {}).get("commit")
        if cell.d > 0:
            right = result.get("status") == "found" and found == built.culprit
        else:
            right = result.get("status") == "no-regression"
        out: dict[str, object] = {"right": right, "runs": result.get("probe_runs", 0),
                                  "status": result.get("status")}
        if baselines and cell.d > 0:
            for k in (1, 5):
                f, runs = probe_runs_plain(built.path, built.shas[0], built.shas[-1], k)
                out[f"plain{k}"] = (f == built.culprit, runs)
                subprocess.run(["git", "worktree", "prune"], cwd=built.path)
                shutil.rmtree(tmp / "plain-wt", ignore_errors=True)
                subprocess.run(["git", "worktree", "prune"], cwd=built.path)
        return out
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--trials", type=int, default=50)
    p.add_argument("--quick", action="store_true", help="two cells, 10 trials")
    p.add_argument("--full", action="store_true", help="every cell of the grid")
    p.add_argument("--no-baselines", action="store_true")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--seed", type=int, default=7, help="other histories: another seed")
    p.add_argument("--cell", action="append", default=[], metavar="N,D,RHO,DRIFT",
                   help="measure only this cell (repeatable), e.g. 300,1.5,0.7,0")
    p.add_argument("--fail", type=float, default=0.0,
                   help="share of (commit, seed) runs that crash, in every cell")
    p.add_argument("--diverge", type=float, default=0.0,
                   help="share of runs that report 30 sigmas low (a diverged training)")
    a = p.parse_args()
    if a.full:
        cells = [Cell(n, d, rho, drift) for n, d, rho, drift in itertools.product(
            (100, 300, 1000), (1.0, 1.5, 3.0), (0.0, 0.7), (0.0, 1.0))]
        cells += [Cell(300, 0.0, 0.0, 0.0), Cell(300, 0.0, 0.0, 1.0)]
    elif a.quick:
        cells, a.trials = [Cell(100, 3.0, 0.0, 0.0), Cell(100, 0.0, 0.0, 0.0)], 10
    elif a.cell:
        cells = [Cell(int(n), float(d), float(r), float(dr))
                 for n, d, r, dr in (c.split(",") for c in a.cell)]
    else:  # the cells the targets name
        cells = [Cell(300, 1.5, 0.0, 0.0), Cell(300, 1.5, 0.7, 0.0), Cell(300, 3.0, 0.0, 0.0),
                 Cell(300, 1.5, 0.0, 1.0), Cell(300, 0.0, 0.0, 0.0)]
    cells = [replace(c, fail=a.fail, diverge=a.diverge) for c in cells]
    if a.fail or a.diverge:
        print(f"in every cell {a.fail:.0%} of runs crash and {a.diverge:.0%} report 30 sd low")
    print(f"{'N':>5} {'d':>4} {'rho':>4} {'drift':>5} | {'bisector':>9} {'mean':>5} {'p95':>4} |"
          f" {'plain k=1':>9} {'runs':>4} | {'plain k=5':>9} {'runs':>4} | bound")
    with ProcessPoolExecutor(a.workers) as pool:
        for cell in cells:
            args = [(cell, 1000 * i + a.seed, not a.no_baselines) for i in range(a.trials)]
            rows = list(pool.map(trial, args))
            runs = np.array([r["runs"] for r in rows], dtype=float)
            acc = sum(bool(r["right"]) for r in rows) / len(rows)
            line = (f"{cell.n:>5} {cell.d:>4} {cell.rho:>4} {cell.drift:>5} | "
                    f"{acc:>9.1%} {runs.mean():>5.1f} {np.percentile(runs, 95):>4.0f} |")
            for k in (1, 5):
                got = [r[f"plain{k}"] for r in rows if f"plain{k}" in r]
                if got:
                    pa = sum(bool(g[0]) for g in got) / len(got)  # type: ignore[index]
                    pr = sum(g[1] for g in got) / len(got)  # type: ignore[index]
                    line += f" {pa:>9.1%} {pr:>4.0f} |"
                else:
                    line += f" {'-':>9} {'-':>4} |"
            # paired seeds remove the shared part of the noise: separation d / sqrt(1 - rho)
            sep = cell.d / math.sqrt(1 - cell.rho)
            bound = math.log2(cell.n) / capacity(sep) if cell.d > 0 else float("nan")
            wrong = sum(r["status"] == "found" and not r["right"] for r in rows)
            other = Counter(str(r["status"]) for r in rows if r["status"] != "found")
            tail = f"wrong culprits {wrong}"
            tail += "".join(f", {k} {v}" for k, v in sorted(other.items()))
            print(line + f" {bound:5.1f} | {tail}", flush=True)
    print("targets: 1.5 sigma/300: >= 99% with <= 45 runs (<= 35 with rho 0.7); "
          "3 sigma: >= 99.5% with <= 25; no regression: >= 99% no-regression")


if __name__ == "__main__":
    main()
