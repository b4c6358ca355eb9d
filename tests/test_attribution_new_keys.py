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
              **good_behaviour: object) -> dict:
    h = History(tmp_path / "repo")
    good = h.commit(value=0.88, config=good_config or {"epochs": 2}, effects=EFFECTS,
                    **good_behaviour)
    bad = h.commit(value=0.88, config=bad_config or {"epochs": 2, **NEW}, effects=EFFECTS)
    proc = run_cli("attribute", "--repo", str(h.path), "--good", good, "--bad", bad,
                   "--metric", "ssim", "--direction", "higher", "--probe", probe_cmd(),
                   "--json", "--out", str(tmp_path / "r"), cwd=tmp_path)
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
