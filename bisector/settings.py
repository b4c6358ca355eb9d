"""What the user asked for: pins, the config file, and the settings of one hunt.

Parses `--pin KEY=VALUE` as SPEC section 2 says and reads `bisector.toml` or
`[tool.bisector]` in `pyproject.toml`, checking every key against one table of
kinds (`_KEYS`), so commands receive values of the type they expect. It knows
nothing of git or probes.
"""

from __future__ import annotations

import difflib
import json
import math
import tomllib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from .errors import UsageError
from .model import Direction, infer_direction

T = TypeVar("T")

_WORDS: dict[str, Any] = {"true": True, "false": False, "none": None, "null": None}


def parse_pin(text: str) -> tuple[str, Any]:
    """`KEY=VALUE` -> (key, value); VALUE as JSON when it parses, else a string."""
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not key:
        raise UsageError(f"malformed --pin {text!r}: write KEY=VALUE, e.g. --pin object_big=false")
    if raw.strip().lower() in _WORDS:
        return key, _WORDS[raw.strip().lower()]
    try:
        value = json.loads(raw)
    except ValueError:
        return key, raw
    if isinstance(value, float) and not math.isfinite(value):
        return key, raw
    return key, value


def parse_pins(texts: Sequence[str]) -> dict[str, Any]:
    pins: dict[str, Any] = {}
    for text in texts:
        key, value = parse_pin(text)
        if key in pins and pins[key] != value:
            raise UsageError(f"--pin {key} given twice with different values: keep one")
        pins[key] = value
    return pins


