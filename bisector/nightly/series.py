"""The nightly series in the store: stored nights, the last good baseline, one metric's history.

Each night is a hunt of kind "nightly" whose result holds the revision's measurement
(per metric: mean, sd, n, values by seed). The baseline and the history are read back
from those hunts rather than from key/value entries, because `bisector store import`
merges runs and hunts without duplicates (and not key/value entries): baselines and
series travel between CI machines with them. A series is one probe command with one
set of pins; a night's baseline is the latest night of its series that advanced the
baseline and measured every metric asked for. Reads only; never writes the store.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..errors import UsageError
from ..model import Direction, canonical_json
from ..store import Store

ADVANCING = ("baseline", "no-regression")  # statuses whose revision became the baseline


def series_key(probe: str, pins: Mapping[str, Any]) -> str:
    """The series a night belongs to: one probe command with one set of pins."""
    text = canonical_json({"probe": probe, "pins": dict(pins)})
    return hashlib.sha1(text.encode()).hexdigest()[:12]


@dataclass(frozen=True)
class Night:
    """One stored nightly hunt, as the history and the baseline look-up need it."""

    hunt_id: str
    created_at: float
    series: str
    probe: str
    pins: Mapping[str, Any]
    status: str
    commit: str
    subject: str
    date: str
    measurements: Mapping[str, Mapping[str, Any]]  # metric -> mean, sd, n, values
    directions: Mapping[str, str]
    advanced: bool  # this night's revision became the baseline


def stored_nights(store: Store, series: str | None = None) -> list[Night]:
    """Every finished nightly hunt (of one series, when given), oldest first."""
    nights = []
    for hunt in reversed(store.hunts(limit=1 << 30)):
        params, result = hunt.params or {}, hunt.result or {}
        if hunt.kind != "nightly" or hunt.status == "running":
            continue
        if series is not None and params.get("series") != series:
            continue
        revision = result.get("revision") or {}
        nights.append(Night(
            hunt_id=hunt.id, created_at=hunt.created_at, series=str(params.get("series")),
            probe=str(params.get("probe", "")), pins=params.get("pins") or {},
            status=str(result.get("status") or hunt.status),
            commit=str(revision.get("commit") or params.get("rev_sha") or ""),
            subject=str(revision.get("subject") or ""), date=str(revision.get("date") or ""),
            measurements=result.get("measurements") or {},
            directions=params.get("directions") or {},
            advanced=bool(result.get("baseline_advanced"))))
    return nights


def last_baseline(nights: Sequence[Night], metrics: Sequence[str]) -> Night | None:
    """The latest night that advanced the baseline and measured every metric asked for."""
    for night in reversed(nights):
        if night.advanced and set(metrics) <= set(night.measurements):
            return night
    return None


def metric_history(store: Store, metric: str, *, probe: str | None = None,
                   pins: Mapping[str, Any] | None = None, penalty: float | None = None
                   ) -> dict[str, Any]:
    """Every night's mean of `metric` in one series, oldest first, with its change points."""
    from ..changepoints import find_change_points

    nights = [n for n in stored_nights(store) if metric in n.measurements]
    if probe is not None:
        nights = [n for n in nights if n.probe == probe]
    if pins is not None:
        nights = [n for n in nights if canonical_json(dict(n.pins)) == canonical_json(dict(pins))]
    if not nights:
        raise UsageError(f"no nightly measurement of {metric!r} in the store: run "
                         "`bisector nightly` first (or check --probe, --pin and --store)")
    series = {n.series: n for n in nights}
    if len(series) > 1:
        listed = "; ".join(f"--probe {n.probe!r} with pins {canonical_json(dict(n.pins))}"
                           for n in series.values())
        raise UsageError(f"several nightly series measure {metric!r}: choose one with --probe "
                         f"and --pin ({listed})")
    values = [float(n.measurements[metric]["mean"]) for n in nights]
    seg = find_change_points(values, penalty=penalty)
    direction = Direction(nights[-1].directions.get(metric, "higher"))
    starts = {cp.index for cp in seg.change_points}
    rows = []
    for i, n in enumerate(nights):
        m = n.measurements[metric]
        rows.append({"hunt_id": n.hunt_id, "measured_at": n.created_at, "commit": n.commit,
                     "subject": n.subject, "date": n.date, "status": n.status,
                     "mean": float(m["mean"]), "sd": float(m.get("sd") or 0.0),
                     "n": int(m.get("n") or 0), "change_point": i in starts})
    points = [{"index": cp.index, "commit": nights[cp.index].commit,
               "hunt_id": nights[cp.index].hunt_id, "before": cp.before, "after": cp.after,
               "shift": cp.shift, "worse": direction.worse(cp.before, cp.after) > 0}
              for cp in seg.change_points]
    last = nights[-1]
    return {"metric": metric, "direction": direction.value, "series": last.series,
            "probe": last.probe, "pins": dict(last.pins), "nights": rows,
            "change_points": points, "noise": seg.noise, "penalty": seg.penalty,
            "method": seg.method}
