"""`bisector probe`: one run of the probe at one revision, for writing and debugging probes.

Runs in a throwaway worktree like a hunt does, stores the run (so a hunt can
reuse it), and returns it; it never reuses a stored run, since the user asked
to see the probe run now.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .git_ops import BisectWorktree, GitRepo
from .model import Run, RunRequest
from .probe import run_probe
from .store import Store, default_store_path


def probe_once(repo_path: Path, rev: str, command: str, *, seed: int = 0,
               pins: Mapping[str, Any] | None = None, timeout: float | None = None,
               store_path: Path | None = None) -> Run:
    repo = GitRepo(repo_path)
    sha = repo.resolve(rev)
    request = RunRequest(sha, command, seed, dict(pins or {}))
    with Store(store_path or default_store_path(repo.common_dir)) as store:
        with BisectWorktree(repo, sha) as wt:
            artifacts = store.path.parent / "artifacts" / f"{sha[:12]}-s{seed}-oneshot"
            run = run_probe(request, wt.path, timeout=timeout, artifacts_dir=artifacts)
        return store.add_run(run)
