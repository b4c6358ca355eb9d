"""`bisector nightly` and `bisector history` on real repositories with a real probe.

The probe reports two metrics from each commit's behavior.json: ssim_amp (higher is
better) and mae_amp (lower is better), with seed noise shared by every commit (so
paired differences cancel it) and a small per-commit jitter (so they do not cancel
exactly and the paired t-test has work to do).
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from gitrepo import History, probe_cmd, run_cli
from hypothesis import given
from hypothesis import strategies as st

from bisector.changepoints import find_change_points
from bisector.junit import junit_xml
from bisector.model import Direction
from bisector.nightly import (
    NightlySession,
    NightlySettings,
    holm_adjust,
    last_baseline,
    stored_nights,
)
from bisector.report.nightly import nightly_markdown
from bisector.store import Store, default_store_path

PROBE = r'''
import hashlib, json, os, sys
b = json.load(open("behavior.json"))
if "exit" in b:
    print("probe: the model does not build at this commit", file=sys.stderr)
    sys.exit(b["exit"])
seed, commit = int(os.environ["BISECTOR_SEED"]), os.environ["BISECTOR_COMMIT"]
def jitter(name):
    h = hashlib.sha256(f"{commit} {seed} {name}".encode()).digest()
    return (h[0] / 255 - 0.5) * 2 * b.get("jitter", 0.0)
common = b.get("noise", 0.0) * ((seed * 7919) % 13 - 6) / 6
print("training... done")
print(json.dumps({"metrics": {k: b[k] + common + jitter(k) for k in ("ssim_amp", "mae_amp")},
                  "config": {}}))
'''

NOISY = {"noise": 0.02, "jitter": 0.002}


def history(tmp_path: Path) -> History:
    h = History(tmp_path / "repo")
    (h.path / "probe.py").write_text(PROBE)
    return h


def nightly(repo: Path, rev: str, *extra: str) -> tuple[int, dict, str]:
    proc = run_cli("nightly", "--repo", str(repo), "--rev", rev, "--metric", "ssim_amp",
                   "--metric", "mae_amp", "--probe", probe_cmd(), "--json", *extra)
    out = proc.stdout.strip()
    return proc.returncode, json.loads(out) if out else {}, proc.stderr


def by_metric(result: dict) -> dict[str, dict]:
    return {c["metric"]: c for c in result["checks"]}


def test_nightly_records_baselines_then_hunts_a_drop_and_writes_ci_files(tmp_path: Path) -> None:
    # c1 - c2 - c3 - c4 - c5 - c6
    # ssim .90  .896 .90  .70  .70  .70   (c2 drifts less than --min-effect; c4 drops)
    # mae  .10  .10  .10  .10  .10  .10   (never moves)
    h = history(tmp_path)
    c1 = h.commit("c1", ssim_amp=0.90, mae_amp=0.10, **NOISY)
    c2 = h.commit("c2: tidy", ssim_amp=0.896, mae_amp=0.10, **NOISY)
    h.commit("c3", ssim_amp=0.90, mae_amp=0.10, **NOISY)
    c4 = h.commit("c4: switch the forward model", ssim_amp=0.70, mae_amp=0.10, **NOISY)
    h.commit("c5", ssim_amp=0.70, mae_amp=0.10, **NOISY)
    c6 = h.commit("c6", ssim_amp=0.70, mae_amp=0.10, **NOISY)
    effects = ("--min-effect", "0.01", "--min-effect", "mae_amp=0.02")

    code, first, err = nightly(h.path, c1, *effects)
    assert code == 0, err
    assert first["status"] == "baseline" and first["baseline"] is None
    assert first["baseline_advanced"] is True
    assert first["measurements"]["ssim_amp"]["n"] == 3  # the probe is noisy: --repeats seeds

    code, second, err = nightly(h.path, c2, *effects)
    assert code == 0, err
    assert second["status"] == "no-regression"
    assert second["baseline"]["commit"] == c1 and second["baseline"]["source"] == "store"
    ssim = by_metric(second)["ssim_amp"]
    assert ssim["effect"] == pytest.approx(-0.004, abs=0.003)  # paired: seed noise cancels
    assert ssim["min_effect"] == 0.01 and by_metric(second)["mae_amp"]["min_effect"] == 0.02
    assert not ssim["regressed"] and second["baseline_advanced"]

    out, md, xml = tmp_path / "out", tmp_path / "summary.md", tmp_path / "junit.xml"
    code, third, err = nightly(h.path, c6, *effects, "--out", str(out), "--summary-md", str(md),
                               "--junit", str(xml))
    assert code == 1, err
    assert third["status"] == "regression" and third["baseline"]["commit"] == c2
    checks = by_metric(third)
    assert checks["ssim_amp"]["regressed"] and not checks["mae_amp"]["regressed"]
    assert checks["ssim_amp"]["p_adjusted"] <= 0.01
    hunt = checks["ssim_amp"]["hunt"]
    assert hunt["status"] == "found" and hunt["first_bad"]["commit"] == c4
    assert checks["mae_amp"]["hunt"] is None
    assert [(r["metric"], r["commit"]) for r in third["regressions"]] == [("ssim_amp", c4)]
    assert not third["baseline_advanced"]
    assert Path(hunt["report"]) == out / "ssim_amp" / "index.html"
    assert Path(hunt["report"]).is_file() and (out / "summary.md").is_file()
    page = (out / "index.html").read_text()  # the night's own page, over the metric's
    assert 'href="ssim_amp/index.html"' in page and "regression found" in page
    assert c4[:8] in page

    suite = ET.parse(xml).getroot()
    assert suite.get("tests") == "2" and suite.get("failures") == "1"
    cases = {c.get("name"): c for c in suite.iter("testcase")}
    failure = cases["ssim_amp"].find("failure")
    assert failure is not None and c4[:8] in failure.get("message", "")
    assert "switch the forward model" in failure.get("message", "")
    assert cases["mae_amp"].find("failure") is None and cases["mae_amp"].find("error") is None
    summary = md.read_text()
    assert "regression found" in summary and c4[:8] in summary
    assert "switch the forward model" in summary

    # The next night at the same revision compares with the same baseline, running nothing.
    code, again, err = nightly(h.path, c6, *effects, "--out", str(tmp_path / "again"))
    assert code == 1, err
    assert again["baseline"]["commit"] == c2
    assert by_metric(again)["ssim_amp"]["hunt"]["first_bad"]["commit"] == c4
    assert again["probe_runs"] == 0


def test_probe_failing_at_the_revision_exits_4_and_keeps_the_baseline(tmp_path: Path) -> None:
    h = history(tmp_path)
    c1 = h.commit("c1", ssim_amp=0.9, mae_amp=0.1)
    c2 = h.commit("c2: breaks the build", ssim_amp=0.9, mae_amp=0.1, exit=1)
    assert nightly(h.path, c1)[0] == 0
    xml, md, out = tmp_path / "junit.xml", tmp_path / "summary.md", tmp_path / "out"
    proc = run_cli("nightly", "--repo", str(h.path), "--rev", c2, "--metric", "ssim_amp",
                   "--metric", "mae_amp", "--probe", probe_cmd(), "--junit", str(xml),
                   "--summary-md", str(md), "--out", str(out))
    assert proc.returncode == 4
    assert "does not build at this commit" in proc.stderr  # the probe's own output tail
    assert c2[:8] in proc.stderr
    suite = ET.parse(xml).getroot()
    assert suite.get("errors") == "2" and suite.get("failures") == "0"
    assert "does not build" in md.read_text()
    assert md.read_text() == (out / "summary.md").read_text()  # the artifact has it too
    with Store(default_store_path(h.path / ".git")) as store:
        nights = stored_nights(store)
    assert [n.status for n in nights] == ["baseline", "probe-failed"]
    baseline = last_baseline(nights, ["ssim_amp", "mae_amp"])
    assert baseline is not None and baseline.commit == c1
    # --json prints the night's object (status, revision, each metric's error), not a bare
    # error, so a CI step reading stdout knows which revision and metrics
    code, night, err = nightly(h.path, c2)
    assert code == 4 and "does not build at this commit" in err
    assert night["status"] == "probe-failed" and night["revision"]["commit"] == c2
    assert [c["metric"] for c in night["checks"]] == ["ssim_amp", "mae_amp"]


def test_report_of_a_night_renders_the_night_and_its_hunts_not_a_false_find_page(
        tmp_path: Path) -> None:
    # c1 - c2 - c3 - c4: ssim .90 .90 .60 .60 (c3 drops it); mae never moves
    h = history(tmp_path)
    c1 = h.commit("c1", ssim_amp=0.9, mae_amp=0.1)
    h.commit("c2", ssim_amp=0.9, mae_amp=0.1)
    c3 = h.commit("c3: <b>shrink</b> the model", ssim_amp=0.6, mae_amp=0.1)
    c4 = h.commit("c4", ssim_amp=0.6, mae_amp=0.1)
    assert nightly(h.path, c1)[0] == 0
    code, night, err = nightly(h.path, c4, "--min-effect", "0.05", "--out",
                               str(tmp_path / "night"))
    assert code == 1, err
    hunt = by_metric(night)["ssim_amp"]["hunt"]
    assert hunt["first_bad"]["commit"] == c3

    out, md = tmp_path / "again", tmp_path / "again.md"
    proc = run_cli("report", night["hunt_id"], "--repo", str(h.path), "--out", str(out),
                   "--summary-md", str(md))
    assert proc.returncode == 0, proc.stderr
    assert Path(proc.stdout.strip()) == out / "index.html"
    page = (out / "index.html").read_text()
    assert "regression found" in page and "stopped with an error" not in page
    assert f"regressed at {c3[:8]}" in page and "&lt;b&gt;shrink&lt;/b&gt;" in page
    assert "<b>shrink" not in page
    assert page.count('href="ssim_amp/index.html"') == 1  # only the regressed metric's hunt
    assert "mae_amp" in page and "0.05" in page  # every metric's row, with its min effect
    # The metric's hunt is re-rendered with the find view: the page nightly wrote, again.
    sub = (out / "ssim_amp" / "index.html").read_text()
    written = (tmp_path / "night" / "ssim_amp" / "index.html").read_text()
    assert c3[:8] in sub and hunt["hunt_id"] in sub
    assert sub == written.replace(str(tmp_path / "night"), str(out))
    summary = md.read_text()
    assert "regression found" in summary and c3[:8] in summary
    assert str(out / "ssim_amp" / "index.html") in summary  # links the re-rendered page
    # A night that found nothing renders its own page too.
    code, calm, err = nightly(h.path, c1, "--baseline", c1)
    proc = run_cli("report", calm["hunt_id"], "--repo", str(h.path), "--out",
                   str(tmp_path / "calm"))
    assert proc.returncode == 0, proc.stderr
    calm_page = (tmp_path / "calm" / "index.html").read_text()
    assert "no regression" in calm_page and "href=" not in calm_page


EFFECTS = ("--min-effect", "0.05", "--no-attribute")


def good_then_two_bad(tmp_path: Path, drop: str) -> tuple[History, str, str, str]:
    """c1 good, then c2 (subject `drop`) and c3 both 0.3 worse in ssim_amp."""
    h = history(tmp_path)
    c1 = h.commit("c1", ssim_amp=0.9, mae_amp=0.1)
    c2 = h.commit(drop, ssim_amp=0.6, mae_amp=0.1)
    c3 = h.commit("c3", ssim_amp=0.6, mae_amp=0.1)
    return h, c1, c2, c3


def test_a_one_off_baseline_comparison_leaves_the_series_baseline(tmp_path: Path) -> None:
    # c1 good; c2 and c3 both bad: comparing c3 with c2 finds nothing, but the series
    # baseline must stay c1, so the next plain night still reports the regression.
    h, c1, c2, c3 = good_then_two_bad(tmp_path, "c2: drop")
    assert nightly(h.path, c1, *EFFECTS)[0] == 0
    code, first, err = nightly(h.path, c3, *EFFECTS)
    assert code == 1 and not first["baseline_advanced"], err

    code, oneoff, err = nightly(h.path, c3, *EFFECTS, "--baseline", c2)
    assert code == 0, err
    assert oneoff["status"] == "no-regression" and oneoff["baseline"]["commit"] == c2
    assert oneoff["baseline"]["source"] == "option"
    assert oneoff["baseline_advanced"] is False
    assert f"compared with {c2[:8]} given by --baseline" in err
    assert "series baseline is unchanged" in err and "recorded as the baseline" not in err

    code, after, err = nightly(h.path, c3, *EFFECTS)
    assert code == 1, err
    assert after["status"] == "regression" and after["baseline"]["commit"] == c1
    assert "recorded as the baseline" not in err
    with Store(default_store_path(h.path / ".git")) as store:
        baseline = last_baseline(stored_nights(store), ["ssim_amp", "mae_amp"])
    assert baseline is not None and baseline.commit == c1


def test_accept_makes_a_changed_revision_the_baseline(tmp_path: Path) -> None:
    # c2's drop is intended: --accept records it as the baseline, so the next night
    # compares with c2 and passes; --accept with --baseline is refused
    h, c1, c2, c3 = good_then_two_bad(tmp_path, "c2: a trade-off the team accepts")
    assert nightly(h.path, c1, *EFFECTS)[0] == 0
    assert nightly(h.path, c2, *EFFECTS)[0] == 1

    code, accepted, err = nightly(h.path, c2, *EFFECTS, "--accept")
    assert code == 0, err
    assert accepted["status"] == "baseline" and accepted["baseline_advanced"] is True
    assert f"--accept: {c2[:8]} becomes the baseline without a comparison (it was {c1[:8]})" \
        in err
    assert by_metric(accepted)["ssim_amp"]["sentence"].endswith(
        "accepted as the baseline (--accept).")

    code, after, err = nightly(h.path, c3, *EFFECTS)
    assert code == 0, err
    assert after["status"] == "no-regression" and after["baseline"]["commit"] == c2

    listed = run_cli("runs", "--repo", str(h.path)).stdout
    assert "?.." not in listed and f"{c1[:8]}..{c2[:8]}" in listed  # a night against c1
    assert any(line.split()[6] == c2[:8] for line in listed.splitlines()[1:]
               if "baseline" in line)  # the accepted night measured c2 alone

    code, refused, err = nightly(h.path, c3, "--accept", "--baseline", c1)
    assert code == 2 and refused["status"] == "error" and "exclude each other" in err


def test_nightly_usage_errors_exit_2(tmp_path: Path) -> None:
    h = history(tmp_path)
    c1 = h.commit("c1", ssim_amp=0.9, mae_amp=0.1)
    code, result, err = nightly(h.path, c1, "--min-effect", "psnr=0.1")
    assert code == 2 and "psnr" in err and result["status"] == "error"
    proc = run_cli("nightly", "--repo", str(h.path), "--metric", "score", "--probe", probe_cmd())
    assert proc.returncode == 2 and "--direction" in proc.stderr


def test_history_finds_a_stepwise_decline_that_no_night_flags(tmp_path: Path) -> None:
    # 15 nights: ssim 0.90 (5 nights) -> 0.88 (5) -> 0.86 (5), each step below --min-effect
    h = history(tmp_path)
    wiggle = random.Random(5)  # night-to-night noise, well below a step
    shas = []
    for i in range(15):
        level = 0.90 - 0.02 * (i // 5) + wiggle.uniform(-0.003, 0.003)
        shas.append(h.commit(f"night {i}", ssim_amp=level, mae_amp=0.1))
    clock = iter(1_780_000_000.0 + 86_400 * k for k in range(1000))
    statuses = []
    for sha in shas:
        settings = NightlySettings(
            repo=h.path, metrics=("ssim_amp", "mae_amp"), probe=probe_cmd(), rev=sha,
            directions={"ssim_amp": Direction.HIGHER, "mae_amp": Direction.LOWER},
            min_effects={"ssim_amp": 0.03, "mae_amp": 0.03}, out=tmp_path / "reports")
        statuses.append(NightlySession(settings, clock=lambda: next(clock)).run()["status"])
    assert statuses == ["baseline"] + ["no-regression"] * 14

    plot = tmp_path / "ssim.svg"
    proc = run_cli("history", "--metric", "ssim_amp", "--repo", str(h.path), "--json",
                   "--out", str(plot))
    assert proc.returncode == 0, proc.stderr
    series = json.loads(proc.stdout)
    assert [n["commit"] for n in series["nights"]] == shas
    assert [(p["index"], p["commit"]) for p in series["change_points"]] == [
        (5, shas[5]), (10, shas[10])]
    assert all(p["worse"] for p in series["change_points"])
    assert [p["shift"] for p in series["change_points"]] == pytest.approx([-0.02] * 2, abs=0.004)
    assert plot.read_text().lstrip().startswith(("<?xml", "<svg"))
    text = run_cli("history", "--metric", "ssim_amp", "--repo", str(h.path)).stdout
    assert text.count("<- change") == 2 and "2 change points" in text
    mae = json.loads(run_cli("history", "--metric", "mae_amp", "--repo", str(h.path),
                             "--json").stdout)
    assert mae["change_points"] == [] and mae["direction"] == "lower"


def test_history_without_nights_is_a_usage_error(tmp_path: Path) -> None:
    h = history(tmp_path)
    c1 = h.commit("c1", ssim_amp=0.9, mae_amp=0.1)
    assert nightly(h.path, c1)[0] == 0
    proc = run_cli("history", "--metric", "psnr", "--repo", str(h.path))
    assert proc.returncode == 2 and "bisector nightly" in proc.stderr


# --- the example GitHub Actions workflow --------------------------------------------------

WORKFLOW = Path(__file__).resolve().parent.parent / "scripts" / "ci" / "nightly.yml"


def workflow_script(step: str) -> str:
    """The `run: |` script of one step of the example workflow, as the runner's bash sees it."""
    lines = WORKFLOW.read_text().splitlines()
    start = lines.index(f"      - name: {step}")
    run = next(i for i in range(start, len(lines)) if lines[i].strip() == "run: |")
    body = []
    for line in lines[run + 1:]:
        if line.strip() and not line.startswith(" " * 10):
            break
        body.append(line[10:])
    return "\n".join(body)


