"""Build the demo repository: a small PyTorch ptychography project in ~40 commits.

Owns turning bisector.demo.history into a real git repository with the `git`
CLI: fixed authors and dates and an isolated git config, so the commit shas
are the same on every machine. It must not touch any repository but the one
it creates, and it runs no probe.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from bisector.demo.changes import CULPRIT, UNTESTABLE, apply
from bisector.demo.history import STEPS
from bisector.errors import GitError, UsageError

# The first commit's date, in UTC; later ones follow at fixed, increasing offsets.
START = datetime(2026, 1, 12, 9, 0, 0)
METRICS = ("ssim_amp", "mae_amp", "ssim_phase", "mae_phase", "psnr_amp", "frc50", "train_loss")
CHANGED_KEYS = ("object_big", "probe_big", "pad_object")


@dataclass(frozen=True)
class DemoRepo:
    """The demo repository and what a hunt in it should find."""

    path: Path
    good: str  # first commit
    bad: str  # HEAD
    culprit: str  # starts passing object_big/probe_big/pad_object to training
    untestable: str  # the project does not import here; the probe exits 125
    probe_command: str  # run in a checkout of a commit
    metrics: tuple[str, ...] = METRICS  # the primary metric first
    changed_keys: tuple[str, ...] = CHANGED_KEYS  # config keys the culprit changes
    commits: tuple[str, ...] = ()  # every commit, oldest first


def commit_date(index: int) -> str:
    """The author and committer date of the index-th commit (0-based), strictly increasing."""
    # Uneven gaps read like a real history; every gap is at least 40 minutes.
    minutes = sum(40 + (i * 97) % 420 for i in range(index))
    return (START + timedelta(minutes=minutes)).strftime("%Y-%m-%dT%H:%M:%S+0000")


def probe_command() -> str:
    """The probe command line for this interpreter, in shell syntax."""
    return f"{shlex.quote(sys.executable)} probe.py"


def build_demo_repo(path: Path) -> DemoRepo:
    """Create the demo repository at `path` (absent or an empty directory)."""
    path = Path(path)
    if path.exists() and (not path.is_dir() or any(path.iterdir())):
        raise UsageError(f"{path} exists and is not an empty directory: give a new path")
    path.mkdir(parents=True, exist_ok=True)
    _git(path, "init", "--quiet", "--initial-branch=main", "--template=")
    tree: dict[str, str] = {}
    shas: list[str] = []
    roles: dict[str, str] = {}
    for index, step in enumerate(STEPS):
        before = dict(tree)
        for change in step.changes:
            apply(tree, change)
        _write_tree(path, before, tree)
        _git(path, "add", "--all")
        name, email = step.author
        date = commit_date(index)
        env = {
            "GIT_AUTHOR_NAME": name,
            "GIT_AUTHOR_EMAIL": email,
            "GIT_AUTHOR_DATE": date,
            "GIT_COMMITTER_NAME": name,
            "GIT_COMMITTER_EMAIL": email,
            "GIT_COMMITTER_DATE": date,
        }
        _git(
            path,
            "commit",
            "--quiet",
            "--no-verify",
            "--allow-empty",
            "-F",
            "-",
            env=env,
            stdin=step.message,
        )
        sha = _git(path, "rev-parse", "HEAD").strip()
        shas.append(sha)
        if step.role:
            roles[step.role] = sha
    return DemoRepo(
        path=path,
        good=shas[0],
        bad=shas[-1],
        culprit=roles[CULPRIT],
        untestable=roles[UNTESTABLE],
        probe_command=probe_command(),
        commits=tuple(shas),
    )


def _write_tree(root: Path, before: dict[str, str], after: dict[str, str]) -> None:
    """Make the working tree match `after`, given that it matched `before`."""
    for rel in before.keys() - after.keys():
        (root / rel).unlink()
    for rel, text in after.items():
        if before.get(rel) != text:
            target = root / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            # newline="" keeps "\n" on every platform: the blobs, hence the shas, stay fixed.
            with open(target, "w", encoding="utf-8", newline="") as handle:
                handle.write(text)


def _git_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """An environment that ignores the user's and the system's git config."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("GIT_") and key not in ("LANG", "LANGUAGE")
    }
    env.update(
        {
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_CONFIG_GLOBAL": os.devnull,
            "GIT_TERMINAL_PROMPT": "0",
            "LC_ALL": "C",
        }
    )
    env.update(extra or {})
    return env


def _git(cwd: Path, *args: str, env: dict[str, str] | None = None, stdin: str | None = None) -> str:
    # core.autocrlf and commit.gpgsign could come from nowhere else now, but
    # say them anyway: either would change the shas.
    command = ["git", "-c", "core.autocrlf=false", "-c", "commit.gpgsign=false", *args]
    result = subprocess.run(
        command,
        cwd=cwd,
        env=_git_env(env),
        input=stdin,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise GitError(f"{' '.join(command)} failed in {cwd}: {result.stderr.strip()}")
    return result.stdout
