"""`find` then attribution, and `bisector attribute`, through the CLI on a real history.

The CASE.md story in miniature: one commit starts passing object_big, probe_big
and pad_object into the payload; only object_big changes the metric.

    c1 .. c8 (payload without the keys) -> c9 (propagate the keys) -> c10 .. c14
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from gitrepo import History, probe_cmd, run_cli
from test_attribution import Project

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


# -- what the words say: a key that acts only with another, and a cell the good code spoils


def two_commits(path: Path, good: tuple[dict[str, Any], dict[str, Any]],
                bad: tuple[dict[str, Any], dict[str, Any]]) -> tuple[Project, str]:
    """P then C, each (config, code) for test_attribution's probe; returns C."""
    p = Project(path)
    p.commit(*good)
    return p, p.commit(*bad)


def test_a_key_that_matters_only_together_says_what_it_does_alone(tmp_path: Path) -> None:
    # a and b each do nothing alone; together they cost 0.2. Deterministic: exact intervals.
    code = {"base": 0.8, "terms": [{"when": {"a": True, "b": True}, "add": -0.2}]}
    p, bad = two_commits(tmp_path / "repo", ({"a": False, "b": False}, code),
                         ({"a": True, "b": True}, code))
    args = ("attribute", "--repo", str(p.path), "--bad", bad, "--metric", "ssim",
            "--direction", "higher", "--min-effect", "0.15", "--probe", probe_cmd())
    proc = run_cli(*args, "--out", str(tmp_path / "r"))
    assert proc.returncode == 0, proc.stderr
    # alone: 0 (the cell with only a moved); main effect: -0.1, half of the interaction
    line = next(x.strip() for x in proc.stdout.splitlines() if x.strip().startswith("a true"))
    assert line == ("a true vs false: matters only together with b (alone 0, 95% CI 0..0; "
                    "main effect -0.1, 95% CI -0.1..-0.1, averaged over the values of b)")
    att = json.loads(run_cli(*args, "--json", "--out", str(tmp_path / "r2")).stdout)[
        "attribution"]
    a = next(d for d in att["deltas"] if d["key"] == "a")
    assert a["effect"] == pytest.approx(-0.1)  # SPEC's effect: the main effect, unchanged
    assert a["alone_effect"] == pytest.approx(0.0) and a["alone_ci"] == [0.0, 0.0]
    assert a["significant"] is True and a["finding"] == "matters only together"
    assert a["line"] == line
    page = (tmp_path / "r" / "index.html").read_text()
    assert "only together with b; moved alone +0, 95% interval [+0, +0]" in page
    assert "the effect shown is its main effect" in page


def test_a_cell_the_good_code_ignores_is_noted_in_terminal_and_report(tmp_path: Path) -> None:
    # the good code hard-wires object_big (reports False whatever is asked); the bad one
    # honours it, so the good code at the bad config cannot be measured
    terms = [{"when": {"object_big": True}, "add": -0.25}]
    p, bad = two_commits(tmp_path / "repo",
                         ({"object_big": False}, {"base": 0.86, "terms": terms,
                                                  "hardwired": ["object_big"]}),
                         ({"object_big": True}, {"base": 0.86, "terms": terms}))
    proc = run_cli("attribute", "--repo", str(p.path), "--bad", bad, "--metric", "ssim",
                   "--direction", "higher", "--probe", probe_cmd(), "--out", str(tmp_path / "r"))
    assert proc.returncode == 0, proc.stderr
    note = ("the good code ignores object_big (asked for true, the probe reported false); "
            "the code effect at the bad config is not measured")
    assert f"\n  note: {note}\n" in proc.stdout
    design = [x for x in proc.stderr.splitlines() if x.startswith("attribution design")]
    assert "the good code at the bad config, if it takes the bad values" in design[0]
    assert design[1] == f"attribution design: the good code at the bad config is dropped: {note}"
    page = (tmp_path / "r" / "index.html").read_text()
    assert "Note: the good code ignores object_big" in page
