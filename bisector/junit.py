"""A nightly result as a JUnit XML file: one test case per metric, for CI test reports.

Pure: a result dict in, an XML string out. A regressed metric is a failed test case
whose message is the verdict sentence; a probe that fails at the revision makes every
metric an errored case; the others pass, with their comparison as system-out.
Text comes from commit subjects, metric names and probe output, so it goes through
ElementTree (which escapes markup) after dropping characters XML 1.0 cannot carry.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from typing import Any

from .summary import verdict_sentence

_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
CLASSNAME = "bisector.nightly"


def xml_text(text: Any) -> str:
    return _NOT_XML.sub("\ufffd", str(text))


def failure_message(check: Mapping[str, Any]) -> str:
    """The verdict sentence of a regressed metric: the hunt's, when it named a culprit."""
    hunt = check.get("hunt")
    if isinstance(hunt, dict):
        if hunt.get("status") == "found":
            return verdict_sentence(hunt)
        return f"{check.get('sentence', '')} Hunt: {verdict_sentence(hunt)}"
    return str(check.get("sentence", ""))


def junit_xml(result: Mapping[str, Any]) -> str:
    checks = [c for c in result.get("checks") or [] if isinstance(c, Mapping)]
    rev = str((result.get("revision") or {}).get("commit") or "")[:8]
    failures = sum(1 for c in checks if c.get("regressed"))
    errors = sum(1 for c in checks if c.get("error"))
    counts = {"tests": str(len(checks)), "failures": str(failures), "errors": str(errors)}
    root = ET.Element("testsuites", {"name": "bisector nightly", **counts})
    suite = ET.SubElement(root, "testsuite", {"name": xml_text(f"bisector nightly {rev}"),
                                              **counts, "skipped": "0"})
    for check in checks:
        case = ET.SubElement(suite, "testcase", {"classname": CLASSNAME,
                                                 "name": xml_text(check.get("metric", "?"))})
        if check.get("error"):
            error = ET.SubElement(case, "error", {"type": "probe-failed",
                                                  "message": xml_text(check["error"])})
            error.text = xml_text(result.get("output_tail") or "")
        elif check.get("regressed"):
            failure = ET.SubElement(case, "failure", {"type": "regression",
                                                      "message": xml_text(failure_message(check))})
            failure.text = xml_text(_details(check))
        else:
            out = ET.SubElement(case, "system-out")
            out.text = xml_text(check.get("sentence", ""))
    ET.indent(root)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, "unicode") + "\n"


def _details(check: Mapping[str, Any]) -> str:
    lines = [str(check.get("sentence", ""))]
    hunt = check.get("hunt")
    if isinstance(hunt, dict):
        if hunt.get("error"):
            lines.append(f"hunt failed: {hunt['error']}")
        for reg in hunt.get("regressions") or []:
            effect = reg.get("effect")
            shown = f"{effect:+.4g}" if isinstance(effect, (int, float)) else str(effect)
            lines.append(f"step at {str(reg.get('commit', ''))[:8]} {reg.get('subject', '')}: "
                         f"{shown}")
        if hunt.get("report"):
            lines.append(f"report: {hunt['report']}")
    return "\n".join(lines)
