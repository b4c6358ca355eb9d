"""Plain values shared by every layer: runs, verdicts, directions, results.

Frozen dataclasses and enums only. Nothing here touches git, processes,
files or the clock; adapters build these values and the pure core reads them.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class Direction(StrEnum):
    """Which way the metric is better."""

    HIGHER = "higher"
    LOWER = "lower"

    def worse(self, before: float, after: float) -> float:
        """How much worse `after` is than `before`, positive when it regressed."""
        return before - after if self is Direction.HIGHER else after - before


_HIGHER_WORDS = ("ssim", "psnr", "frc", "acc", "f1", "auc")
_LOWER_WORDS = ("mae", "mse", "rmse", "loss", "error", "err")


def infer_direction(metric: str) -> Direction | None:
    """Direction from the metric's name, as SPEC section 2 lists; None when unknown."""
    name = metric.lower()
    # "lower" words first: "error" contains "err", and a name like "acc_err" is an error.
    if any(word in name for word in _LOWER_WORDS):
        return Direction.LOWER
    if any(word in name for word in _HIGHER_WORDS):
        return Direction.HIGHER
    return None


class Outcome(StrEnum):
    """How one probe run ended."""

    OK = "ok"  # exit 0 with a valid result
    SKIP = "skip"  # exit 125: this commit cannot be tested
    FAILED = "failed"  # any other exit code
    TIMEOUT = "timeout"  # killed after --timeout
    INVALID = "invalid"  # exit 0 but the result is missing or malformed


class Verdict(StrEnum):
    """What the search learns about one commit."""

    GOOD = "good"
    BAD = "bad"
    SKIP = "skip"  # untestable: exit 125, or failed after retries


def canonical_json(value: Any) -> str:
    """One spelling per value, so stored runs can be looked up by their overrides."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


@dataclass(frozen=True)
class RunRequest:
    """Everything that identifies a probe run; equal requests give reusable runs."""

    commit: str
    command: str
    seed: int
    overrides: Mapping[str, Any] = field(default_factory=dict)

    @property
    def overrides_key(self) -> str:
        return canonical_json(dict(self.overrides))


@dataclass(frozen=True)
class Run:
    """One probe run as it happened (or as it was read back from the store)."""

    request: RunRequest
    outcome: Outcome
    exit_code: int | None
    metrics: Mapping[str, float] = field(default_factory=dict)
    config: Mapping[str, Any] = field(default_factory=dict)
    facts: Mapping[str, Any] = field(default_factory=dict)
    duration: float = 0.0
    output_tail: str = ""
    error: str = ""  # why the run is not OK, in one line
    artifacts: str = ""  # directory the probe could write files into
    started_at: float = 0.0  # unix time
    run_id: int | None = None  # row id once stored

    @property
    def ok(self) -> bool:
        return self.outcome is Outcome.OK

    def value(self, metric: str) -> float | None:
        v = self.metrics.get(metric)
        return v if v is not None and math.isfinite(v) else None


@dataclass(frozen=True)
class CommitInfo:
    sha: str
    subject: str
    author: str = ""
    date: str = ""  # ISO 8601

    @property
    def short(self) -> str:
        return self.sha[:8]
