"""What `find` prints, its --json result and its report say the same thing, honestly.

Through the CLI on real throwaway histories: the step is the paired effect everywhere,
`first_bad` carries the attribution, every regression found is named in the terminal,
the trail keeps each search's verdicts under its range, and "read back from the store"
counts only runs earlier invocations made.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from dataclasses import dataclass
from html import unescape
from pathlib import Path
from typing import Any

import pytest
from gitrepo import History, probe_cmd, run_cli

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
from make_history import build  # noqa: E402


def find(repo: Path, good: str, metric: str, *extra: str) -> tuple[str, str]:
    proc = run_cli("find", "--repo", str(repo), "--good", good, "--metric", metric,
                   "--direction", "higher", "--probe", probe_cmd(), *extra, cwd=repo.parent)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout, proc.stderr


def test_the_step_is_the_paired_effect_in_json_text_markdown_and_report(tmp_path: Path) -> None:
    # 12 commits, a 3-sd step at commit 6, seed noise of its own (salt 6): this hunt runs
    # seeds at the culprit's parent that the culprit never ran, so the means over every
    # run differ from the paired effect (by 0.125, on the code before this fix).
    built = build(tmp_path / "repo", 12, 6, effect=3.0, noise=1.0, salt=6)
    store, md = tmp_path / "store.sqlite", tmp_path / "summary.md"
    out, _ = find(built.path, built.shas[0], "score", "--json", "--no-attribute",
                  "--store", str(store), "--out", str(tmp_path / "r1"), "--summary-md", str(md))
    result = json.loads(out)
    fb = result["first_bad"]
    assert fb["commit"] == built.culprit
    effect, (lo, hi), n = fb["effect"], fb["ci"], fb["n"]
    # mean, parent_mean and n describe the same paired runs as effect and ci
    assert fb["mean"] - fb["parent_mean"] == pytest.approx(effect, abs=1e-9)
    assert fb["metrics"]["score"] == {"mean": fb["mean"], "parent_mean": fb["parent_mean"]}
    assert result["regressions"][0]["effect"] == effect
    page = unescape((tmp_path / "r1" / "index.html").read_text(encoding="utf-8"))
    step = re.search(r'<p class="step">(.*?)</p>', page, re.S)
    assert step and step.group(1).startswith(f"step {effect:+.4g}, 95% interval "
                                             f"[{lo:+.4g}, {hi:+.4g}], {n} paired runs")
    assert f"Step {effect:+.4g}, 95% interval" in md.read_text(encoding="utf-8")
    # the same hunt again, as text: every run is read back, the same step is printed
    text, _ = find(built.path, built.shas[0], "score", "--no-attribute", "--store", str(store),
                   "--out", str(tmp_path / "r2"))
    assert f"  step {effect:.4g} (95% CI {lo:.4g}..{hi:.4g}, {n} paired runs)" in text
    assert f"0 probe runs; {result['probe_runs']} more results read back" in text


def config_then_code(path: Path) -> list[str]:
    """c1..c5 object_big off | c6 turns it on by default (-0.3) | c7..c10 | c11 code (-0.2)."""
    h = History(path)
    effects = {"object_big": -0.3}
    off, on = {"object_big": False}, {"object_big": True}
    shas = h.linear([0.9] * 5, config=off, effects=effects)
    shas.append(h.commit("config: object_big on by default", value=0.9, config=on,
                         effects=effects))
    shas += h.linear([0.9] * 4, config=on, effects=effects)
    shas.append(h.commit("model: a slower code path", value=0.7, config=on, effects=effects))
    shas += h.linear([0.7] * 4, config=on, effects=effects)
    return shas


@dataclass(frozen=True)
class ConfigThenCode:
    shas: list[str]
    first_text: str  # the first hunt's terminal output, on a fresh store
    again: dict[str, Any]  # the same hunt again, --json, on that store
    config_only_text: str  # a hunt of the range up to the config step only


@pytest.fixture(scope="module")
def config_then_code_hunts(tmp_path_factory: pytest.TempPathFactory) -> ConfigThenCode:
    tmp = tmp_path_factory.mktemp("config_then_code")
    shas = config_then_code(tmp / "repo")
    common = ("--min-effect", "0.05", "--store", str(tmp / "store.sqlite"))
    first, _ = find(tmp / "repo", shas[0], "ssim", *common, "--out", str(tmp / "r1"))
    again, _ = find(tmp / "repo", shas[0], "ssim", *common, "--json", "--out", str(tmp / "r2"))
    config_only, _ = find(tmp / "repo", shas[0], "ssim", *common, "--bad", shas[9],
                          "--out", str(tmp / "r3"))
    return ConfigThenCode(shas, first, json.loads(again), config_only)


def test_first_bad_carries_the_attribution(config_then_code_hunts: ConfigThenCode) -> None:
    result, shas = config_then_code_hunts.again, config_then_code_hunts.shas
    assert [r["commit"] for r in result["regressions"]] == [shas[5], shas[10]]
    attribution = result["attribution"]
    assert attribution["verdict"] == "config"
    assert result["first_bad"]["attribution"] == attribution
    assert result["regressions"][0]["attribution"] == attribution
    assert result["regressions"][1]["attribution"]["verdict"] == "code"


def test_every_regression_found_is_named_and_no_rerun_is_suggested_for_it(
        config_then_code_hunts: ConfigThenCode) -> None:
    text, shas = config_then_code_hunts.first_text, config_then_code_hunts.shas
    assert text.startswith("ssim fell from 0.9 to 0.6 at " + shas[5][:8])
    assert (f"\n  also regressed at {shas[10][:8]} 'model: a slower code path': "
            "step -0.2 (exact, 1 paired run); the code change explains") in text
    assert "rerun find with --pin" not in text  # the code regression is found already
    # with only the config step in range, the advice to pin it is still given
    only = config_then_code_hunts.config_only_text
    assert "also regressed" not in only
    assert "rerun find with --pin object_big=false" in only


def subjects(repo: Path) -> dict[str, str]:
    """Every commit's subject line, as git gives it."""
    out = subprocess.run(["git", "log", "--format=%H %s"], cwd=repo, capture_output=True,
                         text=True, check=True).stdout
    return dict(line.split(" ", 1) for line in out.splitlines())


