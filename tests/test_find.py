"""`bisector find` end to end through the CLI, on real throwaway repositories.

Every test checks the answer and that the user's repository is exactly as it was.
"""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from gitrepo import History, git, probe_cmd, run_cli, snapshot

from bisector.searchers import spare_slot_commits


def find(repo: Path, good: str, *extra: str, bad: str = "HEAD",
         env: dict[str, str] | None = None) -> tuple[int, dict, str]:
    proc = run_cli("find", "--repo", str(repo), "--good", good, "--bad", bad,
                   "--metric", "ssim", "--probe", probe_cmd(), "--json", *extra, env=env)
    out = proc.stdout.strip()
    result = json.loads(out) if out else {}
    return proc.returncode, result, proc.stderr


def runs_logged(log: Path) -> list[str]:
    return log.read_text().split("\n")[:-1] if log.exists() else []


def test_linear_history_finds_culprit_with_log2_runs(tmp_path: Path) -> None:
    # c1 .. c20 (0.9) -> c21 .. c60 (0.6): first bad is c21
    h = History(tmp_path / "repo")
    shas = h.linear([0.9] * 20 + [0.6] * 40)
    before = snapshot(h.path)
    log = tmp_path / "log"
    code, result, err = find(h.path, shas[0], env={"PROBE_LOG": str(log)})
    assert code == 0, err
    assert result["status"] == "found"
    assert result["first_bad"]["commit"] == shas[20]
    assert result["first_bad"]["subject"] == "commit 21"
    assert result["first_bad"]["parent_mean"] == pytest.approx(0.9)
    assert result["first_bad"]["mean"] == pytest.approx(0.6)
    assert result["first_bad"]["confidence"] == 1.0
    n = len(shas) - 1
    assert result["probe_runs"] == len(runs_logged(log))
    assert result["probe_runs"] <= math.ceil(math.log2(n)) + 3
    assert result["direction"] == "higher"
    assert snapshot(h.path) == before


def test_second_run_reuses_the_store(tmp_path: Path) -> None:
    h = History(tmp_path / "repo")
    shas = h.linear([0.9] * 5 + [0.5] * 10)
    log = tmp_path / "log"
    code1, r1, _ = find(h.path, shas[0], env={"PROBE_LOG": str(log)})
    first = len(runs_logged(log))
    code2, r2, err = find(h.path, shas[0], env={"PROBE_LOG": str(log)})
    assert code1 == code2 == 0
    assert r2["first_bad"]["commit"] == r1["first_bad"]["commit"] == shas[5]
    assert len(runs_logged(log)) == first  # nothing ran again
    assert r2["probe_runs"] == 0 and r2["reused_runs"] >= first


def test_regression_on_side_branch_is_found_after_merge(tmp_path: Path) -> None:
    #   m1 - m2 - m3 ------- M - m5      (main, 0.9 until the merge brings the side in)
    #          \            /
    #           s1 - s2 - s3             (side: s2 drops to 0.5)
    h = History(tmp_path / "repo")
    good = h.commit("m1", value=0.9)
    h.commit("m2", value=0.9)
    git(h.path, "checkout", "-q", "-b", "side")
    h.commit("s1", value=0.9)
    s2 = h.commit("s2", value=0.5)
    h.commit("s3", value=0.5)
    git(h.path, "checkout", "-q", "main")
    h.commit("m3", value=0.9)
    git(h.path, "merge", "-q", "--no-ff", "-X", "theirs", "side", "-m", "merge side",
        env={"GIT_AUTHOR_DATE": "2026-02-01T00:00:00+00:00",
             "GIT_COMMITTER_DATE": "2026-02-01T00:00:00+00:00"})
    h.commit("m5", value=0.5)
    before = snapshot(h.path)
    code, result, err = find(h.path, good)
    assert code == 0, err
    assert result["first_bad"]["commit"] == s2
    assert snapshot(h.path) == before


def test_first_parent_blames_the_merge(tmp_path: Path) -> None:
    # same graph as above: along first parents only, the merge itself is the culprit
    h = History(tmp_path / "repo")
    good = h.commit("m1", value=0.9)
    git(h.path, "checkout", "-q", "-b", "side")
    h.commit("s1", value=0.5)
    git(h.path, "checkout", "-q", "main")
    h.commit("m2", value=0.9)
    git(h.path, "merge", "-q", "--no-ff", "-X", "theirs", "side", "-m", "merge side",
        env={"GIT_AUTHOR_DATE": "2026-02-01T00:00:00+00:00",
             "GIT_COMMITTER_DATE": "2026-02-01T00:00:00+00:00"})
    merge = git(h.path, "rev-parse", "HEAD")
    h.commit("m4", value=0.5)
    code, result, err = find(h.path, good, "--first-parent")
    assert code == 0, err
    assert result["first_bad"]["commit"] == merge


