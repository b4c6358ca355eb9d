"""`bisector store export|import` and `--store PATH`: moving nightly state between CI machines.

Two clones of one repository stand in for two ephemeral CI machines; each has its own
store. What one exports, the other imports: every run and hunt arrives once, the
nightly baseline comes with them, and importing again adds nothing.
"""

from __future__ import annotations

import json
from pathlib import Path

from gitrepo import History, git, probe_cmd, run_cli

from bisector.store import Store, default_store_path

PROBE = r'''
import json, os
b = json.load(open("behavior.json"))
seed = int(os.environ["BISECTOR_SEED"])
print(json.dumps({"metrics": {"ssim_amp": b["value"] + 0.01 * (seed % 3),
                              "mae_amp": 1 - b["value"]}}))
'''


def nightly(repo: Path, rev: str, *extra: str) -> tuple[int, dict]:
    proc = run_cli("nightly", "--repo", str(repo), "--rev", rev, "--metric", "ssim_amp",
                   "--metric", "mae_amp", "--probe", probe_cmd(), "--json", *extra)
    assert proc.returncode in (0, 1), proc.stderr
    return proc.returncode, json.loads(proc.stdout)


def contents(store_path: Path, commits: list[str]) -> tuple[list[tuple], list[tuple]]:
    """Every run (without its local row id) and every hunt, in a comparable form."""
    with Store(store_path) as s:
        runs = sorted((r.request.commit, r.request.seed, r.request.overrides_key,
                       r.outcome.value, json.dumps(dict(r.metrics)), r.started_at)
                      for c in commits for r in s.runs_at(c))
        hunts = sorted((h.id, h.kind, h.status, json.dumps(h.result, sort_keys=True))
                       for h in s.hunts(limit=1000))
    return runs, hunts


def test_export_import_round_trip_carries_runs_hunts_and_the_baseline(tmp_path: Path) -> None:
    a = History(tmp_path / "a")
    (a.path / "probe.py").write_text(PROBE)
    shas = [a.commit(f"c{i}", value=0.9) for i in range(3)]
    git(tmp_path, "clone", "-q", str(a.path), "b")
    b = tmp_path / "b"
    store_a = tmp_path / "cache" / "store.sqlite"  # where a CI cache would keep it
    for sha in shas[:2]:
        assert nightly(a.path, sha, "--store", str(store_a))[0] == 0
    assert store_a.is_file()
    assert not default_store_path(a.path / ".git").exists()  # --store put it elsewhere

    bundle = tmp_path / "artifact" / "bisector-store.sqlite"
    proc = run_cli("store", "export", str(bundle), "--repo", str(a.path), "--store", str(store_a))
    assert proc.returncode == 0, proc.stderr
    assert bundle.is_file() and not Path(f"{bundle}-wal").exists()  # one file

    proc = run_cli("store", "import", str(bundle), "--repo", str(b))
    assert proc.returncode == 0, proc.stderr
    runs_a, hunts_a = contents(store_a, shas)
    store_b = default_store_path(b / ".git")
    assert contents(store_b, shas) == (runs_a, hunts_a)  # nothing lost
    assert f"imported {len(runs_a)} new runs and {len(hunts_a)} new hunts" in proc.stdout
    proc = run_cli("store", "import", str(bundle), "--repo", str(b))
    assert "imported 0 new runs and 0 new hunts" in proc.stdout
    assert contents(store_b, shas) == (runs_a, hunts_a)  # nothing doubled

    # The other machine picks up the baseline and the stored runs: only c2 is measured.
    code, night = nightly(b, shas[2])
    assert code == 0 and night["baseline"]["commit"] == shas[1]
    assert night["baseline"]["source"] == "store"
    assert night["probe_runs"] == 3  # seeds 0, 1, 2 at c2; the baseline's runs are reused

    # And back: the first machine gains exactly the new night.
    proc = run_cli("store", "export", str(bundle), "--repo", str(b))
    assert proc.returncode == 0, proc.stderr
    proc = run_cli("store", "import", str(bundle), "--repo", str(a.path), "--store", str(store_a))
    assert proc.returncode == 0, proc.stderr
    assert "new hunts" in proc.stdout
    assert contents(store_a, shas) == contents(store_b, shas)
    assert len(contents(store_a, shas)[1]) == len(hunts_a) + 1


def test_store_commands_refuse_bad_paths(tmp_path: Path) -> None:
    h = History(tmp_path / "repo")
    h.linear([0.9])
    proc = run_cli("store", "export", str(tmp_path / "x.sqlite"), "--repo", str(h.path))
    assert proc.returncode == 2 and "no bisector store" in proc.stderr
    proc = run_cli("store", "import", str(tmp_path / "missing.sqlite"), "--repo", str(h.path))
    assert proc.returncode == 2 and "store export" in proc.stderr
    run_cli("probe", "--repo", str(h.path), "--probe", probe_cmd())  # creates the store
    own = default_store_path(h.path / ".git")
    proc = run_cli("store", "export", str(own), "--repo", str(h.path))
    assert proc.returncode == 2 and "the store itself" in proc.stderr
    (tmp_path / "junk.sqlite").write_text("not a database")
    proc = run_cli("store", "import", str(tmp_path / "junk.sqlite"), "--repo", str(h.path))
    assert proc.returncode == 2 and "junk.sqlite" in proc.stderr
