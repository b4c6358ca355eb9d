"""The run store on real SQLite files: round trips, reuse look-ups, durability, hunts, moves."""

from __future__ import annotations

import dataclasses
import json
import re
import signal
import sqlite3
import subprocess
import sys
import textwrap
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bisector.errors import BisectorError, UsageError
from bisector.model import Outcome, Run, RunRequest
from bisector.store import (
    Store,
    StoreError,
    UnknownHunt,
    UnknownRun,
    default_store_path,
    schema_version,
)
from bisector.store import schema as store_module

HOSTILE = (
    "quote ' \" `; DROP TABLE runs;--\nnew line\r\n\ttab <script>alert(1)</script> é ü 漢字 🚀 \x00"
)
SHA_A = "a" * 40
SHA_B = "b" * 40


def make_run(
    commit: str = SHA_A,
    seed: int = 0,
    outcome: Outcome = Outcome.OK,
    overrides: dict[str, Any] | None = None,
    started_at: float = 1000.0,
    command: str = "python probe.py",
    **fields: Any,
) -> Run:
    request = RunRequest(commit, command, seed, overrides or {})
    exit_code = {Outcome.OK: 0, Outcome.SKIP: 125}.get(outcome, 1)
    return Run(request, outcome, exit_code, started_at=started_at, **fields)


def same_run(a: Run, b: Run) -> None:
    """Field-by-field equality that also tells -0.0 from 0.0 and 1 from 1.0 (via repr)."""
    assert a.request.commit == b.request.commit
    assert a.request.command == b.request.command
    assert a.request.seed == b.request.seed
    assert a.request.overrides_key == b.request.overrides_key
    for name in ("metrics", "config", "facts"):
        assert repr(dict(getattr(a, name))) == repr(dict(getattr(b, name))), name
    for name in ("outcome", "exit_code", "output_tail", "error", "artifacts", "run_id"):
        assert getattr(a, name) == getattr(b, name), name
    assert repr(a.duration) == repr(b.duration)
    assert repr(a.started_at) == repr(b.started_at)


@pytest.fixture
def store(tmp_path: Path) -> Any:
    with Store(tmp_path / "store.sqlite") as s:
        yield s


# --- runs ---------------------------------------------------------------------------------


def test_every_field_round_trips_with_hostile_text(tmp_path: Path) -> None:
    run = Run(
        request=RunRequest(SHA_A, f"python probe.py --x '{HOSTILE}'", 7, {"k": HOSTILE}),
        outcome=Outcome.FAILED,
        exit_code=-9,
        metrics={"ssim_amp": 0.1 + 0.2, "mae": -0.0, "tiny": 5e-324, "big": 1.7976931348623157e308},
        config={
            "object_big": True,
            "nested": {"list": [1, 2.5, None, "x", {"deep": [HOSTILE]}], "empty": {}},
            HOSTILE: HOSTILE,
        },
        facts={"generator": "<script>x</script>", "n": 3},
        duration=12.345678901234567,
        output_tail=HOSTILE * 3,
        error="exit 1: " + HOSTILE,
        artifacts=f"/tmp/art/{HOSTILE}",
        started_at=1_780_000_000.123456,
    )
    path = tmp_path / "store.sqlite"
    with Store(path) as s:
        stored = s.add_run(run)
        assert stored.run_id is not None
        assert stored == dataclasses.replace(run, run_id=stored.run_id)
        same_run(s.get_run(stored.run_id), stored)
    with Store(path) as s:  # a fresh instance reads it from the file
        same_run(s.get_run(stored.run_id), stored)
        [again] = s.runs_for(run.request)
        same_run(again, stored)
        [at] = s.runs_at(SHA_A)
        same_run(at, stored)


@pytest.mark.parametrize("value", [-0.0, 5e-324, 0.1 + 0.2, 1e308, float("inf"), 3])
def test_duration_and_started_at_come_back_bit_exact(store: Store, value: float) -> None:
    # A REAL column would turn -0.0 into 0.0; the store promises the very same float (or int).
    stored = store.add_run(make_run(duration=value, started_at=value))
    back = store.get_run(stored.run_id or -1)
    assert repr(back.duration) == repr(back.started_at) == repr(value)
    assert store.runs_for(stored.request) == [stored]


def test_lone_surrogates_from_probe_output_do_not_break_writes(store: Store) -> None:
    # json.loads("\"\\ud800\"") yields a lone surrogate, which UTF-8 cannot encode.
    facts = json.loads('{"odd": "a\\ud800b"}')
    stored = store.add_run(make_run(facts=facts, output_tail="tail \udcff end"))
    back = store.get_run(stored.run_id or -1)
    assert back.facts == facts  # JSON columns keep it exactly
    assert back.output_tail == "tail \ufffd end"  # free text gets a replacement character


