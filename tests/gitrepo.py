"""Throwaway git histories for tests, with fixed dates and a small probe.

Each commit carries `behavior.json`, which the probe below reads: the value it
reports, and how it should misbehave at that commit (exit code, hang, bad JSON).
Histories are built with the real git CLI; nothing is mocked.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

PROBE = r'''
import json, os, random, sys, time
b = json.load(open("behavior.json"))
over = json.loads(os.environ.get("BISECTOR_OVERRIDES") or "{}")
seed = int(os.environ.get("BISECTOR_SEED", "0"))
if b.get("hang"):
    import subprocess
    subprocess.Popen([sys.executable, "-c", "import time; time.sleep(1000)"])
    time.sleep(1000)
if "exit" in b:
    print("probe: cannot run here", file=sys.stderr)
    sys.exit(b["exit"])
if seed in b.get("fail_seeds", []):  # training that diverges on these seeds
    print("step 40: loss is nan", flush=True)
    sys.exit(1)
cfg = dict(b.get("config", {}))
if set(over) & set(b.get("refuse", [])):  # this commit's code fails on these keys
    print(f"probe: cannot set {sorted(set(over) & set(b['refuse']))}", file=sys.stderr)
    sys.exit(3)
if b.get("strict") and set(over) - set(cfg):  # this commit's code knows no such key
    print(f"probe: unknown config keys {sorted(set(over) - set(cfg))}", file=sys.stderr)
    sys.exit(3)
cfg.update(over)
value = b["value"] + b.get("noise", 0.0) * ((seed * 7919) % 13 - 6) / 6
if b.get("run_noise"):  # noise of its own at every (commit, seed)
    value += random.Random(f"{seed} {os.environ['BISECTOR_COMMIT']}").gauss(0, b["run_noise"])
if random.Random(f"diverge {seed} {os.environ['BISECTOR_COMMIT']}").random() < b.get(
        "diverge", 0.0):  # a training that diverged yet reports a metric
    value = -1.0
if random.Random(f"diverge {seed} {os.environ['BISECTOR_COMMIT']} {sorted(cfg.items())}"
                 ).random() < b.get("diverge_cells", 0.0):  # the same, config by config
    value = -1.0
for key, effect in b.get("effects", {}).items():
    if cfg.get(key):
        value += effect
for keys, effect in b.get("together", []):  # an effect only when all these keys are on
    if all(cfg.get(k) for k in keys):
        value += effect
if b.get("cell_noise"):  # noise that differs between configs too, not only between seeds
    value += random.Random(f"{seed} {json.dumps(cfg, sort_keys=True)}").gauss(0, b["cell_noise"])
if b.get("ignore_pins"):
    cfg = dict(b.get("config", {}))
if b.get("slow"):
    time.sleep(b["slow"])
log = os.environ.get("PROBE_LOG")
if log:  # written last, so it lists finished runs only
    with open(log, "a") as f:
        f.write(f"{os.environ['BISECTOR_COMMIT']} {seed}\n")
print("training... done")
print(json.dumps({"metrics": {"ssim": value, "mae": 1 - value}, "config": cfg}))
'''


def git(cwd: Path, *args: str, env: dict[str, str] | None = None) -> str:
    full_env = dict(os.environ, GIT_CONFIG_NOSYSTEM="1", HOME=str(cwd.parent),
                    LC_ALL="C", **(env or {}))
    return subprocess.run(["git", *args], cwd=cwd, env=full_env, check=True,
                          capture_output=True, text=True).stdout.strip()


def init_repo(path: Path, probe: str) -> None:
    """A new repository at `path` with a fixed author and `probe` as probe.py."""
    path.mkdir(parents=True)
    git(path, "init", "-q", "-b", "main")
    git(path, "config", "user.name", "Test Author")
    git(path, "config", "user.email", "test@example.com")
    (path / "probe.py").write_text(probe)


class History:
    """A repository under construction; `commit()` adds one commit with given behavior."""

    def __init__(self, path: Path) -> None:
        self.path = path
        init_repo(path, PROBE)
        self.n = 0

    def commit(self, subject: str | None = None, **behavior: Any) -> str:
        self.n += 1
        (self.path / "behavior.json").write_text(json.dumps(behavior, sort_keys=True))
        (self.path / "counter.txt").write_text(str(self.n))
        git(self.path, "add", "-A")
        date = f"2026-01-01T00:{self.n // 60:02d}:{self.n % 60:02d}+00:00"
        git(self.path, "commit", "-q", "-m", subject or f"commit {self.n}",
            env={"GIT_AUTHOR_DATE": date, "GIT_COMMITTER_DATE": date})
        return git(self.path, "rev-parse", "HEAD")

    def linear(self, values: list[float], **common: Any) -> list[str]:
        return [self.commit(value=v, **common) for v in values]


def snapshot(repo: Path) -> dict[str, Any]:
    """Everything the user could notice about their repository."""
    def files_digest() -> str:
        h = hashlib.sha256()
        for p in sorted(repo.rglob("*")):
            if ".git" in p.relative_to(repo).parts or not p.is_file():
                continue
            h.update(str(p.relative_to(repo)).encode() + b"\0" + p.read_bytes())
        return h.hexdigest()

    common = Path(git(repo, "rev-parse", "--git-common-dir"))
    if not common.is_absolute():
        common = repo / common
    return {
        "head": git(repo, "rev-parse", "HEAD"),
        "branch": git(repo, "rev-parse", "--abbrev-ref", "HEAD"),
        "status": git(repo, "status", "--porcelain=v2", "--untracked-files=all"),
        "index": git(repo, "ls-files", "--stage"),
        "stash": git(repo, "stash", "list"),
        "refs": git(repo, "for-each-ref"),
        "worktrees": git(repo, "worktree", "list", "--porcelain"),
        "worktree_dirs": sorted(p.name for p in (common / "worktrees").glob("*")),
        "bisect_files": sorted(p.name for p in common.glob("BISECT_*")),
        "files": files_digest(),
    }


def run_cli(*args: str, cwd: Path | None = None, timeout: float = 120,
            env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "bisector", *args], cwd=cwd, timeout=timeout,
                          capture_output=True, text=True, env=dict(os.environ, **(env or {})))


def probe_cmd() -> str:
    return f"{sys.executable} probe.py"
