"""What the attribution calls each key: small effects, keys that act only together,
keys it could not set back, and the words around them.

Real `bisector attribute` runs on two-commit git repositories built here, with
test_attribution's probe kept deterministic (exact intervals), plus the report's view
and Markdown as pure functions of the JSON. Each case is one a user audit found misworded.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from gitrepo import probe_cmd, run_cli
from test_attribution import Project

from bisector.model import Direction
from bisector.report.attribution import attribution_view
from bisector.report.markdown import summary_markdown


def repo(path: Path, good: dict[str, Any], bad: dict[str, Any], terms: list[Any],
         hardwired: tuple[str, ...] = ()) -> Path:
    """Two commits, the good config then the bad one, under test_attribution's probe:
    ssim = 0.88 + each term's `add` when all its keys are true."""
    p = Project(path)
    code = {"base": 0.88, "hardwired": list(hardwired),
            "terms": [{"when": dict.fromkeys(keys, True), "add": add} for keys, add in terms]}
    p.commit(good, code)
    p.commit(bad, code)
    return path


def attribute(path: Path, *extra: str) -> dict[str, Any]:
    proc = run_cli("attribute", "--repo", str(path), "--good", "HEAD~1", "--bad", "HEAD",
                   "--metric", "ssim", "--direction", "higher", "--probe", probe_cmd(),
                   "--json", *extra)
    assert proc.returncode == 0, proc.stderr
    out: dict[str, Any] = json.loads(proc.stdout)
    return out.get("attribution") or out


def row(att: dict[str, Any], key: str) -> dict[str, Any]:
    return next(d for d in att["deltas"] if d["key"] == key)


def approx(x: float) -> Any:
    return pytest.approx(x, abs=1e-9)


OFF = {"a": False, "b": False, "c": False}
ON = {"a": True, "b": True, "c": True}


def test_a_real_effect_below_min_effect_is_small_not_no_effect(tmp_path: Path) -> None:
    # b costs 0.025 for sure (a fifth of the change), below the min effect 0.06; c's
    # 0.001 is under a fifth of the min effect: negligible, so "no effect"
    terms = [(["a"], -0.10), (["b"], -0.025), (["c"], -0.001)]
    att = attribute(repo(tmp_path / "r", OFF, ON, terms), "--min-effect", "0.06")
    b, c = row(att, "b"), row(att, "c")
    assert b["finding"] == "below the min effect" and b["significant"] is False
    assert b["effect"] == b["ci"][0] == b["ci"][1] == approx(-0.025)
    assert b["share"] == approx(0.025 / 0.126)
    assert b["line"] == ("b true vs false: small: -0.025, 95% CI -0.025..-0.025, 20% of the "
                         "change, below the min effect 0.06")
    assert c["finding"] == "no effect"
    assert att["sentence"] == (
        "a false to true explains 79% of it; b false to true is small: -0.025 (95% CI "
        "-0.025..-0.025, 20% of it), below the min effect 0.06; c: no effect")
    # a fifth of the change is worth holding when hunting a code regression behind it
    assert att["recommend_pins"] == {"a": False, "b": False}


def test_keys_that_act_only_as_a_pair_are_called_only_together(tmp_path: Path) -> None:
    # -0.12 only when a and b are both true: each main effect (-0.06) passes the min
    # effect 0.05, but moved alone neither does anything
    att = attribute(repo(tmp_path / "r", OFF, ON, [(["a", "b"], -0.12)]), "--min-effect", "0.05")
    for key, partner in (("a", "b"), ("b", "a")):
        d = row(att, key)
        assert d["finding"] == "matters only together" and d["significant"] is True
        assert d["effect"] == approx(-0.06) and d["alone_effect"] == approx(0.0)
        assert d["line"].startswith(f"{key} true vs false: matters only together with "
                                    f"{partner} (alone 0, 95% CI 0..0; main effect -0.06")
    assert row(att, "c")["finding"] == "no effect"
    assert att["sentence"] == (
        "a false to true (50%) and b false to true (50%) explain it; a and b matter only "
        "together (interaction -0.12): each alone 0 (95% CI 0..0); c: no effect")


