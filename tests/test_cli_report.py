"""`find` writes the report; `report` re-renders it from the store; `runs` lists hunts."""

from __future__ import annotations

import json
from pathlib import Path

from gitrepo import History, probe_cmd, run_cli


def test_report_rendered_twice_is_identical_and_runs_lists_it(tmp_path: Path) -> None:
    h = History(tmp_path / "repo")
    shas = h.linear([0.9] * 6 + [0.5] * 6)
    h.commit("<script>alert(1)</script>", value=0.5)
    a, b, md = tmp_path / "A", tmp_path / "B", tmp_path / "summary.md"
    proc = run_cli("find", "--repo", str(h.path), "--good", shas[0], "--metric", "ssim",
                   "--probe", probe_cmd(), "--out", str(a), "--summary-md", str(md), "--json")
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["report"] == str(a / "index.html")
    assert (a / "index.html").is_file()
    assert result["first_bad"]["commit"][:8] in md.read_text()
    proc = run_cli("report", "latest", "--repo", str(h.path), "--out", str(b))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == str(b / "index.html")
    assert (a / "index.html").read_bytes() == (b / "index.html").read_bytes()
    html = (a / "index.html").read_text()
    assert "<script>alert(1)</script>" not in html
    proc = run_cli("runs", "--repo", str(h.path))
    assert proc.returncode == 0
    assert result["hunt_id"] in proc.stdout and "found" in proc.stdout


def test_report_of_unknown_hunt_is_a_usage_error(tmp_path: Path) -> None:
    h = History(tmp_path / "repo")
    h.linear([0.9, 0.5])
    proc = run_cli("report", "nosuch", "--repo", str(h.path))
    assert proc.returncode == 2 and "bisector find" in proc.stderr  # no store yet
    run_cli("probe", "--repo", str(h.path), "--probe", probe_cmd())  # creates the store
    proc = run_cli("report", "nosuch", "--repo", str(h.path))
    assert proc.returncode == 2 and "bisector runs" in proc.stderr
