"""What the user asked for: pins, the config file, and the settings of one hunt.

Parses `--pin KEY=VALUE` as SPEC section 2 says and reads `bisector.toml` or
`[tool.bisector]` in `pyproject.toml`. It knows nothing of git or probes.
"""

from __future__ import annotations

import json
import math
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import UsageError
from .model import Direction, infer_direction

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


def resolve_direction(metric: str, given: str | None) -> Direction:
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
    """Settings from --config, ./bisector.toml or ./pyproject.toml [tool.bisector]."""
    if path is not None:
        if not path.is_file():
            raise UsageError(f"config file {path} not found: check --config")
        return _read_toml(path, tool_section=path.name == "pyproject.toml")
    if (cwd / "bisector.toml").is_file():
        return _read_toml(cwd / "bisector.toml", tool_section=False)
    if (cwd / "pyproject.toml").is_file():
        return _read_toml(cwd / "pyproject.toml", tool_section=True)
    return {}


def _read_toml(path: Path, *, tool_section: bool) -> dict[str, Any]:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read {path}: {exc}") from None
    if tool_section:
        data = data.get("tool", {}).get("bisector", {})
    # Accept both spellings, so `min-effect` and `min_effect` mean the same.
    return {str(k).replace("-", "_"): v for k, v in data.items()}


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