json_leaf = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text()
json_value = st.recursive(
    json_leaf,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)
runs = st.builds(
    Run,
    request=st.builds(
        RunRequest,
        commit=st.text(min_size=1),
        command=st.text(),
        seed=st.integers(-(2**63), 2**63 - 1),
        overrides=st.dictionaries(st.text(), json_value, max_size=4),
    ),
    outcome=st.sampled_from(Outcome),
    exit_code=st.none() | st.integers(-(2**31), 2**31),
    metrics=st.dictionaries(st.text(), st.floats(allow_nan=False), max_size=5),
    config=st.dictionaries(st.text(), json_value, max_size=5),
    facts=st.dictionaries(st.text(), json_value, max_size=3),
    duration=st.floats(allow_nan=False),
    output_tail=st.text(),
    error=st.text(),
    artifacts=st.text(),
    started_at=st.floats(allow_nan=False),
)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(run=runs)
def test_any_run_round_trips_bit_exact(store: Store, run: Run) -> None:
    stored = store.add_run(run)
    same_run(store.get_run(stored.run_id or -1), stored)
    assert any(r.run_id == stored.run_id for r in store.runs_for(run.request))


def test_get_run_unknown_id_is_a_usage_error(store: Store) -> None:
    with pytest.raises(UnknownRun, match="no stored run 42"):
        store.get_run(42)
    assert issubclass(UnknownRun, UsageError)


def test_reusable_run_ignores_failures_and_returns_the_latest_ok_or_skip(store: Store) -> None:
    request = make_run().request
    assert store.reusable_run(request) is None
    store.add_run(make_run(outcome=Outcome.FAILED, started_at=1.0))
    store.add_run(make_run(outcome=Outcome.TIMEOUT, started_at=2.0))
    store.add_run(make_run(outcome=Outcome.INVALID, started_at=3.0))
    assert store.reusable_run(request) is None
    assert store.failed_attempts(request) == 3

    ok = store.add_run(make_run(outcome=Outcome.OK, started_at=4.0, metrics={"m": 1.0}))
    assert store.reusable_run(request) == ok
    skip = store.add_run(make_run(outcome=Outcome.SKIP, started_at=5.0))
    store.add_run(make_run(outcome=Outcome.FAILED, started_at=6.0))
    assert store.reusable_run(request) == skip
    assert store.failed_attempts(request) == 4
    # All attempts are kept, oldest first.
    assert [r.started_at for r in store.runs_for(request)] == [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]


def test_lookups_are_exact_on_commit_command_overrides_and_seed(store: Store) -> None:
    run = store.add_run(make_run(overrides={"a": 1}))
    assert store.reusable_run(run.request) == run
    for other in (
        make_run(commit=SHA_B, overrides={"a": 1}),
        make_run(seed=1, overrides={"a": 1}),
        make_run(command="other", overrides={"a": 1}),
        make_run(overrides={"a": 2}),
        make_run(overrides={"a": 1.0}),
        make_run(overrides={}),
    ):
        assert store.reusable_run(other.request) is None, other.request
        assert store.runs_for(other.request) == []


def test_overrides_key_is_canonical_so_dict_order_does_not_matter(store: Store) -> None:
    first = {"b": 1, "a": {"y": [1, 2], "x": True}}
    second = {"a": {"x": True, "y": [1, 2]}, "b": 1}
    stored = store.add_run(make_run(overrides=first))
    found = store.reusable_run(make_run(overrides=second).request)
    assert found is not None and found.run_id == stored.run_id
    assert dict(found.request.overrides) == first


def test_runs_at_returns_every_run_at_a_commit_optionally_for_one_command(store: Store) -> None:
    a1 = store.add_run(make_run(seed=0, started_at=1.0))
    a2 = store.add_run(make_run(seed=1, overrides={"k": 1}, outcome=Outcome.FAILED, started_at=2.0))
    a3 = store.add_run(make_run(command="other", started_at=3.0))
    store.add_run(make_run(commit=SHA_B))
    assert store.runs_at(SHA_A) == [a1, a2, a3]
    assert store.runs_at(SHA_A, "python probe.py") == [a1, a2]
    assert store.runs_at("c" * 40) == []


