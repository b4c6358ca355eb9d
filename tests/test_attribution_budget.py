"""Attribution when the run budget is short, and when the probe turns noisy at bad.

Through the real CLI on throwaway histories: a `find` whose --max-runs leaves too
little to attribute keeps its culprit (status found, exit 0) and says why the split
is missing; `attribute` asks both commits for two seeds before trusting one.
"""

from __future__ import annotations

import json
from html import unescape
from pathlib import Path

from gitrepo import History, probe_cmd, run_cli


def config_step(tmp_path: Path, **at_bad: object) -> tuple[History, list[str]]:
    """4 commits at a=false, then 4 at a=true; a=true costs 0.3 of ssim."""
    h = History(tmp_path / "repo")
    shas = h.linear([0.9] * 4, config={"a": False, "b": 1}, effects={"a": -0.3})
    shas += h.linear([0.9] * 4, config={"a": True, "b": 2}, effects={"a": -0.3}, **at_bad)
    return h, shas


def test_a_budget_too_small_to_attribute_keeps_the_culprit(tmp_path: Path) -> None:
    h, shas = config_step(tmp_path)
    proc = run_cli("find", "--repo", str(h.path), "--good", shas[0], "--metric", "ssim",
                   "--direction", "higher", "--probe", probe_cmd(), "--max-runs", "7",
                   "--json", "--out", str(tmp_path / "r"), "--summary-md",
                   str(tmp_path / "s.md"), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr  # it was exit 2, "--max-runs 1 is too small"
    result = json.loads(proc.stdout)
    assert result["status"] == "found" and result["first_bad"]["commit"] == shas[4]
    assert result["attribution"] is None
    [note] = result["notes"]
    assert note.startswith(f"attribution of {shas[4][:8]} skipped: ")
    assert "of --max-runs 7 and it needs at least" in note
    assert f"bisector attribute --bad {shas[4][:8]}" in note
    page = unescape((tmp_path / "r" / "index.html").read_text())
    assert note in page  # the report says why its attribution section is empty
    assert "Note: attribution of" in (tmp_path / "s.md").read_text()


def test_attribute_tries_two_seeds_at_bad_before_trusting_one(tmp_path: Path) -> None:
    # exact at good, noisy at bad (its seeds give different values): one seed would
    # report noise as exact effects
    h, shas = config_step(tmp_path, noise=0.05)
    proc = run_cli("attribute", "--repo", str(h.path), "--good", shas[3], "--bad", shas[4],
                   "--metric", "ssim", "--direction", "higher", "--probe", probe_cmd(),
                   "--json", "--out", str(tmp_path / "r"), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    attribution = json.loads(proc.stdout)["attribution"]
    assert len(attribution["seeds"]) >= 2  # it was [0]: good alone looked exact
    a = next(d for d in attribution["deltas"] if d["key"] == "a")
    assert abs(a["effect"] + 0.3) < 1e-9  # the noise follows the seed: pairs cancel it


def test_a_screening_cut_by_the_budget_says_so_in_the_result(tmp_path: Path) -> None:
    # three keys, 8 runs: no factorial fits, each key is set back alone, and the result
    # (not only stderr) must say what that design cannot see
    h = History(tmp_path / "repo")
    shas = h.linear([0.9] * 3, config={"a": False, "b": False, "c": False})
    shas += h.linear([0.9] * 3, config={"a": True, "b": True, "c": True},
                     effects={"a": -0.15, "b": -0.15})
    proc = run_cli("attribute", "--repo", str(h.path), "--good", shas[2], "--bad", shas[3],
                   "--metric", "ssim", "--direction", "higher", "--probe", probe_cmd(),
                   "--max-runs", "8", "--json", "--out", str(tmp_path / "r"), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    attribution = json.loads(proc.stdout)["attribution"]
    assert attribution["design"] == "screening"
    assert any("interactions were not tested" in n for n in attribution["notes"])
