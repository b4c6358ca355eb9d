"""The run store: every probe run and every hunt, in one SQLite file beside the repository.

Owns the file format (a versioned schema, migrated in place), durable writes (WAL, a commit
after every write, so a killed hunt loses nothing it already recorded), reuse look-ups, and
moving stores between machines (export to one file, import without duplicates).
It must not run probes, call git or decide anything: it only remembers what others did.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import secrets
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from bisector.errors import BisectorError, UsageError
from bisector.model import Outcome, Run, RunRequest

_REUSABLE = (Outcome.OK.value, Outcome.SKIP.value)
_FAILED = (Outcome.FAILED.value, Outcome.TIMEOUT.value, Outcome.INVALID.value)


class StoreError(BisectorError):
    """The store file cannot be used: unreadable, not a store, or written by a newer bisector."""


class UnknownHunt(UsageError):
    def __init__(self, hunt_id: str, message: str = "") -> None:
        super().__init__(message or f"no stored hunt {hunt_id!r}: list them with `bisector runs`")
        self.hunt_id = hunt_id


class UnknownRun(UsageError):
    def __init__(self, run_id: int) -> None:
        super().__init__(f"no stored run {run_id}: list them with `bisector runs`")
        self.run_id = run_id


@dataclass(frozen=True)
class Hunt:
    """One `bisector find` / `attribute` / `nightly` invocation as stored."""

    id: str
    kind: str
    params: dict[str, Any]
    status: str
    result: dict[str, Any] | None
    created_at: float
    finished_at: float | None


def default_store_path(git_common_dir: Path) -> Path:
    """Where a repository's store lives: inside its git dir, never in the working tree."""
    return Path(git_common_dir) / "bisector" / "store.sqlite"


# --- schema -------------------------------------------------------------------------------
#
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


def _migrate(conn: sqlite3.Connection, where: str) -> None:
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


# --- encoding -----------------------------------------------------------------------------


def _dump(value: Any) -> str:
    # ensure_ascii keeps lone surrogates (which json.loads happily produces from probe
    # output) storable; floats use repr, so they come back bit for bit.
    return json.dumps(value)


_SURROGATE = re.compile("[\ud800-\udfff]")


