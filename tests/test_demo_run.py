"""`bisector demo` end to end: the object_big story, told twice, the second time from the store."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from gitrepo import run_cli


def test_demo_names_the_culprit_blames_object_big_and_reuses_runs(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    proc = run_cli("demo", "--out", str(out), timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "torch: propagate object_big/probe_big/pad_object" in proc.stdout
    assert "object_big false to true explains" in proc.stdout
    assert "pad_object and probe_big: no effect" in proc.stdout
    assert "No regression of ssim_amp" in proc.stdout  # the hunt with object_big pinned
    assert (out / "find" / "index.html").is_file()
    assert (out / "find-pinned" / "index.html").is_file()
    with sqlite3.connect(out / "store.sqlite") as db:
        runs_before = db.execute("select count(*) from runs").fetchone()[0]
        results = [json.loads(r) for (r,) in db.execute(
            "select result from hunts where kind = 'find' order by created_at")]
    assert results[0]["first_bad"]["subject"].startswith("torch: propagate")
    deltas = {d["key"]: d for d in results[0]["attribution"]["deltas"]}
    assert deltas["object_big"]["significant"]
    lo, hi = deltas["probe_big"]["ci"]
    assert not deltas["probe_big"]["significant"] and lo <= 0 <= hi
    assert results[1]["status"] == "no-regression"

    again = run_cli("demo", "--out", str(out), timeout=600)
    assert again.returncode == 0, again.stderr[-3000:]
    assert again.stdout.count("  0 probe runs") == 2  # everything came from the store
    with sqlite3.connect(out / "store.sqlite") as db:
        assert db.execute("select count(*) from runs").fetchone()[0] == runs_before
