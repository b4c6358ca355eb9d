"""A ready-made probe that measures one pytest test.

Owns turning a pytest test that records its metric (with `record_property`)
into a probe result: it runs the test in a child pytest, reads the properties
of that test case from pytest's JUnit XML, and reports them with bisector.kit.
It must not interpret the metric: a test that fails its own threshold
assertion still measured something, and that number is the result.

    python -m bisector.pytest_probe NODEID [--metric-prefix P] [-- PYTEST_ARGS...]

Properties of the test case are sorted like this:

- `config.<key>`: config[key], the value parsed as JSON, as a Python literal
  (what str() of a tuple or dict gives) or True/False/None in any case, else kept as text;
- `fact.<key>`: facts[key], parsed the same way;
- a property whose value is a finite number and whose name starts with P
  (everything, when no prefix is given): a metric, named without P;
- anything else: a fact, under its own name.

Exit codes: 0 when the test passed or failed with metrics recorded (facts
carry pytest_outcome = passed | failed); 125 when it was skipped (or xfailed);
1 when it errored, ran no test or several, or recorded no metric.
BISECTOR_* variables reach the test through the inherited environment.
"""

from __future__ import annotations

import argparse
import ast
import json
import math
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bisector import kit

EXIT_SKIP = 125


class ProbeError(Exception):
    """The test gave no measurement; str() says why. Carries the exit code."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code


@dataclass
class Measurement:
    """What one test case recorded, sorted into the three parts of a result."""

    metrics: dict[str, float] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)
    facts: dict[str, Any] = field(default_factory=dict)


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    # Everything after a bare "--" belongs to pytest, untouched by argparse.
    extra: list[str] = []
    if "--" in args:
        cut = args.index("--")
        args, extra = args[:cut], args[cut + 1 :]
    parser = argparse.ArgumentParser(
        prog="python -m bisector.pytest_probe",
        description="Run one pytest test and report the properties it records as metrics.",
    )
    parser.add_argument("nodeid", help="pytest node id, e.g. tests/test_x.py::test_metrics")
    parser.add_argument(
        "--metric-prefix",
        default="",
        help="only numeric properties named P<name> are metrics, reported as <name>",
    )
    options = parser.parse_args(args)
    try:
        measurement = measure(options.nodeid, options.metric_prefix, extra)
    except ProbeError as error:
        print(f"bisector.pytest_probe: {error}", file=sys.stderr)
        return error.exit_code
    kit.report(measurement.metrics, config=measurement.config, facts=measurement.facts)
    return 0


def measure(
    nodeid: str, metric_prefix: str = "", pytest_args: list[str] | None = None
) -> Measurement:
    """Run `nodeid` under pytest and sort its recorded properties; ProbeError if none."""
    with tempfile.TemporaryDirectory(prefix="bisector-pytest-") as temp:
        junit = Path(temp) / "junit.xml"
        command = [
            sys.executable,
            "-m",
            "pytest",
            nodeid,
            "-q",
            f"--junitxml={junit}",
            # xunit2 (pytest's default) warns on record_property, and a project
            # with filterwarnings=error would turn that warning into a failure.
            "-o",
            "junit_family=xunit1",
            *(pytest_args or []),
        ]
        code = _run(command)
        if not junit.exists():
            raise ProbeError(f"pytest wrote no JUnit report (exit code {code}) for {nodeid}")
        case = _single_case(junit, nodeid, code)
    return _sort(case, nodeid, metric_prefix)


def _run(command: list[str]) -> int:
    """Run pytest with its output on our stderr, keeping our stdout for the result line."""
    try:
        sys.stderr.flush()
        return subprocess.run(command, stdout=sys.stderr.fileno(), check=False).returncode
    except (AttributeError, OSError, ValueError):  # stderr replaced by an object without a file
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        sys.stderr.write(done.stdout + done.stderr)
        return done.returncode


def _single_case(junit: Path, nodeid: str, code: int) -> ElementTree.Element:
    try:
        root = ElementTree.parse(junit).getroot()
    except ElementTree.ParseError as error:
        raise ProbeError(f"cannot read pytest's JUnit report: {error}") from None
    cases = list(root.iter("testcase"))
    if not cases:
        raise ProbeError(f"pytest ran no test for {nodeid} (exit code {code}); check the node id")
    if len(cases) > 1:
        names = ", ".join(case.get("name", "?") for case in cases[:5])
        raise ProbeError(
            f"{nodeid} selects {len(cases)} tests ({names}); give exactly one,"
            " e.g. with its parameters: test_x.py::test_y[param]"
        )
    return cases[0]


def _sort(case: ElementTree.Element, nodeid: str, metric_prefix: str) -> Measurement:
    outcome = _outcome(case)
    if outcome == "skipped":
        raise ProbeError(f"{nodeid} was skipped: {_message(case, 'skipped')}", EXIT_SKIP)
    if outcome == "error":
        raise ProbeError(f"{nodeid} errored: {_message(case, 'error')}")

    found = Measurement()
    not_numbers: list[str] = []
    for prop in case.iter("property"):
        name, text = prop.get("name", ""), prop.get("value", "")
        if name.startswith("config.") and len(name) > len("config."):
            found.config[name[len("config.") :]] = parse_value(text)
        elif name.startswith("fact.") and len(name) > len("fact."):
            found.facts[name[len("fact.") :]] = parse_value(text)
        elif name.startswith(metric_prefix) and len(name) > len(metric_prefix):
            number = _finite_number(text)
            if number is None:
                not_numbers.append(f"{name}={text[:40]!r}")
                found.facts.setdefault(name, parse_value(text))
            else:
                found.metrics[name[len(metric_prefix) :]] = number
        else:
            found.facts.setdefault(name, parse_value(text))

    if not found.metrics:
        hint = (
            f"; properties that are not finite numbers: {', '.join(not_numbers)}"
            if not_numbers
            else ""
        )
        prefix = f" named {metric_prefix}<name>" if metric_prefix else ""
        raise ProbeError(
            f"{nodeid} {outcome} but recorded no numeric property{prefix}"
            f" (use record_property(name, float(value))){hint}"
        )
    found.facts["pytest_outcome"] = outcome
    found.facts.setdefault("pytest_nodeid", nodeid)
    return found


def _outcome(case: ElementTree.Element) -> str:
    """passed, failed, skipped or error, as pytest's JUnit report tells it."""
    if case.find("error") is not None:
        return "error"  # also a teardown error after a recorded metric
    if case.find("failure") is not None:
        return "failed"
    if case.find("skipped") is not None:
        return "skipped"
    return "passed"


def _message(case: ElementTree.Element, tag: str) -> str:
    element = case.find(tag)
    return "" if element is None else element.get("message", "")[:300]


def _finite_number(text: str) -> float | None:
    if text.strip().lower() in ("true", "false"):
        return None
    try:
        number = float(text)
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def parse_value(text: str) -> Any:
    """A config or fact value from its text: JSON, a Python literal, a boolean, or the text."""
    try:
        return json.loads(text, parse_constant=_refuse)
    except ValueError:
        pass
    lowered = text.strip().lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if lowered in ("none", "null"):
        return None
    try:
        return _json_shaped(ast.literal_eval(text))
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return text


def _refuse(constant: str) -> Any:
    raise ValueError(f"{constant} is not a finite JSON value")


def _json_shaped(value: Any) -> Any:
    """A Python literal as JSON would hold it (tuples as lists); ValueError if it cannot."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float) and math.isfinite(value):
        return value
    if isinstance(value, (list, tuple)):
        return [_json_shaped(item) for item in value]
    if isinstance(value, dict) and all(isinstance(key, str) for key in value):
        return {key: _json_shaped(item) for key, item in value.items()}
    raise ValueError(f"{value!r} has no JSON form")


if __name__ == "__main__":
    sys.exit(main())
