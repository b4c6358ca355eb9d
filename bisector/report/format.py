"""How numbers, intervals, dates and JSON values read in the report and its summaries.

Pure and total: any input (a missing key, a string where a number belongs, a NaN)
gives a dash or plain text, never an exception, so one odd stored value cannot
stop a post-mortem from rendering.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from bisector.attribution_words import percent

DASH = "—"


def obj(x: Any) -> dict[str, Any]:
    """x when it is a JSON object, else an empty one."""
    return x if isinstance(x, dict) else {}


def finite(x: Any) -> float | None:
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        return None
    return float(x) if math.isfinite(x) else None


def num(x: Any) -> str:
    v = finite(x)
    return DASH if v is None else f"{v:.4g}"


def signed(x: Any) -> str:
    v = finite(x)
    return DASH if v is None else f"{v:+.4g}"


def pair(ci: Any) -> tuple[float, float] | None:
    """A [lo, hi] interval as ordered floats, or None."""
    if isinstance(ci, Sequence) and not isinstance(ci, str) and len(ci) == 2:
        lo, hi = finite(ci[0]), finite(ci[1])
        if lo is not None and hi is not None:
            return (min(lo, hi), max(lo, hi))
    return None


def interval(ci: Any, sign: bool = False) -> str:
    c = pair(ci)
    if c is None:
        return DASH
    return f"[{c[0]:+.4g}, {c[1]:+.4g}]" if sign else f"[{c[0]:.4g}, {c[1]:.4g}]"


def step_spread(ci: Any) -> str:
    """'95% interval [-0.4, -0.2]', or 'exact' when a seed-insensitive probe gave lo == hi."""
    c = pair(ci)
    return "exact" if c is not None and c[0] == c[1] else f"95% interval {interval(ci, True)}"


def value_text(value: Any) -> str:
    """A config value or fact as text: strings as they are, anything else as JSON."""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def share_text(x: Any) -> str:
    """A share as a percent ('21%', never '-0%'); a dash when there is none."""
    v = finite(x)
    return DASH if v is None else percent(v)


def delta_value(delta: Any, side: str) -> str:
    """A config delta's good or bad value; '(absent)' where that config lacks the key."""
    d = obj(delta)
    return "(absent)" if d.get("absent") == side else value_text(d.get(side))


def when(ts: Any) -> str:
    v = finite(ts)
    if v is None:
        return DASH
    return datetime.fromtimestamp(v, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def short_date(date: str) -> str:
    """An ISO 8601 commit date as '2026-02-01 12:00 +0000'; other text as it is."""
    try:
        return datetime.fromisoformat(date).strftime("%Y-%m-%d %H:%M %z").strip()
    except ValueError:
        return date


def date_key(date: str) -> float:
    """Sort key of an ISO 8601 date; unreadable dates sort last."""
    try:
        return datetime.fromisoformat(date).timestamp()
    except ValueError:
        return math.inf