def test_untestable_commits_next_to_culprit_are_ambiguous(tmp_path: Path) -> None:
    # c1..c10 good, c11 c12 untestable (exit 125), c13 bad, ...: culprit in {c11, c12, c13}
    h = History(tmp_path / "repo")
    shas = h.linear([0.9] * 10)
    shas += [h.commit(value=0.5, exit=125) for _ in range(2)]
    shas += h.linear([0.5] * 8)
    before = snapshot(h.path)
    code, result, err = find(h.path, shas[0])
    assert code == 3, err
    assert result["status"] == "ambiguous"
    assert result["first_bad"] is None
    assert result["candidates"] == [shas[10], shas[11], shas[12]]  # in history order
    assert snapshot(h.path) == before


def test_crashing_commit_is_untestable_not_bad(tmp_path: Path) -> None:
    # c6 crashes (exit 1) but the real culprit is c12: the crash must not be blamed
    h = History(tmp_path / "repo")
    shas = h.linear([0.9] * 5)
    shas.append(h.commit(value=0.9, exit=1))
    shas += h.linear([0.9] * 5 + [0.5] * 6)
    code, result, err = find(h.path, shas[0])
    assert code == 0, err
    assert result["first_bad"]["commit"] == shas[11]
    crashed = [s for s in result["trail"] if s["commit"] == shas[5]]
    if crashed:  # the crash was visited: retried once, then skipped with its reason
        assert crashed[0]["verdict"] == "skip"
        assert crashed[0]["n"] == 1 and "code 1" in crashed[0]["reason"]


def _pids_of(pattern: str) -> set[int]:
    out = subprocess.run(["pgrep", "-f", pattern], capture_output=True, text=True).stdout
    return {int(p) for p in out.split()}


def test_hanging_probe_times_out_and_leaves_no_process(tmp_path: Path) -> None:
    # c4 hangs (and starts a grandchild that sleeps); the culprit is c8
    h = History(tmp_path / "repo")
    shas = h.linear([0.9] * 3)
    shas.append(h.commit(value=0.9, hang=True))
    shas += h.linear([0.9] * 3 + [0.5] * 4)
    before_pids = _pids_of("time.sleep\\(1000\\)")
    t0 = time.monotonic()
    code, result, err = find(h.path, shas[0], "--timeout", "2")
    assert code == 0, err
    assert result["first_bad"]["commit"] == shas[7]
    assert time.monotonic() - t0 < 60
    assert _pids_of("time.sleep\\(1000\\)") == before_pids


def test_dirty_user_checkout_is_untouched(tmp_path: Path) -> None:
    h = History(tmp_path / "repo")
    shas = h.linear([0.9] * 4 + [0.4] * 4)
    (h.path / "counter.txt").write_text("my uncommitted edit")
    (h.path / "notes.txt").write_text("untracked")
    (h.path / "behavior.json").write_text('{"value": 0.1}')
    git(h.path, "add", "behavior.json")  # staged change too
    git(h.path, "stash", "list")
    before = snapshot(h.path)
    code, result, err = find(h.path, shas[0])
    assert code == 0, err
    assert result["first_bad"]["commit"] == shas[4]  # committed history, not the dirty files
    assert snapshot(h.path) == before


