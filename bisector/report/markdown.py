"""Short text forms of hunts: the Markdown summary and the `bisector runs` table.

Pure functions of stored values. Markdown goes to CI step summaries and bug
trackers, which render HTML inside Markdown: every untrusted string is escaped
for both (HTML entities, then Markdown punctuation). The plain-text table goes
to a terminal: control characters are dropped so a hostile metric name cannot
move the cursor or recolour the screen.
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from bisector.summary import (
    candidate_probabilities,
    confidence_text,
    regression_odds,
    runs_phrase,
    span_text,
    step_effect,
    verdict_sentence,
)

from .format import (
    DASH,
    delta_value,
    finite,
    num,
    obj,
    share_text,
    signed,
    step_spread,
)

if TYPE_CHECKING:
    from bisector.store import Hunt

_MD_SPECIAL = re.compile(r"([\\`*_\[\]|~])")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_HEX = re.compile(r"[0-9a-fA-F]{4,64}")


def md(text: Any) -> str:
    """Untrusted text as inert Markdown on one line."""
    one_line = " ".join(str(text).split())
    return _MD_SPECIAL.sub(r"\\\1", html.escape(one_line, quote=False))


def _sha(sha: Any) -> str:
    text = str(sha or "")
    return f"`{text[:8]}`" if _HEX.fullmatch(text) else md(text[:8]) or "—"


def summary_markdown(result: dict[str, Any], report_path: str | None) -> str:
    """Verdict, a table of the endpoints and the culprit, the attribution, and a link."""
    metric = md(result.get("metric") or "metric")
    status = str(result.get("status") or "error")
    lines = [f"### bisector: {metric} — {md(status)}", "",
             f"**{md(verdict_sentence(result))}**", ""]
    rows = [("good", result.get("good")), ("first bad", result.get("first_bad")),
            ("bad", result.get("bad"))]
    lines += [f"| | commit | {metric} | runs |", "|---|---|---|---|"]
    for label, entry in rows:
        if not isinstance(entry, Mapping):
            continue
        value = num(entry.get("mean"))
        if entry.get("parent_mean") is not None:
            value += f" (parent {num(entry.get('parent_mean'))})"
        subject = f" {md(entry['subject'])}" if entry.get("subject") else ""
        lines.append(f"| {label} | {_sha(entry.get('commit'))}{subject} | {value} "
                     f"| {num(entry.get('n'))} |")
    fb = obj(result.get("first_bad"))
    if fb:
        lines += ["", f"Step {signed(step_effect(fb))}, "
                      f"{step_spread(fb.get('ci'))}, "
                      f"confidence {confidence_text(fb.get('confidence'))}"
                      f"{regression_odds(fb)}."]
    lines += _attribution_lines(result.get("attribution"))
    lines += [f"\nNote: {md(str(note))}" for note in result.get("notes") or []]
    candidates = result.get("candidates") or []
    if candidates:
        p_of = candidate_probabilities(result)
        span = span_text(result)
        lines += ["", (f"{span[0].upper()}{span[1:]}. " if span else "") + "Candidates: "
                  + ", ".join(_sha(c) + (f" (P {p_of[c]:.2f})" if c in p_of else "")
                              for c in candidates)]
    lines += ["", runs_phrase(num(result.get("probe_runs")), num(result.get("reused_runs")),
                              result.get("failed_runs", 0)) + "."]
    if report_path:
        lines.append(f"Report: [{md(report_path)}]({quote(report_path, safe='/._-~')})")
    return "\n".join(lines) + "\n"


def _attribution_lines(attribution: Any) -> list[str]:
    if not isinstance(attribution, Mapping):
        return []
    lines = ["", f"Attribution: **{md(attribution.get('verdict') or '—')}**"]
    deltas = [d for d in attribution.get("deltas") or [] if isinstance(d, Mapping)]
    if deltas:
        lines += ["", "| key | good → bad | effect | share | finding |", "|---|---|---|---|---|"]
        for d in deltas:
            good, bad = (md(delta_value(d, side)) for side in ("good", "bad"))
            lines.append(f"| {md(d.get('key'))} | {good} → {bad} | {signed(d.get('effect'))} "
                         f"| {share_text(d.get('share'))} | {md(d.get('finding') or DASH)} |")
    if finite(attribution.get("min_effect")) is not None:
        lines.append(f"\nMin effect for these findings: {num(attribution['min_effect'])}")
    if finite(attribution.get("code_effect")) is not None:
        lines.append(f"\nCode effect: {signed(attribution.get('code_effect'))}")
    lines += [f"\nNote: {md(note)}" for note in attribution.get("notes") or []]
    return lines


# --- `bisector runs` ---------------------------------------------------------------------


def _plain(text: Any, width: int = 0) -> str:
    clean = _CONTROL.sub("?", str(text))
    return clean if not width or len(clean) <= width else clean[: width - 1] + "…"


def hunts_text(hunts: Sequence[Hunt]) -> str:
    """One line per stored hunt, newest first: id, date, kind, status, metric, range, culprit."""
    if not hunts:
        return "no stored hunts yet: start one with `bisector find`\n"
    header = ("HUNT", "CREATED (UTC)", "KIND", "STATUS", "METRIC", "RANGE", "CULPRIT")
    rows = [header]
    for h in hunts:
        p, r = h.params or {}, h.result or {}
        metrics = p.get("metrics") or [r.get("metric") or "?"]
        good = str((r.get("good") or {}).get("commit") or p.get("good_sha") or p.get("good") or "?")
        bad = str((r.get("bad") or {}).get("commit") or p.get("bad_sha") or p.get("bad") or "?")
        # a night lists its culprits under regressions only (its first_bad is null)
        found = [r.get("first_bad"), *(r.get("regressions") or [])]
        fb = next((f for f in found if isinstance(f, Mapping) and f.get("commit")), None)
        culprit = f"{str(fb.get('commit'))[:8]} {fb.get('subject') or ''}" if fb else "—"
        created = datetime.fromtimestamp(h.created_at, UTC).strftime("%Y-%m-%d %H:%M")
        # a night that compared with nothing (the first, or --accept) measured one revision
        span = _plain(bad[:8]) if good == "?" and h.kind == "nightly" else \
            f"{_plain(good[:8])}..{_plain(bad[:8])}"
        rows.append((_plain(h.id), created, _plain(h.kind), _plain(h.status),
                     _plain(metrics[0], 24), span, _plain(culprit, 48)))
    widths = [max(len(row[i]) for row in rows) for i in range(len(header) - 1)]
    out = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=False)) + "  " + row[-1]
           for row in rows]
    return "\n".join(line.rstrip() for line in out) + "\n"
