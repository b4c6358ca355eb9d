"""The git adapter: revisions, commit facts, and a bisect in a throwaway worktree.

Every git command passes through `_run_git`, with a fixed locale, hooks off and
a ceiling directory, so a vanished worktree can never make git fall back on the
user's repository. The user's repository gains a linked worktree (and, inside
it, per-worktree `refs/bisect/*`) only while a hunt runs; `BisectWorktree`
removes it on every exit path, a watchdog process removes it if this process is
killed, and the next start prunes what a crash left behind. This module never
checks out, resets, stashes or writes refs in the user's own working tree.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import git as gitpython

from .errors import GitError, NotARepository, UnknownRevision, UsageError
from .model import CommitInfo

WORKTREE_PREFIX = "bisector-wt-"
_SHA_RE = re.compile(r"\b([0-9a-f]{40})\b")


def _run_git(
    args: Sequence[str], cwd: Path, *, check: bool = True, ceiling: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """Run one git command; the single door through which bisector talks to git."""
    env = dict(os.environ, LC_ALL="C", LANGUAGE="C", GIT_TERMINAL_PROMPT="0")
    for var in ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE"):
        env.pop(var, None)  # a caller's GIT_DIR would point our commands elsewhere
    if ceiling is not None:
        env["GIT_CEILING_DIRECTORIES"] = str(ceiling)
    cmd = ["git", "-c", "core.hooksPath=/dev/null", "-c", "advice.detachedHead=false", *args]
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, errors="replace")
    if check and proc.returncode != 0:
        msg = (proc.stderr or proc.stdout).strip().splitlines()
        raise GitError(f"git {' '.join(args[:3])} failed: {msg[-1] if msg else proc.returncode}")
    return proc


class GitRepo:
    """Read-only questions about the user's repository."""

    def __init__(self, path: Path | str) -> None:
        path = Path(path).expanduser()
        if not path.exists():
            raise NotARepository(f"{path} does not exist: pass --repo PATH of a git repository")
        try:
            self._repo = gitpython.Repo(path, search_parent_directories=True)
        except (gitpython.InvalidGitRepositoryError, gitpython.NoSuchPathError):
            raise NotARepository(
                f"{path} is not a git repository: pass --repo PATH of a git checkout"
            ) from None
        if self._repo.bare:
            self.root = Path(self._repo.git_dir).resolve()
        else:
            self.root = Path(self._repo.working_tree_dir or path).resolve()
        self.common_dir = Path(self._repo.common_dir).resolve()

    def git(self, *args: str, check: bool = True) -> str:
        return _run_git(args, self.root, check=check).stdout

    def resolve(self, rev: str) -> str:
        """Full sha of the commit `rev` names, or UnknownRevision."""
        if not rev or rev.startswith("-"):
            raise UnknownRevision(rev)
        proc = _run_git(["rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}"], self.root,
                        check=False)
        sha = proc.stdout.strip()
        if proc.returncode != 0 or not _SHA_RE.fullmatch(sha):
            raise UnknownRevision(rev)
        return sha

    def has_file(self, sha: str, path: str) -> bool:
        """Whether commit `sha` holds `path` (relative to the repository's top)."""
        return _run_git(["cat-file", "-e", f"{sha}:{path}"], self.root,
                        check=False).returncode == 0

    def is_ancestor(self, ancestor: str, descendant: str) -> bool:
        proc = _run_git(["merge-base", "--is-ancestor", ancestor, descendant], self.root,
                        check=False)
        if proc.returncode not in (0, 1):
            raise GitError(f"git merge-base failed: {proc.stderr.strip()}")
        return proc.returncode == 0

    def commit_info(self, sha: str) -> CommitInfo:
        c = self._repo.commit(sha)
        return CommitInfo(
            sha=c.hexsha,
            subject=str(c.summary),
            author=str(c.author.name or ""),
            date=c.committed_datetime.isoformat(),
        )

    def parents(self, sha: str) -> list[str]:
        return [p.hexsha for p in self._repo.commit(sha).parents]

    def rev_list(self, good: str, bad: str, *, first_parent: bool = False) -> list[str]:
        """Commits in good..bad, oldest first (topological)."""
        args = ["rev-list", "--topo-order", "--reverse"]
        if first_parent:
            args.append("--first-parent")
        return self.git(*args, bad, f"^{good}").split()

    def rev_parents(self, good: str, bad: str, *, first_parent: bool = False
                    ) -> tuple[list[str], dict[str, list[str]]]:
        """Commits in good..bad oldest first (bad last), and each one's parents."""
        args = ["rev-list", "--topo-order", "--reverse", "--parents"]
        if first_parent:
            args.append("--first-parent")
        ids, parents = [], {}
        for line in self.git(*args, bad, f"^{good}").splitlines():
            sha, *ps = line.split()
            ids.append(sha)
            parents[sha] = ps[:1] if first_parent else ps
        return ids, parents

    def validate_range(self, good_rev: str, bad_rev: str) -> tuple[str, str]:
        """Resolve both ends and check that good..bad is a range one can bisect."""
        good, bad = self.resolve(good_rev), self.resolve(bad_rev)
        if good == bad:
            raise UsageError(f"--good and --bad are the same commit {good[:8]}: "
                             "pass an older --good")
        if not self.is_ancestor(good, bad):
            if self.is_ancestor(bad, good):
                raise UsageError(f"--good {good_rev} is newer than --bad {bad_rev}: "
                                 "swap them (good must be an ancestor of bad)")
            raise UsageError(f"--good {good_rev} is not an ancestor of --bad {bad_rev}: "
                             "pick a good commit in the history of the bad one")
        return good, bad