def test_pin_is_passed_and_a_probe_ignoring_it_is_an_error(tmp_path: Path) -> None:
    # object_big turns on at c5 and costs 0.4; pinned false, nothing regresses
    h = History(tmp_path / "repo")
    shas = h.linear([0.9] * 4, config={"object_big": False}, effects={"object_big": -0.4})
    shas += h.linear([0.9] * 4, config={"object_big": True}, effects={"object_big": -0.4})
    code, result, err = find(h.path, shas[0])
    assert code == 0 and result["first_bad"]["commit"] == shas[4], err
    code, result, err = find(h.path, shas[0], "--pin", "object_big=False")
    assert code == 1, err
    assert result["status"] == "no-regression"
    assert result["pins"] == {"object_big": False}

    h2 = History(tmp_path / "repo2")
    shas = h2.linear([0.9] * 2 + [0.5] * 2, config={"k": 1}, ignore_pins=True)
    before = snapshot(h2.path)
    code, result, err = find(h2.path, shas[0], "--pin", "k=2")
    assert code == 2
    line = err.strip().splitlines()[-1]
    assert "k" in line and "2" in line and "1" in line and shas[0][:8] in line
    assert snapshot(h2.path) == before
    # values are spelled as the probe's JSON spells them, not as Python's repr
    h3 = History(tmp_path / "repo3")
    shas = h3.linear([0.9] * 2 + [0.5] * 2, config={"flag": False}, ignore_pins=True)
    code, result, err = find(h3.path, shas[0], "--pin", "flag=true")
    assert code == 2
    assert "ignored --pin flag: asked for true, it reported false;" in err


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_sigint_then_same_command_resumes(tmp_path: Path) -> None:
    h = History(tmp_path / "repo")
    # 9 runs of 1 s: Ctrl-C after the 5th leaves 4 s of hunt, enough on a loaded machine
    shas = h.linear([0.9] * 30 + [0.5] * 34, slow=1.0)
    before = snapshot(h.path)
    log = tmp_path / "log"
    args = [sys.executable, "-m", "bisector", "find", "--repo", str(h.path), "--good", shas[0],
            "--metric", "ssim", "--probe", probe_cmd(), "--json"]
    env = dict(os.environ, PROBE_LOG=str(log))
    # a suite started in the background (`cmd &`) inherits an ignored SIGINT: give it back
    proc = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, preexec_fn=_default_sigint)
    deadline = time.monotonic() + 60
    while len(runs_logged(log)) < 5 and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "resume" in err
    assert json.loads(out) == {"status": "error", "exit_code": 130, "error": (
        "interrupted; finished runs are stored, run the same command to resume")}
    assert snapshot(h.path) == before
    done_before = runs_logged(log)
    proc2 = subprocess.run(args, env=env, capture_output=True, text=True, timeout=120)
    assert proc2.returncode == 0, proc2.stderr
    assert json.loads(proc2.stdout)["first_bad"]["commit"] == shas[30]
    again = runs_logged(log)[len(done_before):]
    # No stored run is repeated; only the run in flight at Ctrl-C may be (its probe can
    # finish a moment before bisector records it, and then it is not finished for us).
    assert len(set(again) & set(done_before)) <= 1
    assert len(done_before) >= 5 and len(again) < len(done_before) + 10
    assert snapshot(h.path) == before