def test_the_example_workflow_steps_run_as_written(tmp_path: Path) -> None:
    h = history(tmp_path)
    (h.path / "scripts").mkdir()
    (h.path / "scripts" / "probe.py").write_text(PROBE.replace(
        '"config": {}', '"config": {"object_big": json.loads(os.environ["BISECTOR_OVERRIDES"])'
        '.get("object_big", True)}'))
    c1 = h.commit("c1", ssim_amp=0.9, mae_amp=0.1)
    shims = tmp_path / "bin"
    shims.mkdir()
    for name, command in (("bisector", f"{sys.executable} -m bisector"),
                          ("python", sys.executable)):
        (shims / name).write_text(f'#!/bin/sh\nexec {command} "$@"\n')
        (shims / name).chmod(0o755)
    report, summary = tmp_path / "bisector-report", tmp_path / "step-summary.md"
    env = dict(os.environ, PATH=f"{shims}:{os.environ['PATH']}", BASELINE="",
               STORE_DIR=str(tmp_path / ".bisector-store"), REPORT_DIR=str(report),
               GITHUB_STEP_SUMMARY=str(summary))

    def step(name: str) -> subprocess.CompletedProcess[str]:
        # GitHub runs `run:` scripts with `bash --noprofile --norc -eo pipefail`.
        return subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c",
                               workflow_script(name)], cwd=h.path, env=env,
                              capture_output=True, text=True, timeout=120)

    first = step("Nightly hunt")
    assert first.returncode == 0, first.stderr
    assert c1[:8] in summary.read_text()
    c2 = h.commit("c2: object_big by default", ssim_amp=0.6, mae_amp=0.1)
    second = step("Nightly hunt")
    assert second.returncode == 1, second.stderr  # the job fails on a regression
    assert "regression found" in summary.read_text() and c2[:8] in summary.read_text()
    assert next(ET.parse(report / "junit.xml").getroot().iter("failure")) is not None
    assert (report / "ssim_amp" / "index.html").is_file()
    assert step("History of the lead metric, with change points").returncode == 0
    assert (report / "ssim_amp-history.svg").is_file()
    assert "2 nights" in (report / "ssim_amp-history.txt").read_text()
    assert step("Export the store next to the report").returncode == 0
    with Store(report / "bisector-store.sqlite") as exported:
        assert [n.status for n in stored_nights(exported)] == ["baseline", "regression"]
    # a manual run with the accept input makes the drop the baseline; the next night passes
    env["ACCEPT"] = "true"
    accepted = step("Nightly hunt")
    assert accepted.returncode == 0 and "--accept" in accepted.stderr, accepted.stderr
    env["ACCEPT"] = ""
    assert step("Nightly hunt").returncode == 0