@dataclass(frozen=True)
class BisectStep:
    """What git says after a mark: the next commit to test, or the end."""

    next_commit: str | None = None  # None when bisection has finished
    first_bad: str | None = None  # set when git names the first bad commit
    candidates: tuple[str, ...] = ()  # set when only skipped commits are left
    remaining: int | None = None  # "N revisions left to test after this"


def parse_bisect_output(text: str) -> BisectStep:
    """Read git bisect's human output (LC_ALL=C) into a BisectStep."""
    m = re.search(r"^([0-9a-f]{40}) is the first bad commit", text, re.M)
    if m:
        return BisectStep(first_bad=m.group(1))
    if "only 'skip'ped commits left to test" in text:
        after = text.split("could be any of:", 1)[-1]
        shas = tuple(dict.fromkeys(_SHA_RE.findall(after.split("We cannot bisect", 1)[0])))
        return BisectStep(candidates=shas)
    nxt = re.search(r"^\[([0-9a-f]{40})\]", text, re.M)
    if "Bisecting:" in text and nxt:
        # "N revisions left", or "a merge base must be tested" (no count).
        left = re.search(r"Bisecting: (\d+) revisions? left", text)
        return BisectStep(next_commit=nxt.group(1), remaining=int(left.group(1)) if left else None)
    raise GitError(f"unexpected output from git bisect: {text.strip()[:200]!r}")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def prune_stale_worktrees(repo: GitRepo) -> list[str]:
    """Remove worktrees that a killed bisector left behind; returns their paths."""
    removed = []
    listing = repo.git("worktree", "list", "--porcelain")
    for block in listing.split("\n\n"):
        line = block.strip().splitlines()[0] if block.strip() else ""
        if not line.startswith("worktree "):
            continue
        path = Path(line[len("worktree "):])
        m = re.fullmatch(WORKTREE_PREFIX + r"(\d+)-.*", path.parent.name)
        if not m or _pid_alive(int(m.group(1))) and path.exists():
            continue
        _run_git(["worktree", "remove", "--force", "--force", str(path)], repo.root, check=False)
        shutil.rmtree(path.parent, ignore_errors=True)
        removed.append(str(path))
    _run_git(["worktree", "prune"], repo.root, check=False)
    return removed


_WATCHDOG = r"""
import subprocess, sys, shutil, os
root, wt, top = sys.argv[1:4]
sys.stdin.read()  # returns when the parent exits, however it exits
def git(*args):
    try:
        subprocess.run(["git", *args], cwd=root, env=dict(os.environ, LC_ALL="C"),
                       capture_output=True)
    except OSError:  # the repository is gone: nothing left to unregister
        pass
if os.path.exists(top):
    git("worktree", "remove", "--force", "--force", wt)
    shutil.rmtree(top, ignore_errors=True)
    git("worktree", "prune")
"""


