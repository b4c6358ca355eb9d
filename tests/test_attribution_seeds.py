"""Attribution adds seeds while a key's effect is unclear, within the run budget.

Through the real CLI on a throwaway history whose probe's noise differs between
configs (so seed pairing does not cancel it): b's effect is twice the min effect,
but on three seeds its interval holds zero.
"""

from __future__ import annotations

import json
from pathlib import Path

from gitrepo import History, probe_cmd, run_cli

EFFECTS = {"a": -1.0, "b": -0.1}


def attribute(tmp_path: Path, *extra: str) -> dict:
    h = History(tmp_path / "repo")
    good = h.commit(value=0.9, config={"a": False, "b": False}, effects=EFFECTS,
                    cell_noise=0.2)
    bad = h.commit(value=0.9, config={"a": True, "b": True}, effects=EFFECTS, cell_noise=0.2)
    proc = run_cli("attribute", "--repo", str(h.path), "--good", good, "--bad", bad,
                   "--metric", "ssim", "--direction", "higher", "--probe", probe_cmd(),
                   "--min-effect", "0.05", "--repeats", "3", "--json",
                   "--out", str(tmp_path / "r"), *extra, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    return dict(json.loads(proc.stdout)["attribution"])


def findings(a: dict) -> dict[str, str]:
    return {d["key"]: d["finding"] for d in a["deltas"]}


def test_an_unclear_key_gets_more_seeds_until_it_is_clear(tmp_path: Path) -> None:
    a = attribute(tmp_path)
    assert findings(a) == {"a": "matters", "b": "matters"}
    n = len(a["seeds"])
    assert n in (6, 12) and a["seeds"] == list(range(n))
    assert f"b was unclear on 3 seeds: every cell was measured on {n}" in a["notes"]
    # the 2-key factorial at bad (4 cells), the good code and the good code at the bad
    # config: n seeds each, and the first 3 seeds' runs were not taken twice
    assert a["runs"] == 6 * n
    b = next(d for d in a["deltas"] if d["key"] == "b")
    assert b["ci"][0] < -0.1 < b["ci"][1] < 0


def test_the_run_budget_stops_the_extra_seeds_and_says_so(tmp_path: Path) -> None:
    a = attribute(tmp_path, "--max-runs", "20")
    assert len(a["seeds"]) == 3 and a["runs"] <= 20
    assert findings(a)["b"] == "unclear"
    assert "b stayed unclear on 3 seeds (18 more runs were needed and the run budget had 2 " \
        "left)" in a["notes"]