def trail_tables(page: str) -> list[tuple[str, list[str]]]:
    """(data-range, the short shas of its rows in order) of each search trail table."""
    trail = page.split('id="trail"')[1].split('id="attribution"')[0]
    tables = re.findall(r'<table class="trail" data-range="([^"]*)">(.*?)</table>', trail, re.S)
    return [(r, re.findall(r'<td class="mono" title="[0-9a-f]{40}">([0-9a-f]{8})</td>', body))
            for r, body in tables]


def test_the_trail_keeps_each_searchs_verdicts_under_its_range(tmp_path: Path) -> None:
    # c1..c10 0.9 | c11..c22 0.75 | c23..c34 0.5, seed noise: after the first culprit,
    # the range beside it holding the other step is searched too, and there the commits
    # between the two steps are judged against that range's own endpoints.
    h = History(tmp_path / "repo")
    shas = h.linear([0.9] * 10 + [0.75] * 12 + [0.5] * 12, noise=0.05)
    out, _ = find(h.path, shas[0], "ssim", "--min-effect", "0.05", "--no-attribute",
                  "--json", "--out", str(tmp_path / "report"))
    result = json.loads(out)
    assert [r["commit"] for r in result["regressions"]] == [shas[10], shas[22]]
    searched = [f"{r['good'][:8]}..{r['bad'][:8]}" for r in result["ranges"] if r["searched"]]
    whole = f"{shas[0][:8]}..{shas[-1][:8]}"
    trail: list[dict[str, Any]] = result["trail"]
    order = list(dict.fromkeys(t["range"] for t in trail))
    assert order == [whole, *searched] and len(searched) == 1
    # each search's entries together, in the order the searches ran
    blocks = [t["range"] for i, t in enumerate(trail) if i == 0 or trail[i - 1]["range"]
              != t["range"]]
    assert blocks == order
    for r in order:  # one verdict per commit and search
        commits = [t["commit"] for t in trail if t["range"] == r]
        assert len(commits) == len(set(commits))
    verdicts: dict[str, dict[str, str]] = {}
    for t in trail:
        verdicts.setdefault(t["commit"], {})[t["range"]] = t["verdict"]
    between = set(shas[10:22])  # after the first step, before the second
    twice = {c: v for c, v in verdicts.items() if len(v) == 2}
    assert twice and set(twice) <= between | {shas[9], shas[21], shas[22]}
    assert any(v[whole] != v[searched[0]] for c, v in twice.items() if c in between)
    # the report: one table per search, its rows the JSON's entries in their order
    page = (tmp_path / "report" / "index.html").read_text(encoding="utf-8")
    assert trail_tables(page) == [(r, [t["commit"][:8] for t in trail if t["range"] == r])
                                  for r in order]
    assert f"Search of the whole range {whole}" in page
    assert f"Search of {searched[0]}, beside a culprit" in page


