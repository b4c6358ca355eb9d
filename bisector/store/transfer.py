"""Moving stores between machines: a single-file copy out, a duplicate-free merge in.

Owns the atomic export (a temp file beside the target, then os.replace), reading another
store without touching it (an in-memory snapshot, migrated to our schema), and merging its
runs, hunts and links. It must not commit: the caller's transaction wraps every merge.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable
from pathlib import Path

from .rows import (
    HUNT_COLUMNS,
    INSERT_RUN,
    REQUEST_MATCH,
    RUN_COLUMNS,
    request_key,
    run_from,
    run_row,
)
from .schema import StoreError, closed_on_error, migrate


def write_copy(path: Path, backup: Callable[[sqlite3.Connection], None]) -> None:
    """Write a consistent single-file copy (no -wal beside it), atomically replacing path.

    `backup` fills the fresh database it is given, e.g. with Connection.backup.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
    partial.unlink(missing_ok=True)
    try:
        target = sqlite3.connect(partial)
        try:
            backup(target)
            target.execute("PRAGMA journal_mode = DELETE")
        finally:
            target.close()
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)


def snapshot(path: Path) -> sqlite3.Connection:
    """An in-memory copy of another store, migrated to our schema; the file is not touched."""
    if not path.is_file():
        raise StoreError(f"no store file at {path}")
    memory = sqlite3.connect(":memory:", isolation_level=None)
    with closed_on_error(memory, f"cannot read {path} as a bisector store"):
        source = sqlite3.connect(path, timeout=30)
        try:
            source.execute("PRAGMA busy_timeout = 30000")
            source.backup(memory)
        finally:
            source.close()
        migrate(memory, str(path))
    return memory


def merge_runs(conn: sqlite3.Connection, source: sqlite3.Connection) -> tuple[int, dict[int, int]]:
    """Copy source runs that are not here yet; map every source run id to its id here."""
    added = 0
    new_ids: dict[int, int] = {}
    for row in source.execute(f"SELECT {RUN_COLUMNS} FROM runs ORDER BY id"):
        run = run_from(row)
        assert run.run_id is not None
        same = conn.execute(
            f"SELECT id FROM runs WHERE {REQUEST_MATCH} AND started_at = ? AND outcome = ?"
            " ORDER BY id LIMIT 1",
            (*request_key(run.request), run.started_at, run.outcome.value),
        ).fetchone()
        if same:
            new_ids[run.run_id] = int(same[0])
            continue
        cursor = conn.execute(INSERT_RUN, run_row(run))
        assert cursor.lastrowid is not None
        new_ids[run.run_id] = cursor.lastrowid
        added += 1
    return added, new_ids


def merge_hunts(
    conn: sqlite3.Connection, source: sqlite3.Connection, new_ids: dict[int, int]
) -> None:
    """Copy hunts not here yet (same id: kept as is), and links with their runs' new ids."""
    for row in source.execute(f"SELECT {HUNT_COLUMNS} FROM hunts ORDER BY created_at, rowid"):
        conn.execute(
            f"INSERT OR IGNORE INTO hunts ({HUNT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)", row
        )
    for hunt_id, run_id, role in source.execute(
        "SELECT hunt_id, run_id, role FROM hunt_runs ORDER BY position"
    ):
        conn.execute(
            "INSERT OR IGNORE INTO hunt_runs (hunt_id, run_id, role) VALUES (?, ?, ?)",
            (hunt_id, new_ids[run_id], role),
        )