def same_value(a: Any, b: Any) -> bool:
    """JSON equality: 1 == 1.0, but true is not 1 and "1" is not 1."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return a == b
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        return a.keys() == b.keys() and all(same_value(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(same_value(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and bool(a == b)


def resolve_direction(metric: str, given: Any) -> Direction:
    """`given` is a --direction text, None, or a per-metric config value (see for_metric)."""
    given = for_metric(given, metric, str)
    if given:
        try:
            return Direction(given.lower())
        except ValueError:
            raise UsageError(f"--direction must be 'higher' or 'lower', not {given!r}") from None
    inferred = infer_direction(metric)
    if inferred is None:
        raise UsageError(f"cannot tell whether {metric!r} is better higher or lower: "
                         "pass --direction higher or --direction lower")
    return inferred


def load_config_file(path: Path | None, cwd: Path) -> dict[str, Any]:
    """Settings from --config, ./bisector.toml or ./pyproject.toml [tool.bisector].

    Every key is checked against `_KEYS` here, so a typo or a wrong type is one
    UsageError naming the file and the key, never a traceback in a command.
    """
    if path is not None:
        if not path.is_file():
            raise UsageError(f"config file {path} not found: check --config")
        return _read_toml(path, str(path), tool_section=path.name == "pyproject.toml")
    if (cwd / "bisector.toml").is_file():
        return _read_toml(cwd / "bisector.toml", "bisector.toml", tool_section=False)
    if (cwd / "pyproject.toml").is_file():
        return _read_toml(cwd / "pyproject.toml", "pyproject.toml", tool_section=True)
    return {}


def _read_toml(path: Path, name: str, *, tool_section: bool) -> dict[str, Any]:
    try:
        data: Any = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read {path}: {exc}") from None
    if tool_section:
        name = f"{name} [tool.bisector]"
        data = data.get("tool", {})
        data = data.get("bisector", {}) if isinstance(data, dict) else data
        if not isinstance(data, dict):
            raise UsageError(f"{name} must be a table of settings, e.g. probe = \"python p.py\"")
    return check_config(data, name)


def check_config(data: Mapping[str, Any], name: str) -> dict[str, Any]:
    """The file's settings with `-` read as `_`, each key known and of its kind.

    `name` says where they came from in messages ("bisector.toml"). Pins come back
    as one table, whichever form the file used.
    """
    settings: dict[str, Any] = {}
    for raw_key, value in data.items():
        # Accept both spellings, so `min-effect` and `min_effect` mean the same.
        key = str(raw_key).replace("-", "_")
        if key not in _KEYS:
            close = difflib.get_close_matches(key, _KEYS, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise UsageError(f"{name}: unknown key {raw_key!r}{hint}; known keys: "
                             f"{', '.join(sorted(_KEYS))}")
        if key in settings:
            raise UsageError(f"{name}: {key} is given twice (as - and _): keep one")
        kind, example = _KEYS[key]
        try:
            settings[key] = kind.check(value)
        except _WrongValue as exc:
            raise UsageError(f"{name}: {key}: {exc}" if str(exc) else
                             f"{name}: {key} must be {kind.what}, e.g. {key} = {example}; "
                             f"got {_toml_text(value)}") from None
    for pair in (("pin", "pins"), ("metric", "metrics")):
        if all(k in settings for k in pair):
            raise UsageError(f"{name}: both {pair[0]} and {pair[1]} are given: keep one")
    return settings


class _WrongValue(Exception):
    """A config value of the wrong kind; its text, when there is one, says more."""


@dataclass(frozen=True)
class _Kind:
    """What a config value must be: words for the message, and a check that returns
    the value to use or raises _WrongValue."""

    what: str
    check: Callable[[Any], Any]


def _is_number(value: Any) -> bool:
    return (isinstance(value, (int, float)) and not isinstance(value, bool)
            and math.isfinite(value))


def _exactly(test: Callable[[Any], bool]) -> Callable[[Any], Any]:
    def check(value: Any) -> Any:
        if not test(value):
            raise _WrongValue
        return value
    return check


def _pins(value: Any) -> dict[str, Any]:
    if isinstance(value, dict):
        for key, pinned in value.items():
            if not _is_json(pinned):
                raise _WrongValue(f"{key} = {pinned} cannot reach the probe as JSON: use a "
                                  "string, a finite number, true/false, a list or a table")
        return dict(value)
    if isinstance(value, list) and all(isinstance(t, str) for t in value):
        pins: dict[str, Any] = {}
        for text in value:
            if "=" not in text or not text.partition("=")[0].strip():
                raise _WrongValue(f'{_toml_text(text)} is not "KEY=VALUE": write e.g. '
                                  '["object_big=false"]')
            key, pinned = parse_pin(text)
            if key in pins and not same_value(pins[key], pinned):
                raise _WrongValue(f"{key} is pinned twice with different values: keep one")
            pins[key] = pinned
        return pins
    raise _WrongValue


def _is_json(value: Any) -> bool:
    """What a probe can receive in BISECTOR_OVERRIDES (TOML dates and nan cannot)."""
    if isinstance(value, (str, bool)):
        return True
    if isinstance(value, (int, float)):
        return _is_number(value)
    if isinstance(value, list):
        return all(_is_json(v) for v in value)
    if isinstance(value, dict):
        return all(_is_json(v) for v in value.values())
    return False


def _metric_number(value: Any) -> bool:
    """X, or NAME=X written as a string (nightly's per-metric form)."""
    if _is_number(value):
        return True
    if not isinstance(value, str):
        return False
    try:
        return math.isfinite(float(value.rpartition("=")[2]))
    except ValueError:
        return False


def _per_metric(test: Callable[[Any], bool]) -> Callable[[Any], Any]:
    """One value for every metric, a list of X and NAME=X, or a {NAME = X} table."""
    return _exactly(lambda v: test(v) or (isinstance(v, list) and all(map(test, v)))
                    or (isinstance(v, dict) and all(map(test, v.values()))))


def _is_text(value: Any) -> bool:
    return isinstance(value, str)


TEXT = _Kind("a string", _exactly(_is_text))
NUMBER = _Kind("a number", _exactly(_is_number))
COUNT = _Kind("a whole number", _exactly(lambda v: isinstance(v, int) and not isinstance(v, bool)))
FLAG = _Kind("true or false", _exactly(lambda v: isinstance(v, bool)))
TEXTS = _Kind("a string or a list of strings", _exactly(
    lambda v: _is_text(v) or (isinstance(v, list) and all(map(_is_text, v)))))
PINS = _Kind('a table like {object_big = false} or a list like ["object_big=false"]', _pins)
METRIC_NUMBERS = _Kind('a number, a {NAME = number} table or a list of "NAME=number"',
                       _per_metric(_metric_number))
METRIC_TEXTS = _Kind('a string, a {NAME = "..."} table or a list of "NAME=..."',
                     _per_metric(_is_text))
GPU_IDS = _Kind('a string like "0,1" or a list of GPU ids', _exactly(
    lambda v: isinstance(v, (str, int)) and not isinstance(v, bool) or (
        isinstance(v, list) and all(isinstance(g, (str, int)) for g in v))))

# Every key a command reads from the file: its kind, and an example for the message.
_KEYS: dict[str, tuple[_Kind, str]] = {
    "good": (TEXT, '"v1.0"'), "bad": (TEXT, '"HEAD"'), "repo": (TEXT, '"."'),
    "metric": (TEXTS, '"ssim"'), "metrics": (TEXTS, '["ssim", "mae"]'),
    "direction": (METRIC_TEXTS, '"higher"'), "probe": (TEXT, '"python probe.py"'),
    "pin": (PINS, "{object_big = false}"), "pins": (PINS, "{object_big = false}"),
    "min_effect": (METRIC_NUMBERS, "0.05"), "jobs": (COUNT, "2"), "repeats": (COUNT, "3"),
    "max_runs": (COUNT, "100"), "timeout": (NUMBER, "600"), "confidence": (NUMBER, "0.99"),
    "out": (TEXT, '"reports/hunt"'), "store": (TEXT, '"bisector.sqlite"'),
    "summary_md": (TEXT, '"summary.md"'), "executor": (TEXT, '"dask"'),
    "scheduler": (TEXT, '"tcp://head:8786"'), "remote": (TEXT, '"https://host/repo.git"'),
    "gpus": (GPU_IDS, '"0,1"'), "no_attribute": (FLAG, "true"), "first_parent": (FLAG, "true"),
}


def _toml_text(value: Any) -> str:
    """A value as the user wrote it, near enough: "big", not 'big'; true, not True."""
    try:
        return json.dumps(value)
    except (TypeError, ValueError):
        return str(value)


def for_metric(value: Any, metric: str, convert: Callable[[Any], T]) -> T | None:
    """One metric's share of a per-metric setting (X, ["X", "NAME=X"] or {NAME = X}).

    `find` and `attribute` take one value, for their primary metric, from a file that
    `nightly` may share; None when the value names other metrics only.
    """
    if isinstance(value, dict):
        value = value.get(metric)
    elif isinstance(value, list):
        every, named = None, None
        for item in value:
            name, sep, raw = str(item).rpartition("=")
            if not sep:
                every = item if not isinstance(item, str) else raw.strip()
            elif name.strip() == metric:
                named = raw.strip()
        value = named if named is not None else every
    return None if value is None else convert(value)


@dataclass(frozen=True)
class FindSettings:
    """One `bisector find` hunt, after the CLI and the config file are merged."""

    repo: Path
    good: str
    bad: str
    metrics: tuple[str, ...]
    direction: Direction
    probe: str
    pins: Mapping[str, Any] = field(default_factory=dict)
    min_effect: float | None = None
    jobs: int = 1
    timeout: float | None = None
    out: Path | None = None
    attribute: bool = True
    first_parent: bool = False
    repeats: int = 3  # seeds per commit when the probe turns out to be noisy
    store: Path | None = None
    summary_md: Path | None = None
    max_runs: int | None = None  # probe runs this hunt may start, attribution included
    confidence: float = 0.99  # probability a found culprit must reach
    executor: str = "local"  # local | dask
    scheduler: str | None = None  # the Dask scheduler's address, with executor dask
    remote: str | None = None  # a URL Dask workers clone, when they cannot see `repo`
    gpus: tuple[str, ...] = ()  # one CUDA_VISIBLE_DEVICES per local slot; GPU resource on Dask

    @property
    def metric(self) -> str:
        return self.metrics[0]
