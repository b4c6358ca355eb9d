"""`attribute()` end to end: real git histories, real probe subprocesses, a real store.

Each history is two commits, P then C. The probe reads the project's config
from `config.json` and the "code" from `code.json` in the checked-out commit:
a base value plus terms that add to the metric when config keys hold given
values (so a term on two keys is an interaction). It applies BISECTOR_OVERRIDES
except to keys the code hard-wires, and adds seed noise that is shared by
every cell (cancels in pairs) and noise that is not (widens the intervals).

    P (good) --- C (bad, culprit)
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from gitrepo import git, init_repo

from bisector.attribution import attribute
from bisector.errors import UsageError
from bisector.git_ops import BisectWorktree, GitRepo
from bisector.measure import Measurer
from bisector.model import Direction
from bisector.store import Store

PROBE = r'''
import hashlib, json, os
cfg = json.load(open("config.json"))
code = json.load(open("code.json"))
for key, value in json.loads(os.environ.get("BISECTOR_OVERRIDES") or "{}").items():
    if key not in code.get("hardwired", []):
        cfg[key] = value
seed = int(os.environ.get("BISECTOR_SEED", "0"))
value = code["base"]
for term in code.get("terms", []):
    if all(k in cfg and cfg[k] == v for k, v in term["when"].items()):
        value += term["add"]
def unit(text):  # deterministic pseudo-noise in [-1, 1)
    return int(hashlib.sha256(text.encode()).hexdigest()[:8], 16) / 2**31 - 1
value += code.get("seed_noise", 0.0) * unit(f"seed {seed}")
value += code.get("noise", 0.0) * unit(f"{seed} {json.dumps([cfg, code], sort_keys=True)}")
log = os.environ.get("PROBE_LOG")
if log:
    with open(log, "a") as f:
        f.write(f"{os.environ['BISECTOR_COMMIT'][:8]} {seed} {os.environ['BISECTOR_OVERRIDES']}\n")
print(json.dumps({"metrics": {"ssim": value}, "config": cfg}))
'''


class Project:
    """A repository whose commits change config.json and code.json."""

    def __init__(self, path: Path) -> None:
        self.path = path
        init_repo(path, PROBE)
        self.n = 0

    def commit(self, config: dict[str, Any], code: dict[str, Any]) -> str:
        self.n += 1
        (self.path / "config.json").write_text(json.dumps(config, sort_keys=True))
        (self.path / "code.json").write_text(json.dumps(code, sort_keys=True))
        git(self.path, "add", "-A")
        date = f"2026-01-01T00:00:{self.n:02d}+00:00"
        git(self.path, "commit", "-q", "-m", f"commit {self.n}",
            env={"GIT_AUTHOR_DATE": date, "GIT_COMMITTER_DATE": date})
        return git(self.path, "rev-parse", "HEAD")


@pytest.fixture
def log(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "probe.log"
    os.environ["PROBE_LOG"] = str(path)
    yield path
    del os.environ["PROBE_LOG"]


def probe_runs(log: Path) -> int:
    return len(log.read_text().splitlines()) if log.exists() else 0


def run_attribution(p: Project, good: str, bad: str, **kw: Any) -> tuple[dict[str, Any], list[str]]:
    messages: list[str] = []
    repo = GitRepo(p.path)
    with Store(p.path.parent / "store.sqlite") as store, BisectWorktree(repo, bad) as wt:
        pins = kw.pop("pins", {})
        hunt = store.start_hunt("attribute", {})
        m = Measurer(store, wt, f"{sys.executable} probe.py", hunt_id=hunt,
                     artifacts_root=p.path.parent / "artifacts", pins=pins)
        kw.setdefault("seeds", [0])
        kw.setdefault("min_effect", 0.05)
        result = attribute(m, good=good, bad=bad, metric="ssim", direction=Direction.HIGHER,
                           progress=messages.append, **kw)
    return result, messages


def significant(result: dict[str, Any]) -> set[str]:
    return {d["key"] for d in result["deltas"] if d["significant"]}


def delta(result: dict[str, Any], key: str) -> dict[str, Any]:
    return next(d for d in result["deltas"] if d["key"] == key)


def budget_printed(messages: list[str]) -> int:
    line = next(m for m in messages if "budget" in m and "design" in m)
    return int(line.split("budget ")[1].split()[0])


CASE_CODE = {"base": 0.86, "terms": [{"when": {"object_big": True}, "add": -0.25}]}
CASE_GOOD = {"object_big": False, "probe_big": False, "pad_object": False, "n_filters": 8}
CASE_BAD = {"object_big": True, "probe_big": True, "pad_object": True, "n_filters": 8}


def test_case_md_one_of_three_keys_matters(tmp_path: Path, log: Path) -> None:
    # the CASE.md story: three keys start flowing into the payload; only object_big matters
    p = Project(tmp_path / "repo")
    good = p.commit(CASE_GOOD, CASE_CODE)
    bad = p.commit(CASE_BAD, CASE_CODE)
    result, messages = run_attribution(p, good, bad)
    assert result["verdict"] == "config"
    assert significant(result) == {"object_big"}
    assert result["interactions"] == []
    ob = delta(result, "object_big")
    assert ob["effect"] == pytest.approx(-0.25) and ob["ci"] == pytest.approx([-0.25, -0.25])
    assert ob["share"] == pytest.approx(1.0)
    assert result["code_effect"] == pytest.approx(0.0, abs=1e-12)
    for key in ("probe_big", "pad_object"):
        d = delta(result, key)
        assert d["finding"] == "no effect" and d["effect"] == pytest.approx(0.0, abs=1e-12)
    assert "probe_big true vs false: no effect (0, 95% CI 0..0)" in result["lines"]
    assert result["sentence"].startswith("object_big false to true explains 100% of it")
    assert "pad_object and probe_big: no effect" in result["sentence"]
    assert result["recommend_pins"] == {"object_big": False}
    assert result["pin_advice"].endswith("rerun find with --pin object_big=false")
    assert result["design"] == "factorial"
    # 8 cells at C's code (one is the plain run) + P plain + P's code at C's config
    assert result["budget"] == 10 and budget_printed(messages) == 10
    assert result["runs"] == probe_runs(log) <= result["budget"]
    assert len(result["factorial"]) == 10


def test_stored_endpoint_runs_are_reused_and_a_rerun_costs_nothing(tmp_path: Path,
                                                                    log: Path) -> None:
    p = Project(tmp_path / "repo")
    good = p.commit(CASE_GOOD, CASE_CODE)
    bad = p.commit(CASE_BAD, CASE_CODE)
    first, _ = run_attribution(p, good, bad)
    assert first["runs"] == 10 and first["reused"] > 0
    again, messages = run_attribution(p, good, bad)
    assert again["runs"] == 0 and probe_runs(log) == 10
    assert again["budget"] == 8  # the endpoints are already stored when the budget is made
    assert again["deltas"] == first["deltas"]


def test_two_keys_matter_only_together_with_noise(tmp_path: Path, log: Path) -> None:
    code = {"base": 0.8, "seed_noise": 0.05, "noise": 0.004,
            "terms": [{"when": {"object_big": True, "pad_object": True}, "add": -0.2}]}
    p = Project(tmp_path / "repo")
    good = p.commit(CASE_GOOD, code)
    bad = p.commit(CASE_BAD, code)
    result, messages = run_attribution(p, good, bad, seeds=[0, 1, 2, 3])
    assert result["verdict"] == "config"
    assert significant(result) == {"object_big", "pad_object"}
    assert [i["keys"] for i in result["interactions"]] == [["object_big", "pad_object"]]
    assert result["interactions"][0]["effect"] == pytest.approx(-0.2, abs=0.02)
    lo, hi = result["interactions"][0]["ci"]
    assert lo < -0.15 and hi < 0 and lo < hi
    pb = delta(result, "probe_big")
    assert pb["finding"] == "no effect" and pb["ci"][0] < pb["effect"] < pb["ci"][1]
    assert delta(result, "object_big")["interacts_with"] == ["pad_object"]
    # each moved alone does nothing: both only together, even though each main effect matters
    assert "object_big and pad_object matter only together (interaction" in result["sentence"]
    assert delta(result, "pad_object")["finding"] == "matters only together"
    assert result["runs"] == probe_runs(log) <= result["budget"] == budget_printed(messages)


def test_innocent_key_and_code_change_blame_the_code(tmp_path: Path, log: Path) -> None:
    p = Project(tmp_path / "repo")
    good = p.commit({"lr": 0.001, "epochs": 5}, {"base": 0.9, "noise": 0.003})
    bad = p.commit({"lr": 0.002, "epochs": 5}, {"base": 0.7, "noise": 0.003})
    result, messages = run_attribution(p, good, bad, seeds=[0, 1, 2])
    assert result["verdict"] == "code"
    assert significant(result) == set()
    assert [d["key"] for d in result["deltas"]] == ["lr"]
    assert result["code_effect"] == pytest.approx(-0.2, abs=0.01)
    assert result["code_ci"][1] < -0.15
    assert delta(result, "lr")["finding"] == "no effect"
    assert result["lines"][0].startswith("lr 0.002 vs 0.001: no effect (")
    assert result["sentence"].startswith("the code change explains")
    assert result["recommend_pins"] == {}
    assert result["runs"] == probe_runs(log) <= result["budget"] == budget_printed(messages)


def test_key_the_probe_cannot_override_is_left_out(tmp_path: Path, log: Path) -> None:
    # dtype is hard-wired in the code: the probe reports the file's value whatever is asked
    code = {"base": 0.86, "hardwired": ["dtype"],
            "terms": [{"when": {"object_big": True}, "add": -0.25},
                      {"when": {"dtype": "float16"}, "add": -0.1}]}
    p = Project(tmp_path / "repo")
    good = p.commit({"object_big": False, "dtype": "float32", "seed_data": 1}, code)
    bad = p.commit({"object_big": True, "dtype": "float16", "seed_data": 1}, code)
    result, messages = run_attribution(p, good, bad)
    assert result["not_controllable"] == ["dtype"]
    assert "asked for float32" in result["not_controllable_why"]["dtype"]
    d = delta(result, "dtype")
    assert d["controllable"] is False and d["effect"] is None and not d["significant"]
    assert significant(result) == {"object_big"}
    # dtype's -0.1 cannot be split off, so it stays with the code: both parts matter
    assert result["verdict"] == "mixed"
    assert result["code_effect"] == pytest.approx(-0.1)
    assert delta(result, "object_big")["effect"] == pytest.approx(-0.25)
    assert "the code change together with dtype (not controllable) explains" in \
        result["sentence"]
    assert any(line.startswith("dtype float16 vs float32: not controllable") for line in
               result["lines"])
    assert result["runs"] == probe_runs(log) <= result["budget"] == budget_printed(messages)


def test_more_than_five_keys_take_the_ddmin_path(tmp_path: Path, log: Path) -> None:
    # k1 matters alone; k4 and k6 only together (a smaller part, hidden behind k1 at first)
    code = {"base": 0.9, "noise": 0.001, "seed_noise": 0.05,
            "terms": [{"when": {"k1": 1}, "add": -0.3},
                      {"when": {"k4": 1, "k6": 1}, "add": -0.12}]}
    keys = [f"k{i}" for i in range(7)]
    p = Project(tmp_path / "repo")
    good = p.commit({k: 0 for k in keys}, code)
    bad = p.commit({k: 1 for k in keys}, code)
    result, messages = run_attribution(p, good, bad, seeds=[0, 1])
    assert result["design"] == "ddmin"
    assert result["ddmin"]["subset"] == ["k1", "k4", "k6"]
    assert significant(result) == {"k1", "k4", "k6"}
    assert [i["keys"] for i in result["interactions"]] == [["k4", "k6"]]
    assert result["verdict"] == "config"
    for k in set(keys) - {"k1", "k4", "k6"}:
        assert delta(result, k)["finding"] == "no effect", k
    assert result["runs"] == probe_runs(log) <= result["budget"] == budget_printed(messages)
    assert result["runs"] < 2 ** len(keys) * 2 / 3  # a full factorial would take 2^7 x 2


def test_one_sided_key_and_pins(tmp_path: Path, log: Path) -> None:
    # probe_big only appears at C, so no override can drop it there: the keys are set at
    # the good code instead; n_filters is pinned by the hunt and so held, not attributed
    code = {"base": 0.86, "terms": [{"when": {"object_big": True}, "add": -0.25}]}
    p = Project(tmp_path / "repo")
    good = p.commit({"object_big": False, "n_filters": 8}, code)
    bad = p.commit({"object_big": True, "probe_big": True, "n_filters": 16}, code)
    result, _ = run_attribution(p, good, bad, pins={"n_filters": 8})
    assert result["held"] == {"n_filters": 8}
    assert [d["key"] for d in result["deltas"]] == ["object_big", "probe_big"]
    pb = delta(result, "probe_big")
    assert result["design"] == "keys set at good"
    assert pb["absent"] == "good" and pb["controllable"] is True
    assert pb["finding"] == "no effect"
    assert significant(result) == {"object_big"}
    assert result["verdict"] == "config"


def test_max_runs_chooses_a_smaller_design_or_refuses(tmp_path: Path, log: Path) -> None:
    p = Project(tmp_path / "repo")
    good = p.commit(CASE_GOOD, CASE_CODE)
    bad = p.commit(CASE_BAD, CASE_CODE)
    result, _ = run_attribution(p, good, bad, max_runs=8)
    # 2 endpoint runs leave 6: no room for the factorial (7 cells), one key at a time fits
    assert result["design"] == "screening"
    assert result["runs"] == probe_runs(log) <= 8
    assert significant(result) == {"object_big"} and result["verdict"] == "config"
    with pytest.raises(UsageError, match="--max-runs 3 is too small"):
        run_attribution(p, good, bad, max_runs=3)