class BisectWorktree:
    """A linked worktree outside the user's tree, with a real `git bisect` running in it.

    Use as a context manager. The bisect runs with `--no-checkout`: git only
    chooses and records (BISECT_HEAD and `git bisect log`), and `checkout`
    materializes whichever commit a probe needs, so the search may measure
    commits git did not ask about (endpoints, verification) without confusing it.
    """

    def __init__(self, repo: GitRepo, start_at: str) -> None:
        self.repo = repo
        self.start_at = start_at
        self._top: Path | None = None
        self._watchdog: subprocess.Popen[bytes] | None = None
        self._head: str | None = None
        self._bisecting = False
        self._log_path: Path | None = None
        self.path = Path()

    def __enter__(self) -> BisectWorktree:
        prune_stale_worktrees(self.repo)
        self._top = Path(tempfile.mkdtemp(prefix=f"{WORKTREE_PREFIX}{os.getpid()}-"))
        self.path = self._top / "wt"
        # The watchdog starts before the worktree exists, so there is no moment in
        # which a SIGKILL would leave a registered worktree with nobody to remove it.
        self._watchdog = subprocess.Popen(
            [sys.executable, "-c", _WATCHDOG, str(self.repo.root), str(self.path), str(self._top)],
            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        try:
            _run_git(["worktree", "add", "--detach", "--quiet", str(self.path), self.start_at],
                     self.repo.root)
            self._head = self.start_at
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def scratch(self) -> Path | None:
        """A folder for a run's temporary files that the watchdog removes with the worktree
        (a killed bisector cannot clean up after itself)."""
        return self._top

    def _git(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        assert self._top is not None, "worktree not created"
        return _run_git(args, self.path, check=check, ceiling=self._top)

    def checkout(self, sha: str) -> None:
        """Make the worktree hold exactly `sha`, discarding what a probe left behind."""
        if self._head != sha:
            self._git("checkout", "--force", "--detach", "--quiet", sha)
            self._head = sha
        else:
            self._git("reset", "--hard", "--quiet")
        self._git("clean", "-ffdxq")

    def start(self, bad: str, good: str, *, first_parent: bool = False) -> BisectStep:
        self._bisecting = True
        args = ["bisect", "start", "--no-checkout"]
        if first_parent:
            args.append("--first-parent")
        return self._bisect_result(self._git(*args, bad, good))

    def mark(self, verdict: str, sha: str) -> BisectStep:
        """Tell git a commit is good, bad or skip; returns its next step."""
        assert verdict in ("good", "bad", "skip")
        return self._bisect_result(self._git("bisect", verdict, sha, check=False))

    def _bisect_result(self, proc: subprocess.CompletedProcess[str]) -> BisectStep:
        text = proc.stdout + proc.stderr
        try:
            return parse_bisect_output(text)
        except GitError:
            if proc.returncode == 0:
                raise
        lines = text.strip().splitlines()
        raise GitError(f"git bisect failed: {lines[-1] if lines else proc.returncode}")

    def replay(self, bad: str, good: str, marks: list[tuple[str, str]], *,
               first_parent: bool = False) -> str:
        """Start a bisection and apply (verdict, sha) marks in one `git bisect replay`
        (which ends any bisection in progress first)."""
        assert self._top is not None
        self._bisecting, self._head = True, None
        opts = "'--no-checkout' " + ("'--first-parent' " if first_parent else "")
        lines = [f"git bisect start {opts}'{bad}' '{good}'"]
        lines += [f"git bisect {verdict} {sha}" for verdict, sha in marks]
        log = self._top / "replay.log"
        log.write_text("\n".join(lines) + "\n")
        self._git("bisect", "replay", str(log), check=False)
        return self.log()

    def reset(self) -> None:
        """End any bisection in the worktree, so that another can start."""
        if not self._bisecting:  # a shell script of 25 ms for nothing
            return
        self._git("bisect", "reset", check=False)
        self._bisecting, self._head = False, None  # reset may have moved HEAD

    def log(self) -> str:
        """The bisection's log: `git bisect log` prints this file (and takes 17 ms)."""
        if self._log_path is None:
            path = self._git("rev-parse", "--git-path", "BISECT_LOG").stdout.strip()
            self._log_path = self.path / path  # relative paths are the worktree's
        try:
            return self._log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:  # no bisection in progress
            return ""

    def close(self) -> None:
        if self._top is None:
            return
        top, self._top = self._top, None
        if self._bisecting and self.path.exists():
            _run_git(["bisect", "reset"], self.path, check=False, ceiling=top)
        _run_git(["worktree", "remove", "--force", "--force", str(self.path)], self.repo.root,
                 check=False)
        shutil.rmtree(top, ignore_errors=True)
        _run_git(["worktree", "prune"], self.repo.root, check=False)
        if self._watchdog is not None:
            assert self._watchdog.stdin is not None
            self._watchdog.stdin.close()
            try:
                self._watchdog.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._watchdog.kill()
            self._watchdog = None
