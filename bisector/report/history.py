"""The history plots' data: every tested commit in history order with its runs' values.

Pure: from the result dict and the hunt's runs it picks the runs made with the
hunt's own settings (pins only; attribution variants are left out), orders the
commits good first and bad last, and summarises each commit for each metric
(values one per seed, mean, and the 95% Student-t interval of its own runs once it
has MIN_SPREAD_RUNS of them). plot.py draws these.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from bisector.model import Run, canonical_json

from .format import date_key, obj


@dataclass(frozen=True)
class HistoryPoint:
    """One tested commit on the plot, at x = its place among the tested commits."""

    x: int
    label: str  # short sha
    kind: str  # good-end, bad-end, or the search's decision: good, bad, skip, ...
    values: tuple[float, ...]
    mean: float | None
    lo: float | None  # the 95% t-interval of its own runs: None below MIN_SPREAD_RUNS
    hi: float | None
    aside: tuple[float, ...] = ()  # runs the search set aside: in no mean or interval


@dataclass(frozen=True)
class MetricHistory:
    metric: str
    direction: str
    points: tuple[HistoryPoint, ...]
    culprit_x: int | None
    parent_x: int | None


# Below three runs a commit's t-interval says nothing a reader can use: at two runs
# t(0.975, 1 df) = 12.7, so two values 1.5 apart give [-2.9, 25.3] around a 1.5 step,
# which squeezed the history plot and sat beside P(bad) 0.9999 as if contradicting it.
MIN_SPREAD_RUNS = 3


def t_interval(values: Sequence[float]) -> tuple[float, float] | None:
    """95% Student-t interval of the mean; None with fewer than two values."""
    if len(values) < 2:
        return None
    from scipy.special import stdtrit

    m = math.fsum(values) / len(values)
    half = float(stdtrit(len(values) - 1, 0.975)) * statistics.stdev(values) / math.sqrt(
        len(values))
    return (m - half, m + half)


def spread_interval(values: Sequence[float]) -> tuple[float, float] | None:
    """The 95% t-interval of one commit's own runs, or None below MIN_SPREAD_RUNS values.

    It describes that commit's runs only: the search judges a commit from all runs,
    paired by seed with the endpoints, not from this interval.
    """
    return t_interval(values) if len(values) >= MIN_SPREAD_RUNS else None


def plain_run(run: Run, pins: Mapping[str, Any]) -> bool:
    """An OK run made with the hunt's own settings (pins only), not an attribution variant."""
    return run.ok and run.request.overrides_key == canonical_json(dict(pins))


def histories(result: Mapping[str, Any], params: Mapping[str, Any], runs: Sequence[Run],
              dates: Mapping[str, str], metric: str, metrics: Sequence[str]
              ) -> tuple[tuple[MetricHistory, ...], str]:
    """One MetricHistory per recorded metric (primary first), and how commits are ordered."""
    order, how = history_order(result, params, dates)
    if not order:
        return (), how
    pins = obj(result.get("pins", params.get("pins")))
    plain: dict[str, list[Run]] = {}
    for run in runs:
        if plain_run(run, pins):
            plain.setdefault(run.request.commit, []).append(run)
    kinds = {str(t.get("commit")): str(t.get("verdict") or "tested")
             for t in result.get("trail") or [] if isinstance(t, dict)}
    kinds[order[0]], kinds[order[-1]] = "good-end", "bad-end"
    fb = obj(result.get("first_bad"))
    aside: dict[str, set[Any]] = {}
    for a in result.get("set_aside") or []:
        if isinstance(a, dict):
            aside.setdefault(str(a.get("commit")), set()).add(a.get("seed"))
    x_of = {sha: i for i, sha in enumerate(order)}
    names = list(dict.fromkeys([metric, *metrics, *sorted(
        {k for rs in plain.values() for r in rs for k in r.metrics})]))
    out = []
    for name in names:
        points = tuple(_point(x_of[sha], sha, kinds.get(sha, "tested"), plain.get(sha, []), name,
                              aside.get(sha, set()))
                       for sha in order)
        if name != metric and not any(p.values for p in points):
            continue
        out.append(MetricHistory(
            metric=name, direction=str(result.get("direction") or "higher"), points=points,
            culprit_x=x_of.get(str(fb.get("commit"))), parent_x=x_of.get(str(fb.get("parent")))))
    return tuple(out), how


def _point(x: int, sha: str, kind: str, runs: Sequence[Run], metric: str,
           aside: set[Any]) -> HistoryPoint:
    seen: dict[int, float] = {}
    for r in runs:
        v = r.value(metric)
        if v is not None:
            seen.setdefault(r.request.seed, v)  # one value per seed: a retry is not new data
    values = tuple(seen[s] for s in sorted(seen) if s not in aside)
    ci = spread_interval(values)
    return HistoryPoint(x=x, label=sha[:7], kind=kind, values=values,
                        mean=math.fsum(values) / len(values) if values else None,
                        lo=ci[0] if ci else None, hi=ci[1] if ci else None,
                        aside=tuple(seen[s] for s in sorted(seen) if s in aside))


def history_order(result: Mapping[str, Any], params: Mapping[str, Any],
                  dates: Mapping[str, str]) -> tuple[list[str], str]:
    """Tested commits oldest first, and which order that is.

    By each commit's place in good..bad when the trail records it ("position"),
    else by commit date (git's order in a linear history); the good endpoint is
    first, the bad one last, and the culprit's parent just before the culprit.
    """
    good = str(obj(result.get("good")).get("commit") or params.get("good_sha") or "")
    bad = str(obj(result.get("bad")).get("commit") or params.get("bad_sha") or "")
    if not good or not bad:
        return [], ""
    trail = [t for t in result.get("trail") or [] if isinstance(t, dict)]
    middle = list(dict.fromkeys(str(t.get("commit")) for t in trail
                                if t.get("commit") not in (good, bad)))
    positions = {str(t.get("commit")): t.get("position") for t in trail}
    if middle and all(isinstance(positions.get(s), int) for s in middle):
        middle.sort(key=lambda s: int(positions[s] or 0))
        how = "history order"
    else:
        middle.sort(key=lambda s: date_key(dates.get(s, "")))  # stable: ties keep trail order
        how = "commit-date order"
    fb = obj(result.get("first_bad"))
    parent, culprit = str(fb.get("parent") or ""), str(fb.get("commit") or "")
    if parent and parent not in middle and parent not in (good, bad) and culprit in middle:
        middle.insert(middle.index(culprit), parent)
    return [good, *middle, bad], how