# --- pure parts ---------------------------------------------------------------------------


def test_ci_files_escape_hostile_text() -> None:
    hostile = "<script>alert(1)</script> | `x` \x1b[31m\x00"
    hunt = {"status": "found", "metric": hostile, "direction": "higher",
            "first_bad": {"commit": "ab" * 20, "subject": hostile, "mean": 0.6,
                          "parent_mean": 0.9, "confidence": 1.0}}
    result = {"status": "regression", "revision": {"commit": "cd" * 20, "subject": hostile},
              "checks": [{"metric": hostile, "regressed": True, "sentence": hostile,
                          "hunt": hunt}, {"metric": "mae", "regressed": False,
                                          "sentence": "fine"}]}
    root = ET.fromstring(junit_xml(result).encode())
    failure = next(root.iter("failure"))
    assert "<script>alert(1)</script>" in failure.get("message", "")  # text, not markup
    assert "\x00" not in failure.get("message", "")
    md = nightly_markdown(result)
    assert "<script>" not in md and "&lt;script&gt;" in md
    assert "alert(1)&lt;/script&gt; \\| \\`x\\`" in md  # a pipe cannot split a table cell


def test_holm_adjusts_step_down() -> None:
    assert holm_adjust([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert holm_adjust([0.5, 0.001]) == pytest.approx([0.5, 0.002])
    assert holm_adjust([]) == []


@given(st.lists(st.floats(0.0, 1.0), min_size=1, max_size=8))
def test_holm_never_lowers_a_p_value_and_keeps_the_order(ps: list[float]) -> None:
    adjusted = holm_adjust(ps)
    assert all(a >= p and a <= 1.0 for a, p in zip(adjusted, ps, strict=True))
    ranked = sorted(range(len(ps)), key=lambda i: ps[i])
    assert all(adjusted[a] <= adjusted[b] for a, b in zip(ranked, ranked[1:], strict=False))


def test_change_points_find_steps_and_ignore_pure_noise() -> None:
    import numpy as np

    rng = np.random.default_rng(7)
    noise = rng.normal(0.0, 0.01, 40)
    assert find_change_points(list(0.9 + noise)).change_points == ()
    steps = 0.9 + noise - 0.04 * (np.arange(40) >= 15) - 0.04 * (np.arange(40) >= 30)
    seg = find_change_points(list(steps))
    assert [cp.index for cp in seg.change_points] == [15, 30]
    assert seg.noise == pytest.approx(0.01, rel=0.5)
    assert find_change_points([0.9] * 5).change_points == ()  # too short to split


def test_a_large_drop_the_first_seeds_cannot_show_gets_more_seeds(tmp_path: Path) -> None:
    # audit: a 10 sd drop, p 0.014 on 3 paired seeds (Holm at 0.01), passed as "no
    # regression" and became the baseline. Undecided nights now double their seeds.
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
    from make_history import build

    built = build(tmp_path / "repo", 12, 11, effect=10.0, noise=1.0, salt=2)
    store = str(tmp_path / "s.sqlite")
    args = ("--metric", "score", "--direction", "higher", "--probe",
            f"{sys.executable} probe.py", "--store", store, "--json")
    first = run_cli("nightly", "--repo", str(built.path), "--rev", built.shas[10], *args,
                    "--out", str(tmp_path / "o1"))
    assert first.returncode == 0, first.stderr
    night = run_cli("nightly", "--repo", str(built.path), *args, "--out", str(tmp_path / "o2"),
                    timeout=300)
    assert "undecided on 3 paired seeds: measuring 6" in night.stderr
    assert night.returncode == 1, night.stderr
    result = json.loads(night.stdout)
    assert result["status"] == "regression" and not result["baseline_advanced"]


def test_a_baseline_rewritten_out_of_the_history_starts_a_new_one(tmp_path: Path) -> None:
    # a force-push and a gc took the stored baseline away: every later night crashed with a
    # traceback and exit 1 ("regression found"), for good
    h = History(tmp_path / "repo")
    shas = h.linear([0.9, 0.9])
    args = ("--metric", "ssim", "--direction", "higher", "--probe", probe_cmd(), "--json",
            "--store", str(tmp_path / "s.sqlite"))
    first = run_cli("nightly", "--repo", str(h.path), "--rev", shas[1], *args)
    assert first.returncode == 0, first.stderr
    subprocess.run(["git", "reset", "-q", "--hard", shas[0]], cwd=h.path, check=True)
    subprocess.run(["git", "reflog", "expire", "--expire=now", "--all"], cwd=h.path, check=True)
    subprocess.run(["git", "gc", "-q", "--prune=now"], cwd=h.path, check=True)
    new = h.commit(value=0.9)
    night = run_cli("nightly", "--repo", str(h.path), "--rev", new, *args)
    assert night.returncode == 0, night.stderr
    assert f"the baseline {shas[1][:8]}" in night.stderr
    assert "no longer in this repository" in night.stderr
    result = json.loads(night.stdout)
    assert result["status"] == "baseline" and result["baseline_advanced"]


def test_junit_spells_a_steps_effect_as_the_terminal_does() -> None:
    hunt = {"status": "found", "regressions": [
        {"commit": "ab" * 20, "subject": "raise loss", "effect": 0.47470443978959337}]}
    result = {"status": "regression", "revision": {"commit": "cd" * 20, "subject": "x"},
              "checks": [{"metric": "loss", "regressed": True, "sentence": "loss rose",
                          "hunt": hunt}]}
    failure = next(ET.fromstring(junit_xml(result).encode()).iter("failure"))
    assert "step at abababab raise loss: +0.4747" in (failure.text or "")


def test_a_night_still_undecided_at_four_times_the_seeds_leaves_the_baseline(
        tmp_path: Path) -> None:
    # a 0.4 sd drop against --min-effect 0.1: worse than the bar, not shown on 12 seeds
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
    from make_history import build

    built = build(tmp_path / "repo", 6, 5, effect=0.4, noise=1.0, salt=5)
    args = ("--metric", "score", "--direction", "higher", "--probe",
            f"{sys.executable} probe.py", "--store", str(tmp_path / "s.sqlite"), "--json")
    first = run_cli("nightly", "--repo", str(built.path), "--rev", built.shas[4], *args)
    assert first.returncode == 0, first.stderr
    night = run_cli("nightly", "--repo", str(built.path), "--min-effect", "0.1", *args)
    assert night.returncode == 0, night.stderr
    result = json.loads(night.stdout)
    [check] = result["checks"]
    assert check["n"] == 12 and not check["regressed"]
    assert check["sentence"].startswith("score may have fallen: ")
    assert check["sentence"].endswith("undecided, so the baseline stays where it is.")
    assert result["baseline_advanced"] is False
    again = run_cli("nightly", "--repo", str(built.path), "--min-effect", "0.1", *args)
    assert f"baseline {built.shas[4][:8]} from the night" in again.stderr
