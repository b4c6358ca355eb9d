"""The shell commands that reproduce a hunt or one of its runs, from stored settings.

Pure string building: every word is quoted with shlex, and pin values are
spelled as JSON, which `--pin KEY=VALUE` parses back to the same value.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Mapping
from typing import Any

from bisector.model import Run


def _pin_words(overrides: Mapping[str, Any]) -> list[str]:
    words: list[str] = []
    for key in sorted(overrides):
        words += ["--pin", f"{key}={json.dumps(overrides[key], ensure_ascii=False)}"]
    return words


def _join(words: list[str]) -> str:
    return " ".join(shlex.quote(str(w)) for w in words)


def find_command(params: Mapping[str, Any]) -> str:
    """`bisector find ...` with the resolved endpoints, so it reruns the same range."""
    words = ["bisector", "find", "--repo", str(params.get("repo") or ".")]
    words += ["--good", str(params.get("good_sha") or params.get("good") or "?")]
    words += ["--bad", str(params.get("bad_sha") or params.get("bad") or "HEAD")]
    for metric in params.get("metrics") or []:
        words += ["--metric", str(metric)]
    if params.get("direction"):
        words += ["--direction", str(params["direction"])]
    words += ["--probe", str(params.get("probe") or "?")]
    words += _pin_words(params.get("pins") or {})
    for option, key in (("--min-effect", "min_effect"), ("--timeout", "timeout")):
        if params.get(key) is not None:
            words += [option, repr(float(params[key]))]
    if params.get("max_runs") is not None:
        words += ["--max-runs", str(params["max_runs"])]
    if params.get("confidence") not in (None, 0.99):
        words += ["--confidence", repr(float(params["confidence"]))]
    if params.get("repeats") not in (None, 3):
        words += ["--repeats", str(params["repeats"])]
    if params.get("jobs") not in (None, 1):
        words += ["--jobs", str(params["jobs"])]
    if params.get("first_parent"):
        words.append("--first-parent")
    if params.get("attribute") is False:
        words.append("--no-attribute")
    if params.get("store"):
        words += ["--store", str(params["store"])]
    return _join(words)


def probe_command(params: Mapping[str, Any], run: Run) -> str:
    """`bisector probe ...` that repeats exactly this run (same commit, seed, overrides)."""
    words = ["bisector", "probe", "--repo", str(params.get("repo") or "."),
             "--rev", run.request.commit, "--seed", str(run.request.seed)]
    words += _pin_words(run.request.overrides)
    if params.get("timeout") is not None:
        words += ["--timeout", repr(float(params["timeout"]))]
    words += ["--probe", run.request.command]
    return _join(words)
