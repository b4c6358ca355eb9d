"""What `find` prints, its --json result and its report say the same thing, honestly.

Through the CLI on real throwaway histories: the step is the paired effect everywhere,
`first_bad` carries the attribution, every regression found is named in the terminal,
the trail keeps each search's verdicts under its range, and "read back from the store"
counts only runs earlier invocations made.
"""

from __future__ import annotations

import json
import re
import sys
from html import unescape
from pathlib import Path

import pytest
from gitrepo import probe_cmd, run_cli

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