def test_threads_of_one_process_can_share_a_store(store: Store) -> None:
    def work(worker: int) -> list[int]:
        return [store.add_run(make_run(seed=worker * 100 + i)).run_id or -1 for i in range(25)]

    with ThreadPoolExecutor(max_workers=4) as pool:
        ids = [i for chunk in pool.map(work, range(4)) for i in chunk]
    assert len(set(ids)) == 100
    assert sorted(r.request.seed for r in store.runs_at(SHA_A)) == sorted(
        w * 100 + i for w in range(4) for i in range(25)
    )


# --- the file -----------------------------------------------------------------------------


def test_default_path_is_inside_the_git_dir_and_open_creates_the_folder(tmp_path: Path) -> None:
    git_dir = tmp_path / "repo" / ".git"
    path = default_store_path(git_dir)
    assert path == git_dir / "bisector" / "store.sqlite"
    assert not path.parent.exists()
    with Store(path) as s:
        s.add_run(make_run())
    assert path.is_file()


def test_wal_mode_is_on_and_schema_version_recorded(tmp_path: Path) -> None:
    path = tmp_path / "store.sqlite"
    with Store(path) as s:
        s.add_run(make_run())
        raw = sqlite3.connect(path)
        try:
            assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
            version = raw.execute("SELECT value FROM meta WHERE key = 'schema_version'")
            assert int(version.fetchone()[0]) == schema_version() == 1
        finally:
            raw.close()


def test_reopening_sees_everything_and_readers_see_commits_while_writer_is_open(
    tmp_path: Path,
) -> None:
    path = tmp_path / "store.sqlite"
    writer = Store(path)
    reader = Store(path)
    try:
        run = writer.add_run(make_run(metrics={"m": 0.5}))
        hunt_id = writer.start_hunt("find", {"metric": "m"})
        writer.link_run(hunt_id, run.run_id or -1, "search")
        writer.set_value("baseline", {"sha": SHA_A})
        # The reader opened before the writes and sees them without reopening.
        assert reader.get_run(run.run_id or -1) == run
        assert reader.hunt("latest").id == hunt_id
        assert reader.hunt_runs(hunt_id) == [("search", run)]
        assert reader.get_value("baseline") == {"sha": SHA_A}
    finally:
        writer.close()
        reader.close()
    with Store(path) as again:
        assert again.runs_for(run.request) == [run]
        assert again.hunt(hunt_id).params == {"metric": "m"}


