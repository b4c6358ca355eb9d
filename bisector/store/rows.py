"""How runs and hunts become table rows and back: the column lists and the encodings.

Owns the one mapping between the model's values (Run, RunRequest, the stored Hunt) and
the columns of `runs` and `hunts`, so a run reads back equal to what was written, floats
bit for bit. It must not open connections or execute SQL: it only builds rows and text.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from bisector.model import Outcome, Run, RunRequest


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


def to_json(value: Any) -> str:
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
RUN_COLUMNS = "id, " + _RUN_FIELDS
INSERT_RUN = f"INSERT INTO runs ({_RUN_FIELDS}) VALUES ({', '.join('?' * 14)})"
HUNT_COLUMNS = "id, kind, params, status, result, created_at, finished_at"
REQUEST_MATCH = "commit_sha = ? AND command = ? AND overrides = ? AND seed = ?"


def run_row(run: Run) -> tuple[Any, ...]:
    """The values for INSERT_RUN."""
    req = run.request
    return (
        req.commit,
        req.command,
        req.overrides_key,
        req.seed,
        run.outcome.value,
        run.exit_code,
        to_json(dict(run.metrics)),
        to_json(dict(run.config)),
        to_json(dict(run.facts)),
        run.duration,
        _text(run.output_tail),
        _text(run.error),
        _text(run.artifacts),
        run.started_at,
    )


def run_from(row: tuple[Any, ...]) -> Run:
    """A run from a row selected as RUN_COLUMNS."""
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


def hunt_from(row: tuple[Any, ...]) -> Hunt:
    """A hunt from a row selected as HUNT_COLUMNS."""
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


def request_key(request: RunRequest) -> tuple[str, str, str, int]:
    """The values for REQUEST_MATCH."""
    return (request.commit, request.command, request.overrides_key, request.seed)
