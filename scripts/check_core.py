"""Held-out check of `bisector find` on random histories no test has seen.

Each trial draws a history of 60 to 1,000 commits: a side branch merged back
(sometimes carrying the culprit), untestable commits (exit 125), a crashing
commit and a hanging one (killed by --timeout) away from the culprit, and a
dirty checkout. It runs the real CLI with a deterministic probe and checks:
the right first bad commit, probe runs within ceil(log2 N) + 3 plus two per
untestable commit visited (its run, and the retry of a failed run), the
user's repository unchanged, and no probe process left running.

    python scripts/check_core.py [--trials 20] [--seed 1]
"""

from __future__ import annotations

import argparse
import json
import math
import random
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent.parent / "tests"))
from gitrepo import History, git, probe_cmd, snapshot  # noqa: E402


def draw(path: Path, rng: random.Random) -> tuple[History, str, str, int]:
    """A history, its good commit, its culprit and its size N (commits in good..bad)."""
    n = rng.choice([60, 61, 90, 127, 200, 333, 500, 777, 1000])
    culprit = rng.randrange(3, n - 3)
    odd = {}  # commit index -> behaviour that is not a plain value
    for i in rng.sample([i for i in range(2, n) if abs(i - culprit) > 3], 4):
        odd[i] = {"exit": 125}
    crash, hang = rng.sample([i for i in range(2, n) if abs(i - culprit) > 3 and i not in odd], 2)
    odd[crash], odd[hang] = {"exit": 1}, {"hang": True}
    # a side branch of 3 commits forks at side_at and is merged back at side_at + 5
    side_at = rng.choice([i for i in range(1, n - 10) if not -8 <= i - culprit <= 2])
    on_side = rng.random() < 0.3  # then the culprit is on the side branch instead
    h = History(path)
    good = h.commit(value=0.9)
    for i in range(1, n + 1):
        if on_side:
            value = 0.5 if i > side_at + 5 else 0.9
        else:
            value = 0.5 if i >= culprit else 0.9
        if i == side_at:
            git(h.path, "checkout", "-q", "-b", f"side{i}")
            for j in range(3):
                before = 0.5 if not on_side and side_at >= culprit else 0.9  # as at the fork
                h.commit(f"side {j}", value=0.5 if on_side and j >= 1 else before)
            side_culprit = git(h.path, "rev-parse", "HEAD~1") if on_side else None
            git(h.path, "checkout", "-q", "main")
        if i == side_at + 5:
            git(h.path, "merge", "-q", "--no-ff", "-X", "theirs" if on_side else "ours",
                f"side{side_at}", "-m", f"merge side{side_at}")
            git(h.path, "branch", "-q", "-D", f"side{side_at}")
            continue
        h.commit(value=value, **odd.get(i, {}))
    shas = git(h.path, "rev-list", "--reverse", "--first-parent", "HEAD").split()
    target = side_culprit if on_side and side_culprit else shas[culprit]
    size = len(git(h.path, "rev-list", f"{good}..HEAD").split())
    return h, good, target, size


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--trials", type=int, default=20)
    p.add_argument("--seed", type=int, default=1)
    a = p.parse_args()
    rng = random.Random(a.seed)
    right = within = clean = 0
    for t in range(a.trials):
        tmp = Path(tempfile.mkdtemp(prefix="check-core-"))
        try:
            h, good, target, n = draw(tmp / "repo", rng)
            (h.path / "counter.txt").write_text("a dirty checkout")
            before = snapshot(h.path)
            proc = subprocess.run(
                [sys.executable, "-m", "bisector", "find", "--repo", str(h.path), "--good", good,
                 "--metric", "ssim", "--probe", probe_cmd(), "--timeout", "3", "--json",
                 "--no-attribute", "--out", str(tmp / "report")],
                capture_output=True, text=True)
            result = json.loads(proc.stdout)
            found = (result.get("first_bad") or {}).get("commit")
            odd_runs = sum(s["verdict"] == "skip" for s in result["trail"])
            # each untestable commit visited costs its run, and a failed run its retry
            bound = math.ceil(math.log2(n)) + 3 + 2 * odd_runs
            ok_right, ok_runs = found == target, result["probe_runs"] <= bound
            leftover = subprocess.run(["pgrep", "-f", "time.sleep\\(1000\\)"],
                                      capture_output=True, text=True).stdout.split()
            ok_clean = snapshot(h.path) == before and not leftover
            right, within, clean = right + ok_right, within + ok_runs, clean + ok_clean
            print(f"trial {t:2}: N={n:4} runs={result['probe_runs']:3} (bound {bound:3}, "
                  f"{odd_runs} untestable visited) culprit {'ok' if ok_right else 'WRONG'}"
                  f"{'' if ok_clean else ' REPO CHANGED OR PROCESS LEFT'}", flush=True)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    print(f"right culprit {right}/{a.trials}; runs within bound {within}/{a.trials}; "
          f"repository unchanged and no probe left {clean}/{a.trials}")


if __name__ == "__main__":
    main()