CHILD = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from bisector.model import Outcome, Run, RunRequest
    from bisector.store import Store

    store = Store(Path(sys.argv[1]))
    hunt = store.start_hunt("find", {"child": True})
    print("hunt", hunt, flush=True)
    i = 0
    while True:
        run = store.add_run(Run(RunRequest("c" * 40, "probe", i), Outcome.OK, 0,
                                metrics={"m": i / 3}, started_at=float(i)))
        store.link_run(hunt, run.run_id, "search")
        print("run", run.run_id, i, flush=True)
        i += 1
        time.sleep(0.01)
    """
)


def test_runs_committed_before_a_sigkill_survive(tmp_path: Path) -> None:
    path = tmp_path / "store.sqlite"
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(path)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[1],
    )
    acknowledged: dict[int, int] = {}
    try:
        assert child.stdout is not None
        hunt_id = child.stdout.readline().split()[1]
        while len(acknowledged) < 8:
            _, printed_id, printed_seed = child.stdout.readline().split()
            acknowledged[int(printed_id)] = int(printed_seed)
            if len(acknowledged) == 4:
                # A reader in another process sees commits while the writer keeps going.
                with Store(path) as reader:
                    assert {r.run_id for r in reader.runs_at("c" * 40)} >= set(acknowledged)
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=10)
    assert child.returncode == -signal.SIGKILL
    with Store(path) as s:
        for run_id, seed in acknowledged.items():
            run = s.get_run(run_id)
            assert run.request.seed == seed
            assert run.metrics == {"m": seed / 3}
        hunt = s.hunt(hunt_id)
        assert hunt.status == "killed" and hunt.params == {"child": True}  # its process is gone
        linked = {run.run_id for _, run in s.hunt_runs(hunt_id)}
        assert linked >= set(acknowledged)


def _write_version(path: Path, version: int) -> None:
    raw = sqlite3.connect(path)
    with raw:
        raw.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(version),))
    raw.close()


def test_a_newer_schema_is_refused_with_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "store.sqlite"
    Store(path).close()
    _write_version(path, schema_version() + 1)
    with pytest.raises(StoreError, match=r"schema v2, this bisector knows up to v1: upgrade"):
        Store(path)
    assert issubclass(StoreError, BisectorError)


def test_a_file_that_is_not_a_store_is_a_store_error(tmp_path: Path) -> None:
    path = tmp_path / "store.sqlite"
    path.write_bytes(b"this is not sqlite at all" * 100)
    with pytest.raises(StoreError, match="store"):
        Store(path)


def test_an_older_schema_is_migrated_in_place_keeping_its_data(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "store.sqlite"
    with Store(path) as s:
        run = s.add_run(make_run(metrics={"m": 1.5}))

    def to_v2(conn: sqlite3.Connection) -> None:
        conn.execute("ALTER TABLE runs ADD COLUMN host TEXT NOT NULL DEFAULT ''")

    monkeypatch.setattr(store_module, "_MIGRATIONS", [*store_module._MIGRATIONS, to_v2])
    assert schema_version() == 2
    with Store(path) as s:
        assert s.get_run(run.run_id or -1) == run
        s.add_run(make_run(seed=1))
    raw = sqlite3.connect(path)
    try:
        assert raw.execute("SELECT value FROM meta").fetchone()[0] == "2"
        assert [r[0] for r in raw.execute("SELECT host FROM runs")] == ["", ""]
    finally:
        raw.close()


# --- hunts --------------------------------------------------------------------------------


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        self.now += 1.0
        return self.now


def test_hunts_start_finish_latest_and_list_newest_first(tmp_path: Path) -> None:
    clock = Clock(1_795_000_000.0)  # 2026-11-18 UTC
    with Store(tmp_path / "store.sqlite", clock=clock) as s:
        first = s.start_hunt("find", {"metric": "ssim", "pins": {"object_big": False}})
        second = s.start_hunt("attribute", {"good": SHA_A})
        assert re.fullmatch(r"\d{8}-\d{6}-[0-9a-f]{4}", first)
        assert first.startswith("20261118-")
        assert first < second  # ids sort by time

        hunt = s.hunt(first)
        assert (hunt.kind, hunt.status, hunt.result, hunt.finished_at) == (
            "find",
            "running",
            None,
            None,
        )
        assert hunt.params == {"metric": "ssim", "pins": {"object_big": False}}
        assert s.hunt("latest").id == second

        s.finish_hunt(first, "found", {"first_bad": SHA_B, "confidence": 0.999})
        done = s.hunt(first)
        assert done.status == "found"
        assert done.result == {"first_bad": SHA_B, "confidence": 0.999}
        assert done.finished_at is not None and done.finished_at > done.created_at

        third = s.start_hunt("nightly", {})
        assert [h.id for h in s.hunts()] == [third, second, first]
        assert [h.id for h in s.hunts(limit=2)] == [third, second]


def test_unknown_hunt_is_a_usage_error_with_a_helpful_message(store: Store) -> None:
    with pytest.raises(UnknownHunt, match="no stored hunt yet"):
        store.hunt("latest")
    store.start_hunt("find", {})
    with pytest.raises(UsageError) as caught:
        store.hunt("20990101-000000-dead")
    assert str(caught.value) == (
        "no stored hunt '20990101-000000-dead': list them with `bisector runs`"
    )
    with pytest.raises(UnknownHunt):
        store.finish_hunt("nope", "found", {})
    with pytest.raises(UnknownHunt):
        store.link_run("nope", 1)


def test_links_keep_order_and_roles_and_ignore_repeats(store: Store) -> None:
    hunt_id = store.start_hunt("find", {})
    other = store.start_hunt("find", {})
    r1 = store.add_run(make_run(seed=0))
    r2 = store.add_run(make_run(seed=1, outcome=Outcome.FAILED))
    r3 = store.add_run(make_run(seed=2))
    store.link_run(hunt_id, r2.run_id or -1, "endpoint")
    store.link_run(hunt_id, r1.run_id or -1, "search")
    store.link_run(hunt_id, r2.run_id or -1, "endpoint")  # no-op
    store.link_run(hunt_id, r3.run_id or -1)
    store.link_run(other, r1.run_id or -1, "attribution")
    assert store.hunt_runs(hunt_id) == [("endpoint", r2), ("search", r1), ("", r3)]
    assert store.hunt_runs(other) == [("attribution", r1)]
    with pytest.raises(UnknownRun):
        store.link_run(hunt_id, 999)


def test_values_round_trip_as_json_with_a_default(store: Store) -> None:
    assert store.get_value("baseline") is None
    assert store.get_value("baseline", {"none": True}) == {"none": True}
    store.set_value("baseline", {"sha": SHA_A, "means": {"ssim": 0.86}, "tags": [HOSTILE]})
    store.set_value("baseline", {"sha": SHA_B})
    assert store.get_value("baseline") == {"sha": SHA_B}
    store.set_value("count", 3)
    assert store.get_value("count") == 3


# --- export / import ----------------------------------------------------------------------


ROLES = ["endpoint", "search", "search", "attribution"]


def _fill(s: Store, commit: str) -> tuple[str, list[Run]]:
    hunt_id = s.start_hunt("find", {"commit": commit})
    made = [
        s.add_run(
            make_run(commit=commit, seed=i, outcome=o, started_at=10.0 + i, metrics={"m": i * 0.1})
        )
        for i, o in enumerate([Outcome.OK, Outcome.FAILED, Outcome.OK, Outcome.SKIP])
    ]
    for run, role in zip(made, ROLES, strict=True):
        s.link_run(hunt_id, run.run_id or -1, role)
    s.finish_hunt(hunt_id, "found", {"first_bad": commit})
    return hunt_id, made


def _content(run: Run) -> Run:
    return Run(**{**run.__dict__, "run_id": None})


def test_export_then_import_merges_without_duplicates(tmp_path: Path) -> None:
    ci = Store(tmp_path / "ci" / "store.sqlite")
    ci_hunt, ci_runs = _fill(ci, SHA_A)
    export = tmp_path / "moved" / "export.sqlite"
    ci.export_to(export)
    ci.add_run(make_run(commit="e" * 40))  # after the export: must not travel
    ci.close()
    assert export.is_file() and not Path(f"{export}-wal").exists()
    raw = sqlite3.connect(export)
    assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
    raw.close()

    with Store(tmp_path / "laptop" / "store.sqlite") as laptop:
        own_hunt, own_runs = _fill(laptop, SHA_B)
        # One run the laptop already has (same request, started_at, outcome), and one
        # other attempt of the same request made at another time (not a duplicate).
        laptop.add_run(ci_runs[0])
        retry = laptop.add_run(dataclasses.replace(ci_runs[2], started_at=99.0, run_id=None))
        assert laptop.import_from(export) == len(ci_runs) - 1
        assert laptop.import_from(export) == 0  # twice: nothing new

        assert laptop.runs_at("e" * 40) == []
        expected = sorted([*ci_runs, retry], key=lambda r: r.started_at)
        assert [_content(r) for r in laptop.runs_at(SHA_A)] == [_content(r) for r in expected]
        assert laptop.hunt(ci_hunt).result == {"first_bad": SHA_A}
        roles = [(role, _content(run)) for role, run in laptop.hunt_runs(ci_hunt)]
        assert roles == [(role, _content(run)) for role, run in zip(ROLES, ci_runs, strict=True)]
        assert laptop.hunt_runs(own_hunt) == list(zip(ROLES, own_runs, strict=True))
        assert {h.id for h in laptop.hunts()} == {ci_hunt, own_hunt}


def test_importing_a_store_into_itself_adds_nothing(tmp_path: Path) -> None:
    with Store(tmp_path / "store.sqlite") as s:
        hunt_id, made = _fill(s, SHA_A)
        s.export_to(tmp_path / "copy.sqlite")
        assert s.import_from(tmp_path / "copy.sqlite") == 0
        assert s.runs_at(SHA_A) == made
        assert [run for _, run in s.hunt_runs(hunt_id)] == made


def test_import_of_a_newer_or_missing_store_fails_cleanly(tmp_path: Path) -> None:
    newer = tmp_path / "newer.sqlite"
    with Store(newer) as other:
        other.add_run(make_run())
    _write_version(newer, schema_version() + 1)
    with Store(tmp_path / "store.sqlite") as s:
        with pytest.raises(StoreError, match="upgrade bisector"):
            s.import_from(newer)
        with pytest.raises(StoreError, match="no store file"):
            s.import_from(tmp_path / "missing.sqlite")
        assert s.runs_at(SHA_A) == []
    # Reading it for import left the other file's version as it was.
    raw = sqlite3.connect(newer)
    assert json.loads(raw.execute("SELECT value FROM meta").fetchone()[0]) == 2
    raw.close()


def test_a_hunt_whose_process_ended_unfinished_is_listed_as_killed(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite"
    started = subprocess.run(
        [sys.executable, "-c", "import sys; from bisector.store import Store; "
         "print(Store(sys.argv[1]).start_hunt('find', {}))", str(path)],
        capture_output=True, text=True, check=True).stdout.strip()
    with Store(path) as store:
        mine = store.start_hunt("find", {})
        statuses = {h.id: h.status for h in store.hunts()}
        assert statuses == {started: "killed", mine: "running"}
        assert store.hunt(started).status == "killed"
        store.finish_hunt(started, "interrupted", {})
        assert store.hunt(started).status == "interrupted"
