"""The git adapter on real repositories: revisions, bisect output, worktree clean-up."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from gitrepo import History, git, snapshot

from bisector.errors import NotARepository, UnknownRevision, UsageError
from bisector.git_ops import (
    WORKTREE_PREFIX,
    BisectWorktree,
    GitRepo,
    parse_bisect_output,
    prune_stale_worktrees,
)

A = "a" * 40
B = "b" * 40


def test_parse_bisect_output_forms() -> None:
    step = parse_bisect_output(
        f"Bisecting: 12 revisions left to test after this (roughly 4 steps)\n[{A}] subj\n")
    assert step.next_commit == A and step.remaining == 12
    step = parse_bisect_output(f"Bisecting: a merge base must be tested\n[{B}] base\n")
    assert step.next_commit == B and step.remaining is None
    step = parse_bisect_output(f"{A} is the first bad commit\ncommit {A}\nAuthor: x\n")
    assert step.first_bad == A and step.next_commit is None
    step = parse_bisect_output(
        "There are only 'skip'ped commits left to test.\nThe first bad commit could be any of:\n"
        f"{A}\n{B}\nWe cannot bisect more!\n")
    assert step.candidates == (A, B) and step.first_bad is None


def test_resolve_and_validate(tmp_path: Path) -> None:
    h = History(tmp_path / "repo")
    shas = h.linear([1.0, 1.0, 1.0])
    repo = GitRepo(h.path)
    assert repo.resolve("HEAD~2") == shas[0]
    with pytest.raises(UnknownRevision):
        repo.resolve("no-such-branch")
    with pytest.raises(UnknownRevision):
        repo.resolve("--output=/tmp/x")  # never passed to git as an option
    assert repo.validate_range("HEAD~2", "HEAD") == (shas[0], shas[2])
    with pytest.raises(UsageError, match="swap"):
        repo.validate_range("HEAD", "HEAD~1")
    assert repo.rev_list(shas[0], shas[2]) == shas[1:]
    with pytest.raises(NotARepository):
        GitRepo(tmp_path)


def test_worktree_is_isolated_and_removed(tmp_path: Path) -> None:
    h = History(tmp_path / "repo")
    shas = h.linear([1.0, 2.0, 3.0, 4.0])
    before = snapshot(h.path)
    repo = GitRepo(h.path)
    with BisectWorktree(repo, shas[-1]) as wt:
        assert wt.path.is_dir() and h.path not in wt.path.parents
        wt.checkout(shas[1])
        assert (wt.path / "counter.txt").read_text() == "2"
        (wt.path / "junk.txt").write_text("left by a probe")
        (wt.path / "counter.txt").write_text("modified by a probe")
        wt.checkout(shas[1])  # same commit: the probe's leftovers are gone
        assert not (wt.path / "junk.txt").exists()
        assert (wt.path / "counter.txt").read_text() == "2"
        step = wt.start(shas[-1], shas[0])
        assert step.next_commit in shas[1:3]
        assert "git bisect start" in wt.log()
        path = wt.path
    assert not path.exists()
    assert snapshot(h.path) == before


def test_stale_worktree_of_a_dead_process_is_pruned(tmp_path: Path) -> None:
    h = History(tmp_path / "repo")
    h.linear([1.0, 2.0])
    before = snapshot(h.path)
    dead_pid = 2**22 + 12345  # above pid_max, so never alive
    top = Path(tempfile.mkdtemp(prefix=f"{WORKTREE_PREFIX}{dead_pid}-"))
    git(h.path, "worktree", "add", "--detach", "-q", str(top / "wt"), "HEAD")
    subprocess.run(["git", "bisect", "start", "HEAD", "HEAD~1"], cwd=top / "wt",
                   capture_output=True, check=True)
    assert snapshot(h.path) != before
    removed = prune_stale_worktrees(GitRepo(h.path))
    assert removed == [str(top / "wt")]
    assert not top.exists()
    assert snapshot(h.path) == before


def test_worktree_of_a_live_process_is_kept(tmp_path: Path) -> None:
    h = History(tmp_path / "repo")
    h.linear([1.0, 2.0])
    repo = GitRepo(h.path)
    with BisectWorktree(repo, "HEAD") as wt:
        assert prune_stale_worktrees(repo) == []
        assert wt.path.exists()


def test_watchdog_removes_the_worktree_even_when_the_repository_is_gone(tmp_path: Path
                                                                       ) -> None:
    h = History(tmp_path / "repo")
    h.linear([0.9, 0.5])
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sys, time\n"
         "from bisector.git_ops import GitRepo, BisectWorktree\n"
         "wt = BisectWorktree(GitRepo(sys.argv[1]), 'HEAD').__enter__()\n"
         "print(wt.path.parent, flush=True)\n"
         "time.sleep(60)\n", str(h.path)],
        stdout=subprocess.PIPE, text=True)
    assert holder.stdout is not None
    top = Path(holder.stdout.readline().strip())
    assert top.is_dir() and top.name.startswith(WORKTREE_PREFIX)
    subprocess.run(["rm", "-rf", str(h.path)], check=True)
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait()
    deadline = time.monotonic() + 20
    while top.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not top.exists()
