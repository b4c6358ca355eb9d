"""Rounds and fixed costs of a parallel hunt: spare slots, start-up imports, timing.

Real repositories, real probes and real subprocesses; the counts asserted are
the ones a deterministic probe makes exact.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from contextlib import ExitStack
from pathlib import Path

import pytest
from gitrepo import History, git, probe_cmd, run_cli

from bisector.background import close_in_background
from bisector.searchers import spare_slot_commits


def pieces(n: int, cuts: list[int]) -> list[int]:
    """Candidates left on each side of the cuts (a cut at i keeps 0..i on the bad side)."""
    edges = [-1, *cuts, n - 1]
    return [b - a for a, b in zip(edges[:-1], edges[1:], strict=True)]


@pytest.mark.parametrize("n", [1, 2, 3, 4, 10, 999])
@pytest.mark.parametrize("jobs", [1, 2, 3, 4, 5, 8, 9])
def test_spare_slots_cut_the_range_evenly(n: int, jobs: int) -> None:
    ids = [f"c{i}" for i in range(n)]  # ids[-1] is bad: never worth a spare slot
    picked = spare_slot_commits(ids, jobs)
    assert len(picked) == min((-3) % jobs, n - 1)  # 3 endpoint runs: fill their last wave
    cuts = [ids.index(sha) for sha in picked]
    assert cuts == sorted(set(cuts)) and all(c < n - 1 for c in cuts)
    sizes = pieces(n, cuts)
    assert min(sizes) >= 1 and max(sizes) - min(sizes) <= 1


def test_spare_slot_of_four_jobs_is_the_middle() -> None:
    ids = [f"c{i}" for i in range(999)]
    assert spare_slot_commits(ids, 4) == ["c499"]
    assert spare_slot_commits(ids, 3) == []  # the three endpoint runs fill all three slots


def hunt(repo: Path, good: str, jobs: int) -> dict:
    proc = run_cli("find", "--repo", str(repo), "--good", good, "--metric", "ssim",
                   "--probe", probe_cmd(), "--json", "--no-attribute", "--jobs", str(jobs),
                   "--store", str(repo.parent / f"store-{jobs}.sqlite"),
                   "--out", str(repo.parent / f"report-{jobs}"))
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


@pytest.fixture(scope="module")
def hundred(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    # c0 (good) .. c60 at 0.9, c61 .. c100 at 0.5: 100 candidates, culprit c61
    h = History(tmp_path_factory.mktemp("rounds") / "repo")
    return h.path, h.linear([0.9] * 61 + [0.5] * 40)


def test_two_jobs_use_the_idle_endpoint_slot_and_save_a_round(
        hundred: tuple[Path, list[str]]) -> None:
    repo, shas = hundred
    result = hunt(repo, shas[0], 2)
    assert result["first_bad"]["commit"] == shas[61]
    batches = result["batches"]
    assert batches[0] == {**batches[0], "role": "endpoint", "runs": 4}
    # 100 candidates: halved by the spare run, then thirds: 50 -> 17 -> 6 -> 2 -> 1.
    # Without the spare run: 100 -> 34 -> 12 -> 4 -> 2 -> 1, one round more.
    assert result["rounds"] == len(batches) - 1 == 4
    assert sum(b["runs"] for b in batches) == result["probe_runs"]


def test_three_jobs_have_no_idle_endpoint_slot(hundred: tuple[Path, list[str]]) -> None:
    repo, shas = hundred
    result = hunt(repo, shas[0], 3)
    assert result["first_bad"]["commit"] == shas[61]
    assert [b["runs"] for b in result["batches"]][0] == 3


def test_a_parallel_hunt_reports_its_batches_and_timing(
        hundred: tuple[Path, list[str]]) -> None:
    repo, shas = hundred
    result = hunt(repo, shas[0], 4)
    assert result["first_bad"]["commit"] == shas[61]
    # the four worktrees went away while the report was written: none is left
    assert git(repo, "worktree", "list", "--porcelain").count("worktree ") == 1
    assert set(result["timing"]) == {"setup", "hunt", "report", "cleanup"}
    assert sum(b["seconds"] for b in result["batches"]) <= result["timing"]["hunt"]
    assert Path(result["report"]).is_file()


def test_closing_in_background_hands_its_error_to_the_waiter() -> None:
    closed_in: list[str] = []

    def fail() -> None:
        closed_in.append(threading.current_thread().name)
        raise OSError("disk gone")

    stack = ExitStack()
    stack.callback(fail)
    wait = close_in_background(stack)
    with pytest.raises(OSError, match="disk gone"):
        wait()
    assert closed_in == ["bisector-cleanup"]


def test_start_up_imports_stay_light_and_preload_brings_the_rest() -> None:
    # What `find` imports before its first probe run, then what preload() adds while it runs.
    code = (
        "import sys, threading\n"
        "import bisector.cli, bisector.session\n"
        "heavy = ('numpy', 'scipy', 'matplotlib', 'jinja2', 'distributed', 'torch')\n"
        "print([m for m in heavy if m in sys.modules])\n"
        "bisector.background.preload()\n"
        "[t.join() for t in threading.enumerate() if t.name == 'bisector-preload']\n"
        "print([m for m in ('bisector.noisy', 'bisector.report') if m in sys.modules])\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.splitlines()
    assert out == ["[]", "['bisector.noisy', 'bisector.report']"]


class Folder:
    """A Checkout that is just a folder (the probe below needs no commit)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def checkout(self, sha: str) -> None:
        pass


def test_local_executor_tells_when_runs_have_started(tmp_path: Path) -> None:
    from bisector.executors import LocalExecutor
    from bisector.model import RunRequest

    executor = LocalExecutor([Folder(tmp_path)])
    request = RunRequest("0" * 40, f"{sys.executable} -c \"import time; time.sleep(0.5); "
                         "print('{\\\"metrics\\\": {\\\"m\\\": 1}}')\"", 0, {})
    assert not executor.wait_started(1, timeout=0.01)
    done: list[bool] = []
    worker = threading.Thread(target=lambda: done.append(executor.run(
        request, artifacts_dir=tmp_path / "a", timeout=10, cancel=threading.Event()).ok))
    worker.start()
    assert executor.wait_started(1, timeout=5)
    assert not done  # started, not finished: the probe still sleeps
    assert not executor.wait_started(2, timeout=0.05)
    worker.join()
    assert done == [True]


def test_the_command_line_skips_the_collector_on_its_way_out() -> None:
    # Finalizing numpy, scipy and matplotlib objects took a tenth of a second per command.
    code = ("import atexit, gc, sys\n"
            "atexit.register(lambda: print('frozen', gc.get_freeze_count() > 0))\n"
            "sys.argv = ['bisector', 'runs', '--help']\n"
            "from bisector.cli import main\n"
            "main()\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "List stored hunts" in proc.stdout
    assert proc.stdout.splitlines()[-1] == "frozen True"