def test_sigkill_leaves_nothing_behind_after_watchdog(tmp_path: Path) -> None:
    h = History(tmp_path / "repo")
    shas = h.linear([0.9] * 10 + [0.5] * 10, slow=0.5)
    before = snapshot(h.path)
    log, temp = tmp_path / "log", tmp_path / "temp"
    temp.mkdir()
    proc = subprocess.Popen(
        [sys.executable, "-m", "bisector", "find", "--repo", str(h.path), "--good", shas[0],
         "--metric", "ssim", "--probe", probe_cmd()],
        env=dict(os.environ, PROBE_LOG=str(log), TMPDIR=str(temp)), stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while len(runs_logged(log)) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(git(h.path, "worktree", "list").splitlines()) == 2  # the hunt's worktree
    proc.kill()
    proc.wait()
    deadline = time.monotonic() + 20
    while (snapshot(h.path) != before or any(temp.iterdir())) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert snapshot(h.path) == before
    assert not any(temp.iterdir())  # the worktree and the runs' result folders are gone


@pytest.mark.parametrize("args, expected", [
    (["--good", "nosuchrev"], "unknown revision 'nosuchrev'"),
    (["--good", "HEAD"], "same commit"),
    (["--good", "HEAD", "--bad", "HEAD~2"], "swap"),
    (["--good", "HEAD~2", "--metric", "nosuch_metric_x", "--direction", "higher"],
     "reported: mae, ssim"),
    (["--good", "HEAD~2", "--pin", "novalue"], "malformed --pin"),
    (["--good", "HEAD~2", "--metric", "weird"], "--direction"),
    (["--good", "HEAD~2", "--metirc", "ssim"], "No such option: --metirc"),
    (["--good", "HEAD~2", "--jobs", "two"], "Invalid value for '--jobs'"),
])
def test_bad_input_is_one_line_and_exit_2(tmp_path: Path, args: list[str], expected: str
                                          ) -> None:
    h = History(tmp_path / "repo")
    h.linear([0.9, 0.9, 0.5, 0.5])
    before = snapshot(h.path)
    base = ["find", "--repo", str(h.path), "--probe", probe_cmd()]
    if "--metric" not in args:
        base += ["--metric", "ssim"]
    proc = run_cli(*base, *args)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and expected in lines[0], proc.stderr
    assert snapshot(h.path) == before


def test_a_mistyped_option_with_json_still_prints_an_error_object(tmp_path: Path) -> None:
    h = History(tmp_path / "repo")
    h.linear([0.9, 0.5])
    proc = run_cli("find", "--repo", str(h.path), "--good", "HEAD~1", "--metric", "ssim",
                   "--probe", probe_cmd(), "--jobs", "two", "--json")
    assert proc.returncode == 2
    error = json.loads(proc.stdout)
    assert error["status"] == "error" and error["exit_code"] == 2
    assert "--jobs" in error["error"] and "bisector find --help" in error["error"]


def test_not_a_repository_and_missing_probe(tmp_path: Path) -> None:
    (tmp_path / "plain").mkdir()
    proc = run_cli("find", "--repo", str(tmp_path / "plain"), "--good", "HEAD~1",
                   "--metric", "ssim", "--probe", "true")
    assert proc.returncode == 2 and "not a git repository" in proc.stderr
    h = History(tmp_path / "repo")
    h.linear([0.9, 0.5])
    before = snapshot(h.path)
    proc = run_cli("find", "--repo", str(h.path), "--good", "HEAD~1", "--metric", "ssim",
                   "--probe", "no-such-probe-cmd --x")
    assert proc.returncode == 2 and "no-such-probe-cmd" in proc.stderr, proc.stderr
    assert snapshot(h.path) == before


@pytest.mark.parametrize("behavior, expected", [
    ({"value": float("nan")}, "NaN"),
    ({"value": 0.9, "exit": 0}, "no result"),
])
def test_protocol_errors_at_endpoint_exit_2(tmp_path: Path, behavior: dict, expected: str
                                            ) -> None:
    h = History(tmp_path / "repo")
    if "exit" in behavior:  # exit 0 without printing a result
        good = h.commit(**behavior)
    else:
        (h.path / "probe.py").write_text(
            'import json\nprint(\'{"metrics": {"ssim": NaN}}\')\n')
        good = h.commit(value=0.9)
    h.linear([0.5, 0.5])
    proc = run_cli("find", "--repo", str(h.path), "--good", good, "--metric", "ssim",
                   "--probe", probe_cmd())
    assert proc.returncode == 2, proc.stderr
    assert expected in proc.stderr


def test_probe_failing_at_endpoint_exits_4_with_tail(tmp_path: Path) -> None:
    h = History(tmp_path / "repo")
    good = h.commit(value=0.9, exit=3)
    h.linear([0.5, 0.5])
    code, result, err = find(h.path, good)
    assert code == 4
    assert result["status"] == "error"
    assert "cannot run here" in err  # the probe's own stderr, from the output tail


def test_a_probe_file_not_in_the_commit_is_named_in_the_error(tmp_path: Path) -> None:
    # the user wrote myprobe.py beside their checkout and never committed it
    h = History(tmp_path / "repo")
    good = h.commit(value=0.9)
    h.linear([0.5, 0.5])
    (h.path / "myprobe.py").write_text((h.path / "probe.py").read_text())
    proc = run_cli("find", "--repo", str(h.path), "--good", good, "--metric", "ssim",
                   "--probe", f"{sys.executable} myprobe.py", "--no-attribute",
                   "--out", str(tmp_path / "r"), cwd=tmp_path)
    assert proc.returncode == 4
    assert f"myprobe.py is not in {good[:8]}: the probe runs in a checkout of each commit, " \
        "so commit it there or give its absolute path" in proc.stderr


def test_a_failed_run_is_tried_again_by_the_next_invocation(tmp_path: Path) -> None:
    # the fix for a timeout is a longer --timeout, which the store does not key on
    h = History(tmp_path / "repo")
    good = h.commit(value=0.9, slow=2)
    h.linear([0.9, 0.5, 0.5])
    code, result, err = find(h.path, good, "--timeout", "1")
    assert code == 4 and "timed out" in err, err
    code, result, err = find(h.path, good, "--timeout", "20")
    assert code == 0, err
    assert result["status"] == "found" and result["first_bad"]["subject"] == "commit 3"


def test_probe_command_prints_parsed_result(tmp_path: Path) -> None:
    h = History(tmp_path / "repo")
    h.linear([0.9, 0.7], config={"a": 1})
    before = snapshot(h.path)
    proc = run_cli("probe", "--repo", str(h.path), "--rev", "HEAD", "--probe", probe_cmd(),
                   "--pin", "a=5", "--seed", "3")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["metrics"]["ssim"] == pytest.approx(0.7)
    assert out["config"] == {"a": 5} and out["seed"] == 3
    assert out["commit"] == git(h.path, "rev-parse", "HEAD")
    assert snapshot(h.path) == before


def test_untestable_spare_slot_commit_is_not_reported_as_good(tmp_path: Path) -> None:
    # With --jobs 2 the endpoint round's spare slot measures the middle of the range
    # before the noisy engine starts; when that commit cannot be tested (exit 125) the
    # engine must hear so, and the trail must not infer a verdict for it.
    h = History(tmp_path / "repo")
    shas = h.linear([0.9] * 12, noise=0.02)
    shas.append(h.commit(value=0.9, noise=0.02, exit=125))
    shas += h.linear([0.9] * 4 + [0.6] * 7, noise=0.02)
    assert spare_slot_commits(shas[1:], 2) == [shas[12]]
    code, result, err = find(h.path, shas[0], "--jobs", "2")
    assert code == 0, err
    assert result["first_bad"]["commit"] == shas[17]
    # found needs both the culprit's place and the regression itself at --confidence
    assert min(result["first_bad"]["confidence"], result["first_bad"]["p_regression"]) >= 0.99
    row = next(r for r in result["trail"] if r["commit"] == shas[12])
    assert row["verdict"] == "skip" and row["mean"] is None
    assert "untestable" in row["reason"]
    # the progress lines say where the search stands while runs are in flight
    said = [line for line in err.splitlines() if "probe runs in flight" in line]
    assert said and all("; P(regression) " in line for line in said)
    assert f"likeliest culprit {shas[17][:8]}" in said[-1]
    assert all(line.rsplit("; ", 1)[-1] in ("measuring the endpoints", "searching",
                                            "verifying the culprit against its parent")
               or "capped" in line or "levels" in line for line in said)


def test_a_probe_exact_only_at_the_endpoints_seeds_is_rechecked_not_trusted(
        tmp_path: Path) -> None:
    # Seeds 0 and 1 agree at good, and bad is exact; the commits between the culprit and
    # bad are noisy (the seed moves them by a different amount at each). Bisected as
    # exact, their high seed-0 values read as good and put the culprit at bad, "1.000".
    h = History(tmp_path / "repo")
    shas = h.linear([0.9] * 10)
    shas += [h.commit(value=0.5, noise=-(0.3 + 0.02 * i)) for i in range(9)]
    shas += [h.commit(value=0.5)]
    proc = run_cli("find", "--repo", str(h.path), "--good", shas[0], "--metric", "ssim",
                   "--direction", "higher", "--probe", probe_cmd(), "--no-attribute",
                   "--json", "--out", str(tmp_path / "r"), cwd=tmp_path)
    result = json.loads(proc.stdout)
    assert result["status"] == "found" and result["first_bad"]["commit"] == shas[10]
    assert result["first_bad"]["confidence"] < 1.0  # judged under noise, not as exact
    assert "the probe is not seed-insensitive after all (seeds 0 and 1 give" in proc.stderr


def test_no_regression_from_one_run_at_bad_is_checked_with_a_second_seed(
        tmp_path: Path) -> None:
    # bad's seed 0 lands above good; its seed 1 shows the probe is noisy there
    h = History(tmp_path / "repo")
    shas = h.linear([0.9] * 10)
    shas += [h.commit(value=0.5, noise=-(0.3 + 0.02 * i)) for i in range(10)]
    proc = run_cli("find", "--repo", str(h.path), "--good", shas[0], "--metric", "ssim",
                   "--direction", "higher", "--probe", probe_cmd(), "--no-attribute",
                   "--json", "--out", str(tmp_path / "r"), cwd=tmp_path)
    result = json.loads(proc.stdout)
    assert result["status"] == "found" and result["first_bad"]["commit"] == shas[10]
    assert "searching 19 commits with the noisy engine" in proc.stderr
