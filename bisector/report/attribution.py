"""The attribution part of the view model: deltas, interactions, code effect, factorial table.

Pure, like view.py: it turns SPEC section 5's `attribution` object into rows of
text and bar geometry (percent positions on one symmetric scale shared by every
bar, so bars compare by eye). Every key is optional; strings stay untrusted.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from bisector.model import Direction

from .format import (
    DASH,
    delta_value,
    finite,
    interval,
    num,
    obj,
    pair,
    share_text,
    signed,
    value_text,
)


@dataclass(frozen=True)
class Bar:
    """An effect drawn from zero (at 50%) with its interval as a whisker, in percent."""

    left: float
    width: float
    lo: float | None
    hi: float | None
    worse: bool


@dataclass(frozen=True)
class EffectRow:
    label: str  # a config key, "a × b" for an interaction, or "code"
    good: str
    bad: str
    effect: str
    interval: str
    share: str
    significant: bool | None
    controllable: bool | None
    bar: Bar | None
    run_ids: tuple[int, ...]
    note: str = ""  # for a key that interacts: with whom, and its effect moved alone
    # the significant column in words: "yes", "no", "not measured (not controllable)", ...
    judged: str = ""


@dataclass(frozen=True)
class FactorialRow:
    code: str  # whose code the cell ran: "good 1a2b3c4d" or "bad 5e6f7a8b"
    values: tuple[str, ...]
    mean: str
    n: str
    run_ids: tuple[int, ...]


@dataclass(frozen=True)
class AttributionView:
    verdict: str
    sentence: str
    code: EffectRow | None
    deltas: tuple[EffectRow, ...]
    interactions: tuple[EffectRow, ...]
    table_keys: tuple[str, ...]
    table: tuple[FactorialRow, ...]
    notes: tuple[str, ...] = ()  # what the attribution could not measure, and why
    min_effect: str = ""  # the threshold the findings were judged against; "" when unknown
    advice: str = ""  # the pins to rerun find with, when keys matter


def _run_ids(d: Mapping[str, Any]) -> tuple[int, ...]:
    return tuple(int(r) for r in d.get("run_ids") or []
                 if isinstance(r, int) and not isinstance(r, bool))


def _scale(items: Sequence[Mapping[str, Any]], raw: Mapping[str, Any]) -> float:
    """Half-width of the shared bar scale: the largest |effect| or interval end."""
    ends: list[Any] = [raw.get("code_effect"), *(pair(raw.get("code_ci")) or ())]
    for d in items:
        ends += [d.get("effect"), *(pair(d.get("ci")) or ())]
    values = [abs(v) for v in (finite(e) for e in ends) if v is not None]
    return max(values, default=0.0) or 1.0


def _bar(effect: Any, ci: Any, scale: float, direction: Direction) -> Bar | None:
    e = finite(effect)
    if e is None:
        return None

    def at(v: float) -> float:
        return round(50 + 50 * v / scale, 2)

    c = pair(ci)
    return Bar(left=at(min(e, 0.0)), width=round(50 * abs(e) / scale, 2),
               lo=at(c[0]) if c else None, hi=at(c[1]) if c else None,
               worse=direction.worse(0.0, e) > 0)


def _flag(value: Any) -> bool | None:
    return value if isinstance(value, bool) else None


def _judged(d: Mapping[str, Any]) -> str:
    """The significant column of a delta row, in words.

    A key that was never measured is neither significant nor not: "no" would read
    as "tested, no effect".
    """
    finding = d.get("finding")
    if d.get("controllable") is False or finding == "not controllable":
        return "not measured (not controllable)"
    if finding == "not measured":
        return "not measured"
    if finding == "below the min effect":
        return "no (real, but below the min effect)"
    if finding == "unclear":  # "no" would read as "tested, no effect"
        return "unclear (the interval is too wide to tell)"
    significant = _flag(d.get("significant"))
    return "" if significant is None else "yes" if significant else "no"


def attribution_view(raw: Any, direction: Direction) -> AttributionView | None:
    if not isinstance(raw, dict):
        return None
    deltas = [d for d in raw.get("deltas") or [] if isinstance(d, dict)]
    inters = [d for d in raw.get("interactions") or [] if isinstance(d, dict)]
    scale = _scale(deltas + inters, raw)
    code = None
    if finite(raw.get("code_effect")) is not None:
        code = EffectRow("code", "", "", signed(raw["code_effect"]),
                         interval(raw.get("code_ci"), sign=True), "", None, None,
                         _bar(raw["code_effect"], raw.get("code_ci"), scale, direction), ())
    rows = tuple(EffectRow(
        label=value_text(d.get("key", "?")), good=delta_value(d, "good"),
        bad=delta_value(d, "bad"), effect=signed(d.get("effect")),
        interval=interval(d.get("ci"), sign=True), share=share_text(d.get("share")),
        significant=_flag(d.get("significant")), controllable=_flag(d.get("controllable")),
        bar=_bar(d.get("effect"), d.get("ci"), scale, direction), run_ids=_run_ids(d),
        note=_together(d), judged=_judged(d))
        for d in deltas)
    interactions = tuple(EffectRow(
        label=" × ".join(value_text(k) for k in d.get("keys") or []), good="", bad="",
        effect=signed(d.get("effect")), interval=interval(d.get("ci"), sign=True), share="",
        significant=_flag(d.get("significant")), controllable=None,
        bar=_bar(d.get("effect"), d.get("ci"), scale, direction), run_ids=_run_ids(d),
        judged="yes" if d.get("significant") is True else "")
        for d in inters)
    keys, table = _factorial(raw.get("table") or raw.get("factorial"), [r.label for r in rows])
    return AttributionView(verdict=str(raw.get("verdict") or DASH),
                           sentence=str(raw.get("sentence") or ""), code=code, deltas=rows,
                           interactions=interactions, table_keys=keys, table=table,
                           notes=tuple(str(n) for n in raw.get("notes") or [] if n),
                           min_effect="" if finite(raw.get("min_effect")) is None
                           else num(raw.get("min_effect")),
                           advice=str(raw.get("pin_advice") or ""))


def _together(d: Mapping[str, Any]) -> str:
    """'only together with pad_object; alone -0.2 (...); the effect shown is its main effect'.

    A key that interacts has a main effect (the `effect` column, averaged over the other
    keys' values) that can differ from what it does moved alone; the row says both.
    """
    partners = [value_text(k) for k in d.get("interacts_with") or []]
    if not partners:
        return ""
    head = ("only together with " if d.get("finding") == "matters only together"
            else "acts together with ") + ", ".join(partners)
    alone = signed(d.get("alone_effect"))
    if finite(d.get("alone_effect")) is None:
        alone = "not measured"
    else:
        alone += f", 95% interval {interval(d.get('alone_ci'), sign=True)}"
    return (f"{head}; moved alone {alone}; the effect shown is its main effect, averaged "
            "over the other keys' values")


def _factorial(raw: Any, delta_keys: list[str]) -> tuple[tuple[str, ...], tuple[FactorialRow, ...]]:
    """Columns (delta keys first, then any other key a row sets) and one row per config."""
    rows = [r for r in raw if isinstance(r, dict)] if isinstance(raw, list) else []
    seen = [str(k) for r in rows for k in obj(r.get("config"))]
    keys = tuple(dict.fromkeys([k for k in delta_keys if k in seen] + sorted(set(seen))))
    table = []
    for r in rows:
        config = {str(k): v for k, v in obj(r.get("config")).items()}
        code = " ".join(str(x) for x in (r.get("code"), str(r.get("commit") or "")[:8]) if x)
        table.append(FactorialRow(
            code=code or DASH,
            values=tuple(value_text(config[k]) if k in config else DASH for k in keys),
            mean=num(r.get("mean")), n=str(r.get("n", DASH)), run_ids=_run_ids(r)))
    return keys, tuple(table)
