"""`find` then attribution, and `bisector attribute`, through the CLI on a real history.

The CASE.md story in miniature: one commit starts passing object_big, probe_big
and pad_object into the payload; only object_big changes the metric.

    c1 .. c8 (payload without the keys) -> c9 (propagate the keys) -> c10 .. c14
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from gitrepo import History, probe_cmd, run_cli

CASE = {"object_big": -0.25, "pad_object": 0.0}  # probe_big: no effect at all


def case_history(path: Path) -> tuple[History, list[str]]:
    h = History(path)
    off = {"object_big": False, "probe_big": False, "pad_object": False}
    on = {"object_big": True, "probe_big": True, "pad_object": True}
    shas = h.linear([0.86] * 8, config=off, effects=CASE, noise=0.01)
    shas.append(h.commit("torch: propagate object_big/probe_big/pad_object into payload",
                         value=0.86, config=on, effects=CASE, noise=0.01))
    shas += h.linear([0.86] * 5, config=on, effects=CASE, noise=0.01)
    return h, shas


def test_find_blames_object_big_and_clears_the_others(tmp_path: Path) -> None:
    h, shas = case_history(tmp_path / "repo")
    proc = run_cli("find", "--repo", str(h.path), "--good", shas[0], "--metric", "ssim",
                   "--probe", probe_cmd(), "--json", "--out", str(tmp_path / "report"))
    assert proc.returncode == 0, proc.stderr
    assert "object_big" in proc.stderr and "differ" in proc.stderr  # confounder note first
    result = json.loads(proc.stdout)
    assert result["first_bad"]["commit"] == shas[8]
    att = result["attribution"]
    assert att["verdict"] == "config"
    deltas = {d["key"]: d for d in att["deltas"]}
    assert set(deltas) == {"object_big", "probe_big", "pad_object"}
    assert deltas["object_big"]["significant"] and deltas["object_big"]["effect"] < -0.2
    assert not deltas["probe_big"]["significant"] and not deltas["pad_object"]["significant"]
    lo, hi = deltas["probe_big"]["ci"]
    assert lo <= 0 <= hi
    assert att["recommend_pins"] == {"object_big": False}  # pin at the good value
    assert result["regressions"][0]["attribution"]["verdict"] == "config"
    assert result["probe_runs"] <= att["budget"] + 30


def test_attribute_command_between_culprit_and_parent(tmp_path: Path) -> None:
    h, shas = case_history(tmp_path / "repo")
    proc = run_cli("attribute", "--repo", str(h.path), "--bad", shas[8], "--metric", "ssim",
                   "--probe", probe_cmd(), "--out", str(tmp_path / "r"))
    assert proc.returncode == 0, proc.stderr
    assert "object_big" in proc.stdout
    assert "probe_big" in proc.stdout and "no effect" in proc.stdout
    assert (tmp_path / "r" / "index.html").is_file()
    assert "probe runs; 0 more results read back" in proc.stdout  # a fresh store
    # asked again, every run is read back from the store; the first time none was
    first = json.loads(run_cli("attribute", "--repo", str(h.path), "--bad", shas[8],
                               "--metric", "ssim", "--probe", probe_cmd(), "--json",
                               "--out", str(tmp_path / "r2")).stdout)
    assert first["probe_runs"] == 0 and first["reused_runs"] > 0


def test_a_step_with_no_config_change_is_blamed_on_code(tmp_path: Path) -> None:
    # c1..c6 0.9 -> c7..c12 0.6, with the same config everywhere, under seed noise
    h = History(tmp_path / "repo")
    shas = h.linear([0.9] * 6 + [0.6] * 6, config={"lr": 0.1}, noise=0.05)
    proc = run_cli("find", "--repo", str(h.path), "--good", shas[0], "--metric", "ssim",
                   "--probe", probe_cmd(), "--json", "--out", str(tmp_path / "report"))
    assert proc.returncode == 0, proc.stderr
    att = json.loads(proc.stdout)["attribution"]
    assert att["verdict"] == "code"
    assert att["deltas"] == []
    assert att["code_effect"] == pytest.approx(-0.3)
    assert att["config_effect"] == 0.0
    assert "code change explains 100%" in att["sentence"]
