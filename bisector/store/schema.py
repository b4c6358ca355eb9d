"""The store file itself: where it lives, how it is opened, and its versioned schema.

Owns the connection settings (WAL, synchronous FULL, a long busy timeout) and the list of
migrations that brings any older file up to the schema this code knows, refusing a newer
one. It must not read or write runs or hunts: the tables' contents belong to the others.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from bisector.errors import BisectorError


class StoreError(BisectorError):
    """The store file cannot be used: unreadable, not a store, or written by a newer bisector."""


def default_store_path(git_common_dir: Path) -> Path:
    """Where a repository's store lives: inside its git dir, never in the working tree."""
    return Path(git_common_dir) / "bisector" / "store.sqlite"


# _MIGRATIONS[n] upgrades a store at version n to version n + 1; a brand-new file is at
# version 0, so creating a store is just migrating it from nothing. To change the schema,
# append a function here: schema_version() follows, and old files upgrade when opened.
#
# duration and started_at have no declared type on purpose: a REAL column stores -0.0 as
# the integer 0, and the store promises floats back bit for bit.

_V1 = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE runs (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    commit_sha  TEXT NOT NULL,
    command     TEXT NOT NULL,
    overrides   TEXT NOT NULL,  -- canonical_json, the lookup key
    seed        INTEGER NOT NULL,
    outcome     TEXT NOT NULL,
    exit_code   INTEGER,
    metrics     TEXT NOT NULL,
    config      TEXT NOT NULL,
    facts       TEXT NOT NULL,
    duration    NOT NULL,
    output_tail TEXT NOT NULL,
    error       TEXT NOT NULL,
    artifacts   TEXT NOT NULL,
    started_at  NOT NULL
);
CREATE INDEX runs_by_request ON runs (commit_sha, command, overrides, seed);
CREATE TABLE hunts (
    id          TEXT PRIMARY KEY,
    kind        TEXT NOT NULL,
    params      TEXT NOT NULL,
    status      TEXT NOT NULL,
    result      TEXT,
    created_at  NOT NULL,
    finished_at
);
CREATE TABLE hunt_runs (
    position    INTEGER PRIMARY KEY AUTOINCREMENT,  -- keeps insertion order
    hunt_id     TEXT NOT NULL REFERENCES hunts (id),
    run_id      INTEGER NOT NULL REFERENCES runs (id),
    role        TEXT NOT NULL,
    UNIQUE (hunt_id, run_id)
);
CREATE TABLE kv (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


def _create_v1(conn: sqlite3.Connection) -> None:
    for statement in _V1.split(";"):
        if statement.strip():
            conn.execute(statement)


_MIGRATIONS: list[Callable[[sqlite3.Connection], None]] = [_create_v1]


def schema_version() -> int:
    """The newest schema this code knows."""
    return len(_MIGRATIONS)


def _read_version(conn: sqlite3.Connection) -> int:
    has_meta = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta'"
    ).fetchone()
    if not has_meta:
        return 0
    row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    return int(row[0]) if row else 0


def migrate(conn: sqlite3.Connection, where: str) -> None:
    """Bring `conn` (autocommit mode) up to schema_version(), one step per transaction."""
    # The common case, a current store, needs no write lock: readers may lack write access.
    if _check_version(conn, where) == schema_version():
        return
    while True:
        # Read the version again under the write lock: another process may be migrating.
        conn.execute("BEGIN IMMEDIATE")
        try:
            version = _check_version(conn, where)
            if version == schema_version():
                conn.execute("COMMIT")
                return
            _MIGRATIONS[version](conn)
            conn.execute(
                "INSERT OR REPLACE INTO meta (key, value) VALUES ('schema_version', ?)",
                (str(version + 1),),
            )
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise


def _check_version(conn: sqlite3.Connection, where: str) -> int:
    version = _read_version(conn)
    if version > schema_version():
        raise StoreError(
            f"{where} has store schema v{version}, this bisector knows up to"
            f" v{schema_version()}: upgrade bisector or use another store"
        )
    return version


def connect(path: Path) -> sqlite3.Connection:
    """Open (creating if need be) a store file in WAL mode; the schema is not touched here."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # isolation_level=None: we issue BEGIN/COMMIT ourselves, one commit per write.
        conn = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)
    except (OSError, sqlite3.Error) as exc:
        raise StoreError(f"cannot open the store {path}: {exc}") from exc
    with closed_on_error(conn, f"cannot use {path} as a bisector store"):
        conn.execute("PRAGMA busy_timeout = 30000")
        mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise StoreError(f"cannot put the store {path} in WAL mode (got {mode!r})")
        # FULL: a commit is on disk before add_run returns, even across a power cut.
        conn.execute("PRAGMA synchronous = FULL")
        conn.execute("PRAGMA foreign_keys = ON")
    return conn


@contextmanager
def closed_on_error(conn: sqlite3.Connection, what: str) -> Iterator[None]:
    """Close `conn` if the block fails (no half-open store is left behind); a database
    error becomes a StoreError that starts with `what`."""
    try:
        yield
    except sqlite3.DatabaseError as exc:
        conn.close()
        raise StoreError(f"{what}: {exc}") from exc
    except BaseException:
        conn.close()
        raise
