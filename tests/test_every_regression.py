"""`find` reports every regression in a range, not only the first or the largest."""

from __future__ import annotations

import json
import random
import sys
from pathlib import Path

from gitrepo import History, probe_cmd, run_cli

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
from make_history import build  # noqa: E402


def find(repo: Path, good: str, *extra: str) -> dict:
    proc = run_cli("find", "--repo", str(repo), "--good", good, "--metric", "ssim",
                   "--probe", probe_cmd(), "--json", "--out", str(repo.parent / "report"),
                   *extra)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_two_separate_regressions_are_both_found(tmp_path: Path) -> None:
    # c1..c10 0.9 | c11..c25 0.8 (first drop, 0.1) | c26..c40 0.5 (second drop, 0.3)
    h = History(tmp_path / "repo")
    shas = h.linear([0.9] * 10 + [0.8] * 15 + [0.5] * 15)
    result = find(h.path, shas[0], "--min-effect", "0.05")
    found = [r["commit"] for r in result["regressions"]]
    assert found == [shas[10], shas[25]]  # earliest first
    assert result["first_bad"]["commit"] == shas[10]
    effects = [round(r["effect"], 6) for r in result["regressions"]]
    assert effects == [-0.1, -0.3]
    html = (tmp_path / "report" / "index.html").read_text()
    assert shas[10][:8] in html and shas[25][:8] in html


def test_regression_then_partial_recovery_is_one_regression(tmp_path: Path) -> None:
    # c1..c10 0.9 | c11..c25 0.5 (drop) | c26..c35 0.7 (partial recovery)
    h = History(tmp_path / "repo")
    shas = h.linear([0.9] * 10 + [0.5] * 15 + [0.7] * 10)
    result = find(h.path, shas[0], "--min-effect", "0.05")
    assert [r["commit"] for r in result["regressions"]] == [shas[10]]
    assert round(result["first_bad"]["effect"], 6) == -0.4


def test_steps_below_min_effect_are_not_hunted(tmp_path: Path) -> None:
    # a 0.02 dip that matters to nobody, then the real 0.4 drop
    h = History(tmp_path / "repo")
    shas = h.linear([0.9] * 8 + [0.88] * 8 + [0.48] * 8)
    result = find(h.path, shas[0], "--min-effect", "0.05")
    assert [r["commit"] for r in result["regressions"]] == [shas[16]]


def test_two_regressions_under_seed_noise(tmp_path: Path) -> None:
    # the same two drops, with noise that follows the seed (paired runs cancel it)
    h = History(tmp_path / "repo")
    shas = h.linear([0.9] * 10 + [0.75] * 12 + [0.5] * 12, noise=0.05)
    result = find(h.path, shas[0], "--min-effect", "0.05", "--no-attribute")
    assert [r["commit"] for r in result["regressions"]] == [shas[10], shas[22]]
    assert all(r["confidence"] >= 0.99 for r in result["regressions"])
    # of the ranges beside the culprit found first, the one holding the other was searched
    searched = [(r["good"], r["bad"]) for r in result["ranges"] if r["searched"]]
    assert searched in ([(shas[10], shas[-1])], [(shas[0], shas[21])])
    assert len(result["ranges"]) == 4


def test_a_slow_drift_beside_the_culprit_is_not_searched_as_a_second_regression(
        tmp_path: Path) -> None:
    # The benchmark history (300 commits, a 1.5 sd step, a 1 sd linear drift) whose
    # culprit..bad range drifts by 0.73 and first measured 0.95 against min_effect 0.75:
    # the point estimate alone sent it into a second search of 250 runs on the drift.
    seed = 2007
    culprit = random.Random(seed).randrange(30, 270)
    built = build(tmp_path / "repo", 301, culprit, effect=1.5, noise=1.0, drift=1.0, salt=seed)
    proc = run_cli("find", "--repo", str(built.path), "--good", built.shas[0], "--metric",
                   "score", "--direction", "higher", "--probe", f"{sys.executable} probe.py",
                   "--min-effect", "0.75",
                   "--no-attribute", "--json", "--out", str(tmp_path / "report"), timeout=600)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["status"] == "found" and result["first_bad"]["commit"] == built.culprit
    assert [r["commit"] for r in result["regressions"]] == [built.culprit]
    right = f"{built.culprit[:8]}..{built.shas[-1][:8]}"
    assert "searching it too" not in proc.stderr
    assert any(right in line and "not searched" in line for line in proc.stderr.splitlines())
    checked = {(r["good"], r["bad"]): r for r in result["ranges"]}
    after = checked[(built.culprit, built.shas[-1])]
    assert not after["searched"] and after["p_exceeds"] < 0.9 and after["regression"] > 0
    html = (tmp_path / "report" / "index.html").read_text()
    table = html.split('id="ranges"')[1].split("</table>")[0]
    assert built.culprit[:8] in table and built.shas[-1][:8] in table and ">no<" in table


def test_checking_the_ranges_beside_the_culprit_keeps_to_max_runs(tmp_path: Path) -> None:
    # Another benchmark drift history: its culprit..bad range is undecided at first, and
    # completing its pairs took the hunt past --max-runs (106 runs against 100).
    seed = 5007
    culprit = random.Random(seed).randrange(30, 270)
    built = build(tmp_path / "repo", 301, culprit, effect=1.5, noise=1.0, drift=1.0, salt=seed)
    proc = run_cli("find", "--repo", str(built.path), "--good", built.shas[0], "--metric",
                   "score", "--direction", "higher", "--probe", f"{sys.executable} probe.py",
                   "--min-effect", "0.75", "--max-runs", "100", "--no-attribute", "--json",
                   "--out", str(tmp_path / "report"), timeout=600)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["status"] == "found" and result["first_bad"]["commit"] == built.culprit
    assert result["probe_runs"] <= 100
    assert len(result["ranges"]) == 2 and not any(r["searched"] for r in result["ranges"])