def test_read_back_counts_only_runs_earlier_invocations_made(
        config_then_code_hunts: ConfigThenCode) -> None:
    # First hunt, fresh store: nothing is read back, however often attribution asks
    # again for runs the hunt itself made (it counted 12 of its own 12 runs before).
    first = re.search(r"\n  (\d+) probe runs; (\d+) more results read back",
                      config_then_code_hunts.first_text)
    assert first is not None
    runs, read_back = int(first.group(1)), int(first.group(2))
    assert runs > 0 and read_back == 0
    # The same hunt again reads back exactly the runs the first one made, each once.
    again = config_then_code_hunts.again
    assert again["probe_runs"] == 0 and again["reused_runs"] == runs


def test_without_min_effect_a_noisy_hunt_reports_the_threshold_it_applied(tmp_path: Path
                                                                          ) -> None:
    # the noisy engine counts any step it can show when no --min-effect is given; the
    # result used to print a default of three noise sd from three runs beside a smaller step
    built = build(tmp_path / "repo", 50, 30, effect=3.0, noise=1.0, salt=7)
    out, err = find(built.path, built.shas[0], "score", "--json", "--no-attribute",
                    "--store", str(tmp_path / "s.sqlite"), "--out", str(tmp_path / "r"))
    result = json.loads(out)
    assert result["status"] == "found" and result["first_bad"]["commit"] == built.culprit
    assert result["min_effect"] is None
    assert "three noise sd (--min-effect sets this bar)" in err
    # the range after the culprit improves here: said so, not "regresses by -x"
    assert "regresses by -" not in err


def test_a_hunt_cut_short_says_why_and_gives_its_candidates_probabilities(tmp_path: Path
                                                                          ) -> None:
    built = build(tmp_path / "repo", 50, 30, effect=3.0, noise=1.0, salt=7)
    proc = run_cli("find", "--repo", str(built.path), "--good", built.shas[0], "--metric",
                   "score", "--direction", "higher", "--probe", probe_cmd(), "--max-runs", "8",
                   "--store", str(tmp_path / "s.sqlite"), "--out", str(tmp_path / "r"))
    assert proc.returncode == 3, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == ("score: no culprit verified at the target confidence "
                        "(run budget spent).")
    shown = [re.fullmatch(r"  candidate ([0-9a-f]{8}) '([^']+)' \(P ([0-9.]+)\)", line)
             for line in lines if line.startswith("  candidate ")]
    assert shown and all(shown)
    subject = {sha[:8]: s for sha, s in subjects(built.path).items()}
    assert all(subject[c[1]] == c[2] for c in shown if c)  # each with its own subject
    # the heading says how much of the probability the listed commits hold (each P and
    # the percentage are rounded: half a unit each)
    held = sum(float(c[3]) for c in shown if c)
    heading = next(line for line in lines if "likeliest first bad commits" in line)
    said = float(heading.split("holding ")[1].split("%")[0]) / 100
    assert abs(said - held) <= 0.005 * (len(shown) + 1)
    page = unescape((tmp_path / "r" / "index.html").read_text())
    assert "No culprit was verified at the target confidence (run budget spent)" in page
    assert "Untestable commits" not in page  # none was: the budget ran out
    for c in shown:
        assert c and re.search(rf"{c[1]}</code> {c[2]} <span class=\"muted\">\(P {c[3]}", page)
    assert "--max-runs 8" in page  # the command that reruns this hunt