def test_a_key_the_probe_will_not_set_is_not_measured(tmp_path: Path) -> None:
    # nc costs 0.1, but the code hard-wires it: bisector cannot set it back, so its
    # effect stays inside the code contrast and it is neither significant nor not
    out = tmp_path / "report"
    att = attribute(repo(tmp_path / "r", {"a": False, "nc": False}, {"a": True, "nc": True},
                         [(["nc"], -0.10)], hardwired=("nc",)),
                    "--min-effect", "0.05", "--out", str(out))
    nc = row(att, "nc")
    assert nc["significant"] is None and nc["finding"] == "not controllable"
    assert nc["controllable"] is False and nc["effect"] is None
    assert row(att, "a")["significant"] is False and row(att, "a")["finding"] == "no effect"
    assert att["verdict"] == "code"
    assert att["sentence"] == ("the code change together with nc (not controllable) explains "
                               "100% of it (-0.1, 95% CI -0.1..-0.1); a: no effect")
    assert "the code effect includes whatever nc does: it could not be set back" in att["notes"]
    page = (out / "index.html").read_text()
    assert "not measured <" not in page  # one phrase, not "no" beside "(not controllable)"
    assert "not measured (not controllable)" in page
    assert "Min effect for these findings: 0.05" in page


def test_keys_absent_at_good_are_not_separable_from_the_code(tmp_path: Path) -> None:
    # the CASE.md shape: the good commit does not report the three keys at all, and its
    # code takes no override for them (test_attribution_new_keys: when it does, they are
    # added to the good code one by one)
    bad = {"object_big": True, "probe_big": True, "pad_object": True}
    att = attribute(repo(tmp_path / "r", {}, bad, [(["object_big"], -0.14)],
                         hardwired=tuple(bad)), "--min-effect", "0.05")
    assert att["verdict"] == "code"  # SPEC's vocabulary; the sentence says what it holds
    assert att["config_effect"] is None and att["config_ci"] is None  # never measured
    assert att["code_effect"] == approx(-0.14)
    assert all(d["significant"] is None for d in att["deltas"])
    assert att["sentence"] == (
        "the code change and object_big, pad_object and probe_big are not separable here: "
        "together they explain 100% of it (-0.14, 95% CI -0.14..-0.14); object_big, "
        "pad_object and probe_big are new at the culprit and the good code does not take "
        "them: the culprit's code is what brings them in (if the good code does read them, "
        "have the probe apply and report them there)")
    assert any("the config part is not measured" in n for n in att["notes"])
    text = summary_markdown({"status": "found", "metric": "ssim", "attribution": att}, None)
    assert "| object\\_big | (absent) → true |" in text
    assert "null" not in text


def test_a_key_pushing_the_other_way_offsets_rather_than_explains(tmp_path: Path) -> None:
    att = attribute(repo(tmp_path / "r", {"a": False, "b": False}, {"a": True, "b": True},
                         [(["a"], -0.15), (["b"], 0.05)]), "--min-effect", "0.03")
    assert row(att, "b")["share"] == approx(-0.5)
    assert att["sentence"] == ("a false to true explains 150% of it; b false to true offsets "
                               "50% of it")


def test_report_words_for_shares_near_zero_and_unmeasured_keys() -> None:
    raw = {"verdict": "config", "min_effect": 0.05, "deltas": [
        {"key": "a", "good": None, "bad": True, "absent": "good", "effect": -0.0001,
         "ci": [-0.0002, 0.0], "share": -0.001, "significant": False, "finding": "no effect",
         "controllable": True},
        {"key": "b", "good": False, "bad": True, "absent": None, "effect": None, "ci": None,
         "share": None, "significant": None, "finding": "not measured", "controllable": True},
        {"key": "c", "good": False, "bad": True, "absent": None, "effect": -0.02,
         "ci": [-0.03, -0.01], "share": 0.2, "significant": False,
         "finding": "below the min effect", "controllable": True},
        {"key": "d", "good": 0.1, "bad": 0.2, "absent": None, "effect": -0.007,
         "ci": [-0.024, 0.011], "share": 0.05, "significant": False, "finding": "unclear",
         "controllable": True}]}
    view = attribution_view(raw, Direction.HIGHER)
    assert view is not None
    a, b, c, d = view.deltas
    assert d.judged == "unclear (the interval is too wide to tell)"
    assert (a.good, a.share, a.judged) == ("(absent)", "0%", "no")
    assert b.judged == "not measured"
    assert c.judged == "no (real, but below the min effect)"
    assert view.min_effect == "0.05"
    text = summary_markdown({"status": "found", "metric": "ssim", "attribution": raw}, None)
    assert "| a | (absent) → true | -0.0001 | 0% | no effect |" in text
    assert "-0%" not in text and "Min effect for these findings: 0.05" in text
