"""The `Store`: one open store file, and every read and write callers make through it.

Owns the connection's lock (session threads share it), one committed transaction per
write, and the questions asked of stored runs and hunts: reuse look-ups, a hunt's runs,
key/value entries. It must not define the schema or the row encodings (`schema`, `rows`)
and must not run probes, call git or decide anything.
"""

from __future__ import annotations

import dataclasses
import json
import os
import secrets
import socket
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import Any

from bisector.errors import UsageError
from bisector.model import Outcome, Run, RunRequest

from .rows import (
    HUNT_COLUMNS,
    INSERT_RUN,
    REQUEST_MATCH,
    RUN_COLUMNS,
    Hunt,
    hunt_from,
    request_key,
    run_from,
    run_row,
    to_json,
)
from .schema import closed_on_error, connect, migrate
from .transfer import merge_hunts, merge_runs, snapshot, write_copy

_REUSABLE = (Outcome.OK.value, Outcome.SKIP.value)
_FAILED = (Outcome.FAILED.value, Outcome.TIMEOUT.value, Outcome.INVALID.value)
_PROCESS_KEY = "hunt-process:"  # kv: the pid and host running a hunt


class UnknownHunt(UsageError):
    def __init__(self, hunt_id: str, message: str = "") -> None:
        super().__init__(message or f"no stored hunt {hunt_id!r}: list them with `bisector runs`")
        self.hunt_id = hunt_id


class UnknownRun(UsageError):
    def __init__(self, run_id: int) -> None:
        super().__init__(f"no stored run {run_id}: list them with `bisector runs`")
        self.run_id = run_id