def test_a_seed_insensitive_probe_gets_exact_words_not_noise_words(tmp_path: Path) -> None:
    # Exact values: the step has no interval and the ranges beside the culprit, the same
    # value at both ends, neither "improve by -0" nor miss a bar of "three noise sd".
    h = History(tmp_path / "repo")
    shas = h.linear([0.9] * 6 + [0.6] * 6)
    text, progress = find(h.path, shas[0], "ssim", "--no-attribute")
    assert f"ssim fell from 0.9 to 0.6 at {shas[6][:8]}" in text
    assert "  step -0.3 (exact, 1 paired run)" in text
    unsearched = [line for line in progress.splitlines() if line.endswith("not searched")]
    assert unsearched == [f"{shas[0][:8]}..{shas[5][:8]} does not change; not searched",
                          f"{shas[6][:8]}..{shas[-1][:8]} does not change; not searched"]
    assert "noise sd" not in progress and "-0:" not in progress
    [index] = (tmp_path / "reports").glob("*/index.html")
    page = unescape(index.read_text(encoding="utf-8"))
    assert "step -0.3, exact, 1 paired run," in page and "95% interval -" not in page


def test_an_undecided_hunt_says_where_95_percent_of_the_probability_lies(tmp_path: Path
                                                                          ) -> None:
    # 30 runs on 60 commits with a 3 sd step: the culprit is likely, not verified
    built = build(tmp_path / "repo", 61, 37, effect=3.0, noise=1.0, salt=5)
    proc = run_cli("find", "--repo", str(built.path), "--good", built.shas[0], "--metric",
                   "score", "--direction", "higher", "--probe", probe_cmd(), "--max-runs", "30",
                   "--no-attribute", "--json", "--store", str(tmp_path / "s.sqlite"),
                   "--out", str(tmp_path / "r"), "--summary-md", str(tmp_path / "s.md"))
    assert proc.returncode == 3, proc.stderr
    result = json.loads(proc.stdout)
    assert result["status"] == "inconclusive"
    span = result["candidate_span"]
    order = built.shas  # history order: the window is consecutive commits in it
    first, last = order.index(span["first"]), order.index(span["last"])
    assert span["commits"] == last - first + 1
    assert first <= order.index(built.culprit) <= last  # the culprit is in it
    p = {c["commit"]: c["p"] for c in result["candidate_probabilities"]}
    assert 0.95 <= span["p"] <= 1.0 + 1e-9
    assert sum(p.get(sha, 0.0) for sha in order[first:last + 1]) <= span["p"] + 1e-9
    subject = subjects(built.path)
    assert all(c["subject"] == subject[c["commit"]] for c in result["candidate_probabilities"])
    assert (span["first_subject"], span["last_subject"]) == (subject[order[first]],
                                                             subject[order[last]])
    sentence = (f"{span['p']:.0%} of the probability lies in {span['commits']} commits from "
                f"{span['first'][:8]} '{span['first_subject']}' to {span['last'][:8]} "
                f"'{span['last_subject']}'")
    assert sentence in unescape((tmp_path / "r" / "index.html").read_text())
    assert sentence in (tmp_path / "s.md").read_text()


def test_a_metric_that_improved_is_called_improved_not_no_change(tmp_path: Path) -> None:
    # ssim went down but the user said lower is better: nothing regressed, and the verdict
    # says the metric improved and what to check, not "the change is within 1e-06"
    h = History(tmp_path / "repo")
    shas = h.linear([0.9] * 6 + [0.6] * 6)
    proc = run_cli("find", "--repo", str(h.path), "--good", shas[0], "--metric", "ssim",
                   "--direction", "lower", "--probe", probe_cmd(), "--no-attribute",
                   "--out", str(tmp_path / "r"), cwd=tmp_path)
    assert proc.returncode == 1, proc.stderr
    assert proc.stdout.splitlines()[0] == (
        f"No regression of ssim between {shas[0][:8]} (0.9) and {shas[-1][:8]} (0.6): it "
        "improved by 0.3 (lower is better). If a regression was expected, check "
        "--direction and that --good is the older commit.")
    assert "no regression: ssim went from 0.9 to 0.6 (lower is better;" in proc.stderr
    assert "it improved by 0.3" in unescape((tmp_path / "r" / "index.html").read_text())


