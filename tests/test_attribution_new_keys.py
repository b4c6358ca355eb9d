"""Attribution when the changed keys are new at the culprit (absent at the good commit).

CASE.md's three keys began to reach the model in one commit; a probe that reports
only the config the code reads has no value for them at the good commit. No override
removes a key from the bad code, so bisector adds them to the good code: each alone,
then all. Through the real CLI on throwaway histories with a deterministic probe.
"""

from __future__ import annotations

import json
from pathlib import Path

from gitrepo import History, probe_cmd, run_cli

NEW = {"object_big": True, "probe_big": True, "pad_object": True}
EFFECTS = {"object_big": -0.14}  # the only key that matters, wherever the code reads it


def attribute(tmp_path: Path, good_config: dict | None = None, bad_config: dict | None = None,
              *args: str, together: list | None = None, **good_behaviour: object) -> dict:
    h = History(tmp_path / "repo")
    both = {"effects": EFFECTS, "together": together or []}
    good = h.commit(value=0.88, config=good_config or {"epochs": 2}, **both, **good_behaviour)
    bad = h.commit(value=0.88, config=bad_config or {"epochs": 2, **NEW}, **both)
    proc = run_cli("attribute", "--repo", str(h.path), "--good", good, "--bad", bad,
                   "--metric", "ssim", "--direction", "higher", "--probe", probe_cmd(),
                   "--json", "--out", str(tmp_path / "r"), *args, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    return dict(json.loads(proc.stdout)["attribution"])


def test_new_keys_are_added_to_the_good_code_one_by_one(tmp_path: Path) -> None:
    a = attribute(tmp_path)
    assert a["design"] == "keys added at good"
    assert a["verdict"] == "config"
    found = {d["key"]: (d["finding"], d["effect"]) for d in a["deltas"]}
    assert found["object_big"][0] == "matters" and abs(found["object_big"][1] + 0.14) < 1e-9
    assert found["probe_big"] == ("no effect", 0.0) and found["pad_object"] == ("no effect", 0.0)
    assert abs(a["config_effect"] + 0.14) < 1e-9 and abs(a["code_effect"]) < 1e-9
    assert a["sentence"].startswith("object_big (absent) to true explains 100% of it")
    assert "pad_object and probe_big: no effect" in a["sentence"]


def test_new_keys_the_good_code_ignores_stay_with_the_code(tmp_path: Path) -> None:
    # the good code takes no overrides: adding the keys there changes nothing it reports,
    # so code and keys cannot be told apart, and the answer says so
    a = attribute(tmp_path, ignore_pins=True)
    assert a["design"] != "keys added at good"
    assert a["config_effect"] is None
    assert "not separable" in a["sentence"]


def test_a_new_key_beside_a_changed_one_is_measured_not_left_with_the_code(tmp_path: Path
                                                                           ) -> None:
    # object_big is new at the culprit and lr changed its value: the bad code cannot drop
    # object_big, so both are set to their bad values at the good code
    a = attribute(tmp_path, good_config={"epochs": 2, "lr": 0.1},
                  bad_config={"epochs": 2, "lr": 0.2, "object_big": True})
    assert a["design"] == "keys set at good"
    assert a["not_controllable"] == []
    found = {d["key"]: (d["finding"], d["effect"]) for d in a["deltas"]}
    assert found["object_big"][0] == "matters" and abs(found["object_big"][1] + 0.14) < 1e-9
    assert found["lr"] == ("no effect", 0.0)
    assert a["verdict"] == "config" and abs(a["code_effect"]) < 1e-9
    assert a["sentence"].startswith("object_big (absent) to true explains 100% of it")
    assert "object_big is new at the culprit" in a["notes"][0]


def findings(a: dict) -> dict[str, str]:
    return {d["key"]: d["finding"] for d in a["deltas"]}


def test_keys_that_matter_only_together_keep_their_interaction(tmp_path: Path) -> None:
    # aug and pad_object (new) do -0.1 together and nothing alone: the good code is
    # measured in every combination, so the interaction is read, not lost
    a = attribute(tmp_path, {"aug": False}, {"aug": True, "pad_object": True},
                  together=[[["aug", "pad_object"], -0.1]])
    assert a["design"] == "keys set at good" and a["verdict"] == "config"
    assert findings(a) == {"aug": "matters only together", "pad_object": "matters only together"}
    assert [i["keys"] for i in a["interactions"]] == [["aug", "pad_object"]]
    assert abs(a["interactions"][0]["effect"] + 0.1) < 1e-9
    assert "no effect" not in a["sentence"]


def test_a_changed_key_that_matters_beside_a_new_one_gets_pin_advice(tmp_path: Path) -> None:
    a = attribute(tmp_path, {"aug": False}, {"aug": True, "probe_big": True},
                  together=[[["aug"], -0.1]])
    assert findings(a) == {"aug": "matters", "probe_big": "no effect"}
    assert a["recommend_pins"] == {"aug": False} and "--pin aug=false" in a["pin_advice"]


def test_good_code_failing_with_a_new_key_falls_back_and_says_why(tmp_path: Path) -> None:
    # the good code exits 3 when asked for a key it does not know: object_big stays with
    # the code (not "none", not "not measured"), and lr is still measured at the bad code
    a = attribute(tmp_path, {"epochs": 2, "lr": 0.1},
                  {"epochs": 2, "lr": 0.2, "object_big": True}, strict=True)
    assert a["design"] != "keys set at good"
    assert a["not_controllable"] == ["object_big"] and findings(a)["lr"] == "no effect"
    assert a["verdict"] == "code" and abs(a["code_effect"] + 0.14) < 1e-9
    assert any("the good code does not take object_big" in n for n in a["notes"])


def test_a_key_removed_beside_a_new_one_is_attributed_at_the_bad_code(tmp_path: Path) -> None:
    # old is gone at the culprit and object_big is new: neither design can move both, so
    # the bad code's design runs (it crashed on an override asking for "absent")
    a = attribute(tmp_path, {"lr": 0.1, "old": 1}, {"lr": 0.2, "object_big": True})
    assert a["not_controllable"] == ["object_big"]
    assert findings(a)["lr"] == "no effect" and findings(a)["old"] == "no effect"


def test_a_budget_too_small_for_the_good_code_design_says_so(tmp_path: Path) -> None:
    a = attribute(tmp_path, {"epochs": 2, "lr": 0.1},
                  {"epochs": 2, "lr": 0.2, "object_big": True}, "--max-runs", "5")
    assert a["design"] != "keys set at good" and a["runs"] <= 5
    assert any("too few to set the keys new at the culprit at the good code" in n
               for n in a["notes"])


def test_beyond_five_keys_what_only_combinations_do_is_said_not_dropped(tmp_path: Path
                                                                         ) -> None:
    # six changed keys (two new): too many for every combination, so each is set alone,
    # then all; k1 and n2 act only together, and the sentence must not lose that
    good = {f"k{i}": False for i in range(1, 5)}
    a = attribute(tmp_path, good, {**dict.fromkeys(good, True), "n1": True, "n2": True},
                  together=[[["k1", "n2"], -0.1]])
    assert a["design"] == "keys set at good" and a["verdict"] == "config"
    assert "100% of it (-0.1) comes from keys acting together, which ones was not tested " \
        "(more than 5 keys)" in a["sentence"]
    assert "interactions not tested: more than 5 keys" in a["notes"][0]
    # each key alone does nothing: said of the key alone, not as if it did nothing at all
    assert "k1, k2, k3, k4, n1 and n2: no effect alone" in a["sentence"]
    assert all(": no effect alone (" in line for line in a["lines"])


def test_only_the_key_the_good_code_refuses_is_said_to_be_refused(tmp_path: Path) -> None:
    # the good code fails on n1 and would take n2: n2 was never refused
    a = attribute(tmp_path, {"lr": 0.1}, {"lr": 0.2, "n1": True, "n2": True},
                  refuse=["n1"])
    why = a["not_controllable_why"]
    assert why["n1"].startswith("the good code does not take it")
    assert not why["n2"].startswith("the good code does not take it")
    assert any(n.startswith("the good code does not take n1 (the probe fails with it at the "
                            "good code: probe exited with code 3)") for n in a["notes"])
    assert any("n2 set at the good code alone moves it by 0 (95% CI 0..0)" in n
               for n in a["notes"])


def test_pin_advice_says_a_new_key_that_matters_cannot_be_pinned(tmp_path: Path) -> None:
    a = attribute(tmp_path, {"lr": False}, {"lr": True, "aug": True},
                  together=[[["aug"], -0.1], [["lr"], -0.05]])
    assert a["recommend_pins"] == {"lr": False}
    assert a["pin_advice"].endswith("--pin lr=false (aug is new at the culprit and cannot be "
                                     "pinned: its effect stays in that history)")
    page = (tmp_path / "r" / "index.html").read_text()
    assert "Next: " in page and "cannot be pinned" in page  # the report says it too


def test_a_key_the_good_code_refuses_costs_one_seed_not_every_seed(tmp_path: Path) -> None:
    # a noisy probe: three seeds a cell; the good code fails with n1, and one seed (and its
    # retry) tells, not all three
    from bisector.store import Store

    a = attribute(tmp_path, {"lr": 0.1}, {"lr": 0.2, "n1": True}, "--store",
                  str(tmp_path / "s.sqlite"), refuse=["n1"], noise=0.02)
    assert a["seeds"] == [0, 1, 2] and a["not_controllable"] == ["n1"]
    with Store(tmp_path / "s.sqlite") as store:
        refused = [r for r in store.runs_at(a["good"]) if "n1" in r.request.overrides]
    assert len(refused) == 2 and {r.request.seed for r in refused} == {0}
    assert not any(r.ok for r in refused)