class Store:
    """One store file. Safe for one writing process and any number of readers."""

    def __init__(self, path: Path, *, clock: Callable[[], float] = time.time) -> None:
        self.path = Path(path)
        self._clock = clock
        # Session threads (--jobs N) may record runs; one lock serialises the connection.
        self._lock = threading.RLock()
        self._conn = connect(self.path)
        with closed_on_error(self._conn, f"cannot use {self.path} as a bisector store"):
            migrate(self._conn, str(self.path))

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
            cursor = conn.execute(INSERT_RUN, run_row(run))
        return dataclasses.replace(run, run_id=cursor.lastrowid)

    def get_run(self, run_id: int) -> Run:
        rows = self._read(f"SELECT {RUN_COLUMNS} FROM runs WHERE id = ?", (run_id,))
        if not rows:
            raise UnknownRun(run_id)
        return run_from(rows[0])

    def runs_for(self, request: RunRequest) -> list[Run]:
        """Every attempt for exactly this request, oldest first."""
        rows = self._read(
            f"SELECT {RUN_COLUMNS} FROM runs WHERE {REQUEST_MATCH} ORDER BY started_at, id",
            request_key(request),
        )
        return [run_from(row) for row in rows]

    def reusable_run(self, request: RunRequest) -> Run | None:
        """The latest OK or SKIP run for this request: a deterministic answer worth reusing."""
        rows = self._read(
            f"SELECT {RUN_COLUMNS} FROM runs WHERE {REQUEST_MATCH} AND outcome IN (?, ?)"
            " ORDER BY started_at DESC, id DESC LIMIT 1",
            (*request_key(request), *_REUSABLE),
        )
        return run_from(rows[0]) if rows else None

    def failed_attempts(self, request: RunRequest) -> int:
        rows = self._read(
            f"SELECT COUNT(*) FROM runs WHERE {REQUEST_MATCH} AND outcome IN (?, ?, ?)",
            (*request_key(request), *_FAILED),
        )
        return int(rows[0][0])

    def runs_at(self, commit: str, command: str | None = None) -> list[Run]:
        """Every run at a commit (any overrides, seed, outcome), oldest first."""
        sql = f"SELECT {RUN_COLUMNS} FROM runs WHERE commit_sha = ?"
        args: tuple[Any, ...] = (commit,)
        if command is not None:
            sql += " AND command = ?"
            args += (command,)
        return [run_from(row) for row in self._read(sql + " ORDER BY started_at, id", args)]

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
                        f"INSERT INTO hunts ({HUNT_COLUMNS})"
                        " VALUES (?, ?, ?, 'running', NULL, ?, NULL)",
                        (hunt_id, kind, to_json(params), now),
                    )
                    conn.execute(  # who runs it: a hunt whose process is gone was killed
                        "INSERT OR REPLACE INTO kv (key, value) VALUES (?, ?)",
                        (_PROCESS_KEY + hunt_id,
                         to_json({"pid": os.getpid(), "host": socket.gethostname()})))
                return hunt_id
            except sqlite3.IntegrityError:
                continue  # same second, same 4 hex digits: draw again

    def finish_hunt(self, hunt_id: str, status: str, result: dict[str, Any]) -> None:
        with self._write() as conn:
            cursor = conn.execute(
                "UPDATE hunts SET status = ?, result = ?, finished_at = ? WHERE id = ?",
                (status, to_json(result), self._clock(), hunt_id),
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
        rows = self._read(f"SELECT {HUNT_COLUMNS} FROM hunts WHERE id = ?", (hunt_id_or_latest,))
        if not rows:
            raise UnknownHunt(hunt_id_or_latest)
        return self._checked(hunt_from(rows[0]))

    def hunts(self, limit: int = 50) -> list[Hunt]:
        """Newest first."""
        rows = self._read(
            f"SELECT {HUNT_COLUMNS} FROM hunts ORDER BY created_at DESC, rowid DESC LIMIT ?",
            (limit,),
        )
        return [self._checked(hunt_from(row)) for row in rows]

    def _checked(self, hunt: Hunt) -> Hunt:
        """A 'running' hunt whose process on this machine has ended is 'killed'."""
        if hunt.status != "running":
            return hunt
        owner = self.get_value(_PROCESS_KEY + hunt.id)
        if not isinstance(owner, dict) or owner.get("host") != socket.gethostname():
            return hunt  # started elsewhere, or before this was recorded: cannot tell
        try:
            os.kill(int(owner["pid"]), 0)
        except ProcessLookupError:
            return dataclasses.replace(hunt, status="killed")
        except (PermissionError, KeyError, TypeError, ValueError):
            pass  # alive under another user, or an unreadable record
        return hunt

    def hunt_runs(self, hunt_id: str) -> list[tuple[str, Run]]:
        """(role, run) for every run the hunt used, in the order they were linked."""
        columns = ", ".join(f"r.{c.strip()}" for c in RUN_COLUMNS.split(","))
        rows = self._read(
            f"SELECT l.role, {columns} FROM hunt_runs l JOIN runs r ON r.id = l.run_id"
            " WHERE l.hunt_id = ? ORDER BY l.position",
            (hunt_id,),
        )
        return [(row[0], run_from(row[1:])) for row in rows]

    # -- key/value

    def set_value(self, key: str, value: Any) -> None:
        with self._write() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO kv (key, value) VALUES (?, ?)", (key, to_json(value))
            )

    def get_value(self, key: str, default: Any = None) -> Any:
        rows = self._read("SELECT value FROM kv WHERE key = ?", (key,))
        return json.loads(rows[0][0]) if rows else default

    # -- moving stores between machines

    def export_to(self, path: Path) -> None:
        """Write a consistent single-file copy (no -wal beside it), atomically replacing path."""
        write_copy(Path(path), self._backup_into)

    def _backup_into(self, target: sqlite3.Connection) -> None:
        with self._lock:
            self._conn.backup(target)

    def import_from(self, path: Path) -> int:
        """Merge runs, hunts and links from another store file; returns how many runs were new.

        A run already here (same request, started_at and outcome) is not added again;
        hunts already here (same id) are kept as they are; links follow the runs' new ids.
        """
        source = snapshot(Path(path))
        try:
            with self._write() as conn:
                added, new_ids = merge_runs(conn, source)
                merge_hunts(conn, source, new_ids)
        finally:
            source.close()
        return added
