"""Reading a probe's result: the JSON of SPEC section 3, validated.

Pure text in, values out: which stdout line is the result, and whether a
result holds finite metrics and object-valued config and facts. Errors are
ProbeProtocolError with one line that says what to write instead.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from typing import Any

from bisector.errors import ProbeProtocolError

# A stdout line longer than this cannot be the result line; bigger results go
# through $BISECTOR_RESULT. It bounds the memory held for one partial line.
MAX_RESULT_LINE = 1 << 20

_RESULT_SHAPE = '{"metrics": {"name": number, ...}}'


def parse_result(text: str) -> tuple[dict[str, float], dict[str, Any], dict[str, Any]]:
    """Validate one result JSON text; return (metrics, config, facts).

    Raises ProbeProtocolError with a one-line message that says what is wrong
    and what to write instead.
    """
    if not text.strip():
        raise ProbeProtocolError(f"result JSON is empty: write {_RESULT_SHAPE}")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise ProbeProtocolError(
            f"result JSON is malformed at line {e.lineno} column {e.colno}: {e.msg}: "
            f"write {_RESULT_SHAPE}"
        ) from None
    except RecursionError:
        raise ProbeProtocolError("result JSON is nested too deeply to read") from None
    if not isinstance(data, dict):
        raise ProbeProtocolError(
            f"result JSON is {_kind(data)}, not an object: write {_RESULT_SHAPE}"
        )
    if "metrics" not in data:
        raise ProbeProtocolError(f"result JSON has no 'metrics' key: write {_RESULT_SHAPE}")
    raw_metrics = data["metrics"]
    if not isinstance(raw_metrics, dict):
        raise ProbeProtocolError(
            f"'metrics' is {_kind(raw_metrics)}, not an object: write {_RESULT_SHAPE}"
        )
    metrics = {name: _metric_value(name, value) for name, value in raw_metrics.items()}
    return metrics, _optional_object(data, "config"), _optional_object(data, "facts")


def _metric_value(name: str, value: Any) -> float:
    problem = ""
    # bool is an int subclass in Python, but `true` is not a measurement.
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        problem = f"{_kind(value)} ({json.dumps(value)[:40]})"
    else:
        try:
            number = float(value)
        except OverflowError:  # an integer literal beyond float range
            number = math.inf
        if math.isnan(number):
            problem = "NaN"
        elif math.isinf(number):
            problem = "infinite"
        else:
            return number
    raise ProbeProtocolError(f"metric {name!r} is {problem}: metrics must be finite numbers")


def _optional_object(data: dict[str, Any], key: str) -> dict[str, Any]:
    value = data.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ProbeProtocolError(
            f'\'{key}\' is {_kind(value)}, not an object: write {{"{key}": {{"name": value}}}}'
        )
    return value


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return "a number"


def is_result_line(line: str) -> bool:
    """True when the line parses as a JSON object with a `metrics` key (SPEC 3)."""
    text = line.strip()
    if not (text.startswith("{") and "metrics" in text):  # cheap filter for noise
        return False
    try:
        data = json.loads(text)
    except (ValueError, RecursionError):
        return False
    return isinstance(data, dict) and "metrics" in data


def find_result_line(stdout_lines: Iterable[str]) -> str | None:
    """The last stdout line that is a result line, or None."""
    found = None
    for line in stdout_lines:
        if is_result_line(line):
            found = line.strip()
    return found