def _text(value: str) -> str:
    """Free text as SQLite can store it: lone surrogates become U+FFFD."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return _SURROGATE.sub("\ufffd", value)
    return value


_RUN_FIELDS = (
    "commit_sha, command, overrides, seed, outcome, exit_code, metrics, config, facts,"
    " duration, output_tail, error, artifacts, started_at"
)
_RUN_COLUMNS = "id, " + _RUN_FIELDS
_INSERT_RUN = f"INSERT INTO runs ({_RUN_FIELDS}) VALUES ({', '.join('?' * 14)})"


def _run_row(run: Run) -> tuple[Any, ...]:
    req = run.request
    return (
        req.commit,
        req.command,
        req.overrides_key,
        req.seed,
        run.outcome.value,
        run.exit_code,
        _dump(dict(run.metrics)),
        _dump(dict(run.config)),
        _dump(dict(run.facts)),
        run.duration,
        _text(run.output_tail),
        _text(run.error),
        _text(run.artifacts),
        run.started_at,
    )


def _run_from(row: tuple[Any, ...]) -> Run:
    run_id, commit, command, overrides, seed, outcome, exit_code, *rest = row
    metrics, config, facts, duration, output_tail, error, artifacts, started_at = rest
    return Run(
        request=RunRequest(commit, command, seed, json.loads(overrides)),
        outcome=Outcome(outcome),
        exit_code=exit_code,
        metrics=json.loads(metrics),
        config=json.loads(config),
        facts=json.loads(facts),
        duration=duration,
        output_tail=output_tail,
        error=error,
        artifacts=artifacts,
        started_at=started_at,
        run_id=run_id,
    )


def _hunt_from(row: tuple[Any, ...]) -> Hunt:
    hunt_id, kind, params, status, result, created_at, finished_at = row
    return Hunt(
        id=hunt_id,
        kind=kind,
        params=json.loads(params),
        status=status,
        result=None if result is None else json.loads(result),
        created_at=created_at,
        finished_at=finished_at,
    )


_HUNT_COLUMNS = "id, kind, params, status, result, created_at, finished_at"
_REQUEST_MATCH = "commit_sha = ? AND command = ? AND overrides = ? AND seed = ?"


def _request_key(request: RunRequest) -> tuple[str, str, str, int]:
    return (request.commit, request.command, request.overrides_key, request.seed)


# --- the store ----------------------------------------------------------------------------


class Store:
    """One store file. Safe for one writing process and any number of readers."""

    def __init__(self, path: Path, *, clock: Callable[[], float] = time.time) -> None:
        self.path = Path(path)
        self._clock = clock
        # Session threads (--jobs N) may record runs; one lock serialises the connection.
        self._lock = threading.RLock()
        self._conn = _connect(self.path)
        try:
            _migrate(self._conn, str(self.path))
        except sqlite3.DatabaseError as exc:
            self._conn.close()
            raise StoreError(f"cannot use {self.path} as a bisector store: {exc}") from exc
        except BaseException:
            self._conn.close()
            raise

    # -- lifecycle

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One committed transaction; IMMEDIATE so a writer never meets a busy upgrade."""
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                if self._conn.in_transaction:
                    self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    def _read(self, sql: str, args: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            return self._conn.execute(sql, args).fetchall()

    # -- runs

    def add_run(self, run: Run) -> Run:
        """Store one attempt, whatever its outcome; returns it with run_id set."""
        with self._write() as conn:
            cursor = conn.execute(_INSERT_RUN, _run_row(run))
        return dataclasses.replace(run, run_id=cursor.lastrowid)

    def get_run(self, run_id: int) -> Run:
        rows = self._read(f"SELECT {_RUN_COLUMNS} FROM runs WHERE id = ?", (run_id,))
        if not rows:
            raise UnknownRun(run_id)
        return _run_from(rows[0])

    def runs_for(self, request: RunRequest) -> list[Run]:
        """Every attempt for exactly this request, oldest first."""
        rows = self._read(
            f"SELECT {_RUN_COLUMNS} FROM runs WHERE {_REQUEST_MATCH} ORDER BY started_at, id",
            _request_key(request),
        )
        return [_run_from(row) for row in rows]

    def reusable_run(self, request: RunRequest) -> Run | None:
        """The latest OK or SKIP run for this request: a deterministic answer worth reusing."""
        rows = self._read(
            f"SELECT {_RUN_COLUMNS} FROM runs WHERE {_REQUEST_MATCH} AND outcome IN (?, ?)"
            " ORDER BY started_at DESC, id DESC LIMIT 1",
            (*_request_key(request), *_REUSABLE),
        )
        return _run_from(rows[0]) if rows else None

    def failed_attempts(self, request: RunRequest) -> int:
        rows = self._read(
            f"SELECT COUNT(*) FROM runs WHERE {_REQUEST_MATCH} AND outcome IN (?, ?, ?)",
            (*_request_key(request), *_FAILED),
        )
        return int(rows[0][0])

    def runs_at(self, commit: str, command: str | None = None) -> list[Run]:
        """Every run at a commit (any overrides, seed, outcome), oldest first."""
        sql = f"SELECT {_RUN_COLUMNS} FROM runs WHERE commit_sha = ?"
        args: tuple[Any, ...] = (commit,)
        if command is not None:
            sql += " AND command = ?"
            args += (command,)
        return [_run_from(row) for row in self._read(sql + " ORDER BY started_at, id", args)]

    # -- hunts

    def start_hunt(self, kind: str, params: dict[str, Any]) -> str:
        """Record a new hunt as 'running'; its id sorts by time, e.g. 20261126-011500-3f2a."""
        now = self._clock()
        stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime(now))
        while True:
            hunt_id = f"{stamp}-{secrets.token_hex(2)}"
            try:
                with self._write() as conn:
                    conn.execute(
                        f"INSERT INTO hunts ({_HUNT_COLUMNS})"
                        " VALUES (?, ?, ?, 'running', NULL, ?, NULL)",
                        (hunt_id, kind, _dump(params), now),
                    )
                return hunt_id
            except sqlite3.IntegrityError:
                continue  # same second, same 4 hex digits: draw again

    def finish_hunt(self, hunt_id: str, status: str, result: dict[str, Any]) -> None:
        with self._write() as conn:
            cursor = conn.execute(
                "UPDATE hunts SET status = ?, result = ?, finished_at = ? WHERE id = ?",
                (status, _dump(result), self._clock(), hunt_id),
            )
            if cursor.rowcount == 0:
                raise UnknownHunt(hunt_id)

    def link_run(self, hunt_id: str, run_id: int, role: str = "") -> None:
        """Record that a hunt used a run; linking the same (hunt, run) twice is a no-op."""
        with self._write() as conn:
            if not conn.execute("SELECT 1 FROM hunts WHERE id = ?", (hunt_id,)).fetchone():
                raise UnknownHunt(hunt_id)
            if not conn.execute("SELECT 1 FROM runs WHERE id = ?", (run_id,)).fetchone():
                raise UnknownRun(run_id)
            conn.execute(
                "INSERT OR IGNORE INTO hunt_runs (hunt_id, run_id, role) VALUES (?, ?, ?)",
                (hunt_id, run_id, role),
            )

    def hunt(self, hunt_id_or_latest: str) -> Hunt:
        """A stored hunt by id, or the most recently created one for 'latest'."""
        if hunt_id_or_latest == "latest":
            found = self.hunts(limit=1)
            if not found:
                raise UnknownHunt("latest", "no stored hunt yet: start one with `bisector find`")
            return found[0]
        rows = self._read(f"SELECT {_HUNT_COLUMNS} FROM hunts WHERE id = ?", (hunt_id_or_latest,))
        if not rows:
            raise UnknownHunt(hunt_id_or_latest)
        return _hunt_from(rows[0])

    def hunts(self, limit: int = 50) -> list[Hunt]:
        """Newest first."""
        rows = self._read(
            f"SELECT {_HUNT_COLUMNS} FROM hunts ORDER BY created_at DESC, rowid DESC LIMIT ?",
            (limit,),
        )
        return [_hunt_from(row) for row in rows]

    def hunt_runs(self, hunt_id: str) -> list[tuple[str, Run]]:
        """(role, run) for every run the hunt used, in the order they were linked."""
        columns = ", ".join(f"r.{c.strip()}" for c in _RUN_COLUMNS.split(","))
        rows = self._read(
            f"SELECT l.role, {columns} FROM hunt_runs l JOIN runs r ON r.id = l.run_id"
            " WHERE l.hunt_id = ? ORDER BY l.position",
            (hunt_id,),
        )
        return [(row[0], _run_from(row[1:])) for row in rows]

    # -- key/value

    def set_value(self, key: str, value: Any) -> None:
        with self._write() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO kv (key, value) VALUES (?, ?)", (key, _dump(value))
            )

    def get_value(self, key: str, default: Any = None) -> Any:
        rows = self._read("SELECT value FROM kv WHERE key = ?", (key,))
        return json.loads(rows[0][0]) if rows else default

    # -- moving stores between machines

    def export_to(self, path: Path) -> None:
        """Write a consistent single-file copy (no -wal beside it), atomically replacing path."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
        partial.unlink(missing_ok=True)
        try:
            target = sqlite3.connect(partial)
            try:
                with self._lock:
                    self._conn.backup(target)
                target.execute("PRAGMA journal_mode = DELETE")
            finally:
                target.close()
            os.replace(partial, path)
        finally:
            partial.unlink(missing_ok=True)

    def import_from(self, path: Path) -> int:
        """Merge runs, hunts and links from another store file; returns how many runs were new.

        A run already here (same request, started_at and outcome) is not added again;
        hunts already here (same id) are kept as they are; links follow the runs' new ids.
        """
        source = _snapshot(Path(path))
        try:
            with self._write() as conn:
                added, new_ids = _merge_runs(conn, source)
                _merge_hunts(conn, source, new_ids)
        finally:
            source.close()
        return added


def _connect(path: Path) -> sqlite3.Connection:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # isolation_level=None: we issue BEGIN/COMMIT ourselves, one commit per write.
        conn = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)
    except (OSError, sqlite3.Error) as exc:
        raise StoreError(f"cannot open the store {path}: {exc}") from exc
    try:
        conn.execute("PRAGMA busy_timeout = 30000")
        mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise StoreError(f"cannot put the store {path} in WAL mode (got {mode!r})")
        # FULL: a commit is on disk before add_run returns, even across a power cut.
        conn.execute("PRAGMA synchronous = FULL")
        conn.execute("PRAGMA foreign_keys = ON")
    except sqlite3.DatabaseError as exc:
        conn.close()
        raise StoreError(f"cannot use {path} as a bisector store: {exc}") from exc
    except BaseException:
        conn.close()
        raise
    return conn


def _snapshot(path: Path) -> sqlite3.Connection:
    """An in-memory copy of another store, migrated to our schema; the file is not touched."""
    if not path.is_file():
        raise StoreError(f"no store file at {path}")
    memory = sqlite3.connect(":memory:", isolation_level=None)
    try:
        source = sqlite3.connect(path, timeout=30)
        try:
            source.execute("PRAGMA busy_timeout = 30000")
            source.backup(memory)
        finally:
            source.close()
        _migrate(memory, str(path))
    except sqlite3.DatabaseError as exc:
        memory.close()
        raise StoreError(f"cannot read {path} as a bisector store: {exc}") from exc
    except BaseException:
        memory.close()
        raise
    return memory


def _merge_runs(conn: sqlite3.Connection, source: sqlite3.Connection) -> tuple[int, dict[int, int]]:
    """Copy source runs that are not here yet; map every source run id to its id here."""
    added = 0
    new_ids: dict[int, int] = {}
    for row in source.execute(f"SELECT {_RUN_COLUMNS} FROM runs ORDER BY id"):
        run = _run_from(row)
        assert run.run_id is not None
        same = conn.execute(
            f"SELECT id FROM runs WHERE {_REQUEST_MATCH} AND started_at = ? AND outcome = ?"
            " ORDER BY id LIMIT 1",
            (*_request_key(run.request), run.started_at, run.outcome.value),
        ).fetchone()
        if same:
            new_ids[run.run_id] = int(same[0])
            continue
        cursor = conn.execute(_INSERT_RUN, _run_row(run))
        assert cursor.lastrowid is not None
        new_ids[run.run_id] = cursor.lastrowid
        added += 1
    return added, new_ids


def _merge_hunts(
    conn: sqlite3.Connection, source: sqlite3.Connection, new_ids: dict[int, int]
) -> None:
    for row in source.execute(f"SELECT {_HUNT_COLUMNS} FROM hunts ORDER BY created_at, rowid"):
        conn.execute(
            f"INSERT OR IGNORE INTO hunts ({_HUNT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)", row
        )
    for hunt_id, run_id, role in source.execute(
        "SELECT hunt_id, run_id, role FROM hunt_runs ORDER BY position"
    ):
        conn.execute(
            "INSERT OR IGNORE INTO hunt_runs (hunt_id, run_id, role) VALUES (?, ?, ?)",
            (hunt_id, new_ids[run_id], role),
        )
