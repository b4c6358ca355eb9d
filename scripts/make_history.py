"""Build a synthetic git history with a known culprit, fast (git fast-import).

Every commit holds `step.json` (the metric's true value there) and `probe.py`,
a probe that reports that value plus seeded noise: a per-seed part shared by
all commits (rho of the variance) and a per-run part. Used by the benchmarks
and the quick example:

    python scripts/make_history.py /tmp/hist --commits 300 --culprit 120 --effect 1.5 --noise 1
"""

from __future__ import annotations

import argparse
import json
import subprocess
from dataclasses import dataclass
from pathlib import Path

PROBE = r'''import hashlib, json, os, random, sys, time
step = json.load(open("step.json"))
seed = int(os.environ.get("BISECTOR_SEED", "0"))
commit = os.environ.get("BISECTOR_COMMIT", "")
noise, rho = step["noise"], step["rho"]
salt = step.get("salt")  # another history, other seed effects
shared = random.Random(seed if salt is None else f"{salt}:{seed}").gauss(0, 1)  # all commits
own = random.Random(hashlib.sha256(f"{commit}:{seed}".encode()).digest()).gauss(0, 1)
if step.get("rerun_noise"):  # noisy even at a fixed seed
    own = random.gauss(0, 1)
value = step["value"] + noise * ((rho ** 0.5) * shared + ((1 - rho) ** 0.5) * own)
if step.get("sleep"):
    time.sleep(step["sleep"])
print(json.dumps({"metrics": {"score": value}, "config": {}}))
'''


# Only in histories with faults: every other history keeps its commits (tests rely on
# their draws).
FAULTS = r'''key = hashlib.sha256(f"luck:{commit}:{seed}".encode()).digest()
luck = random.Random(key).random()
if luck < step.get("fail", 0.0):  # a training that crashes on this seed here
    sys.exit("loss is nan")
if luck > 1 - step.get("diverge", 0.0):  # a training that diverged yet reports a metric
    value = step["value"] - 30 * noise
'''


@dataclass(frozen=True)
class Built:
    path: Path
    shas: list[str]  # oldest first
    culprit: str | None


def build(path: Path, commits: int, culprit: int | None, *, base: float = 10.0,
          effect: float = 3.0, noise: float = 0.0, rho: float = 0.0, drift: float = 0.0,
          sleep: float = 0.0, rerun_noise: bool = False, salt: int | None = None,
          fail: float = 0.0, diverge: float = 0.0) -> Built:
    """`commits` commits; from index `culprit` on, the metric is lower by `effect`.

    `drift` is a slow linear decline across the whole range, in metric units. A share
    `fail` of (commit, seed) runs exits 1, a share `diverge` reports 30 noise sd low.
    Higher is better for the metric `score`. `salt` gives the history seed effects of
    its own; without it every history shares one set (seed 2 is always high).
    """
    path.mkdir(parents=True, exist_ok=False)
    subprocess.run(["git", "init", "-q", "-b", "main", str(path)], check=True)
    lines: list[str] = []
    for i in range(commits):
        value = base - drift * i / max(commits - 1, 1)
        if culprit is not None and i >= culprit:
            value -= effect
        step = json.dumps({"value": value, "noise": noise, "rho": rho, "sleep": sleep,
                           "rerun_noise": rerun_noise, "salt": salt,
                           # only when set: every other history keeps its commits
                           **({"fail": fail} if fail else {}),
                           **({"diverge": diverge} if diverge else {})})
        msg = f"commit {i}" + (" (the culprit)" if i == culprit else "")
        when = 1767225600 + 60 * i
        lines.append("commit refs/heads/main")
        lines.append(f"mark :{i + 1}")
        lines.append(f"committer Bench <bench@example.com> {when} +0000")
        lines.append(f"data {len(msg.encode())}\n{msg}")
        if i:
            lines.append(f"from :{i}")
        if i == 0:
            probe = PROBE if not (fail or diverge) else PROBE.replace(
                "if step.get(\"sleep\")", FAULTS + "if step.get(\"sleep\")")
            lines.append(f"M 644 inline probe.py\ndata {len(probe.encode())}\n{probe}")
        lines.append(f"M 644 inline step.json\ndata {len(step.encode())}\n{step}")
        lines.append("")
    subprocess.run(["git", "fast-import", "--quiet"], cwd=path, input="\n".join(lines).encode(),
                   check=True)
    subprocess.run(["git", "checkout", "-q", "main"], cwd=path, check=True)
    shas = subprocess.run(["git", "rev-list", "--reverse", "main"], cwd=path, check=True,
                          capture_output=True, text=True).stdout.split()
    return Built(path, shas, shas[culprit] if culprit is not None else None)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("path", type=Path)
    p.add_argument("--commits", type=int, default=100)
    p.add_argument("--culprit", type=int, default=None)
    p.add_argument("--effect", type=float, default=3.0)
    p.add_argument("--noise", type=float, default=0.0)
    p.add_argument("--rho", type=float, default=0.0)
    p.add_argument("--drift", type=float, default=0.0)
    p.add_argument("--sleep", type=float, default=0.0)
    p.add_argument("--salt", type=int, default=None, help="this history's own seed effects")
    a = p.parse_args()
    culprit = a.culprit if a.culprit is not None else a.commits * 2 // 3
    built = build(a.path, a.commits, culprit, effect=a.effect, noise=a.noise, rho=a.rho,
                  drift=a.drift, sleep=a.sleep, salt=a.salt)
    print(f"built {len(built.shas)} commits in {built.path}; culprit {built.culprit}")
    print(f"good: {built.shas[0]}")


if __name__ == "__main__":
    main()