def test_a_mistyped_second_metric_or_pin_key_is_named_not_passed_silently(
        tmp_path: Path) -> None:
    # the probe reports config {lr, steps} and takes no overrides: --pin lrr=0.1 cannot
    # hold, and "maee" is never reported; both used to pass without a word
    h = History(tmp_path / "repo")
    shas = h.linear([0.9] * 4 + [0.6] * 4, config={"lr": 0.1, "steps": 5}, ignore_pins=True)
    proc = run_cli("find", "--repo", str(h.path), "--good", shas[0], "--metric", "ssim",
                   "--metric", "maee", "--pin", "lrr=0.1", "--direction", "higher",
                   "--probe", probe_cmd(), "--no-attribute", "--out", str(tmp_path / "r"),
                   cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert ("warning: the probe did not report 'maee' at either endpoint (it reported: mae, "
            "ssim); check the --metric spelling") in proc.stderr
    assert ("warning: the probe's config has no 'lrr' at the endpoints (it reports: lr, "
            "steps), so bisector cannot check the pin holds") in proc.stderr
    page = unescape((tmp_path / "r" / "index.html").read_text())
    assert "lrr=0.1 (never in the probe's reported config: not checked)" in page


def test_runs_filling_the_endpoint_rounds_idle_slot_are_listed_as_search_runs(
        tmp_path: Path) -> None:
    # --jobs 2: the endpoint round (good twice, bad once) leaves a slot idle, which
    # measures the middle of the range; that run was listed as an "endpoint" run
    h = History(tmp_path / "repo")
    shas = h.linear([0.9] * 8 + [0.6] * 8)
    proc = run_cli("find", "--repo", str(h.path), "--good", shas[0], "--metric", "ssim",
                   "--direction", "higher", "--probe", probe_cmd(), "--no-attribute",
                   "--jobs", "2", "--out", str(tmp_path / "r"), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    page = unescape((tmp_path / "r" / "index.html").read_text())
    listed = re.findall(r"</strong> · (\w+) · <code title=\"([0-9a-f]{40})\">", page)
    assert len(listed) >= 4
    ends = {shas[0], shas[-1]}
    assert {sha for role, sha in listed if role == "endpoint"} == ends
    assert any(role == "search" and sha not in ends for role, sha in listed)


def test_a_noisy_searchs_runs_at_the_endpoints_are_listed_as_endpoint_runs(
        tmp_path: Path) -> None:
    # the engine measures the endpoints again while it searches; those runs were listed
    # as "search" runs at the good and bad commits
    built = build(tmp_path / "repo", 41, 25, effect=3.0, noise=1.0, salt=3)
    proc = run_cli("find", "--repo", str(built.path), "--good", built.shas[0], "--metric",
                   "score", "--direction", "higher", "--probe", probe_cmd(), "--no-attribute",
                   "--max-runs", "30", "--out", str(tmp_path / "r"), cwd=tmp_path)
    assert proc.returncode in (0, 3), proc.stderr
    page = unescape((tmp_path / "r" / "index.html").read_text())
    listed = re.findall(r"</strong> · (\w+) · <code title=\"([0-9a-f]{40})\">", page)
    ends = {built.shas[0], built.shas[-1]}
    at_ends = [role for role, sha in listed if sha in ends]
    assert len(at_ends) > 3  # the search went back to the endpoints
    assert set(at_ends) == {"endpoint"}
    assert "endpoint" not in {role for role, sha in listed if sha not in ends}
    assert "none given: any step the search can show counts" in page


def test_the_pin_advice_keeps_the_pins_already_in_force(tmp_path: Path) -> None:
    # hunted with probe_big held: the rerun it suggests must hold it too, or it would
    # hunt another history than the one it just explained
    h = History(tmp_path / "repo")
    shas = h.linear([0.9] * 4, config={"object_big": False, "probe_big": False},
                    effects={"object_big": -0.3})
    shas += h.linear([0.9] * 4, config={"object_big": True, "probe_big": True},
                     effects={"object_big": -0.3})
    text, _ = find(h.path, shas[0], "ssim", "--pin", "probe_big=false")
    [advice] = [line for line in text.splitlines() if "rerun find with" in line]
    assert advice.endswith("rerun find with --pin probe_big=false --pin object_big=false")


def test_a_step_whose_own_pairs_hold_zero_says_the_confidence_pools_every_run() -> None:
    # a later regression found on the hunt's pooled noise: its 3 pairs alone straddle 0
    from bisector.summary import step_text

    wide = {"effect": -0.0488, "ci": [-0.1013, 0.0038], "n": 3}
    assert step_text(wide) == ("step -0.0488 (95% CI -0.1013..0.0038, 3 paired runs: alone "
                               "they do not rule out no step; the confidence uses every run)")
    tight = {"effect": -0.0488, "ci": [-0.07, -0.03], "n": 3}
    assert step_text(tight) == "step -0.0488 (95% CI -0.07..-0.03, 3 paired runs)"
