"""History plots as static SVG, drawn with matplotlib's SVG backend at render time.

Owns the picture only: it reads a MetricHistory (numbers and short hex shas) and
returns an `<svg>` element ready to inline in the page. No untrusted text is
drawn (metric names and subjects go in the HTML, where they are escaped), the
output is byte-stable (fixed hash salt, no date, no creator stamp), and element
ids carry a per-plot prefix so several plots can share one page. No pyplot:
figures are built directly, so nothing global is touched.

The y-axis spans the plotted values (single runs and means), never the intervals:
a wide interval is cut at the axis and marked with an arrowhead, so the step between
the endpoints stays readable. Each interval is a group with the id
`<prefix>-interval-<sha7>`, a cut end `<prefix>-clipped-<sha7>-low|high`.
"""

from __future__ import annotations

import io
import re
from typing import Any

import matplotlib
from matplotlib.backends.backend_svg import FigureCanvasSVG
from matplotlib.figure import Figure
from matplotlib.transforms import blended_transform_factory

from .history import HistoryPoint, MetricHistory

GOOD, BAD, SKIP, INK, TESTED = "#1a7f37", "#cf222e", "#8c959f", "#24292f", "#6e7781"
_COLOURS = {"good-end": GOOD, "good": GOOD, "bad-end": BAD, "bad": BAD, "skip": SKIP}
_MAX_TICKS = 40
_PAD = 0.12  # room above and below the plotted values, as a share of their range

_RC: dict[str, Any] = {
    "svg.hashsalt": "bisector-report",
    "svg.fonttype": "none",  # text stays text: smaller, and selectable in the page
    "font.family": "sans-serif",
    "font.size": 9,
    "axes.edgecolor": "#8c959f",
    "axes.linewidth": 0.8,
    "xtick.color": "#57606a",
    "ytick.color": "#57606a",
}


def history_svg(history: MetricHistory, prefix: str) -> str:
    """The plot of one metric across the tested commits, as an inline `<svg>` string."""
    with matplotlib.rc_context(_RC):  # type: ignore[arg-type]
        fig = Figure(figsize=(9.6, 3.4), dpi=72)
        FigureCanvasSVG(fig)
        _draw(fig, history)
        buffer = io.StringIO()
        fig.savefig(buffer, format="svg", metadata={"Date": None, "Creator": None})
    return _inline(buffer.getvalue(), prefix)


def y_limits(h: MetricHistory) -> tuple[float, float]:
    """The y-axis: every plotted value and mean, with a little room above and below.

    Intervals are left out on purpose: one t-interval from few runs can be ten times
    the step and would squeeze the whole history into a thin band.
    """
    ys = [v for p in h.points for v in p.values]
    ys += [p.mean for p in h.points if p.mean is not None]
    if not ys:
        return (0.0, 1.0)
    lo, hi = min(ys), max(ys)
    span = hi - lo if hi > lo else abs(hi) * 0.1 or 1.0  # one value only: still a band
    return (lo - _PAD * span, hi + _PAD * span)


def _interval(ax: Any, x: float, label: str, lo: float, hi: float, bottom: float,
              top: float) -> None:
    """A 95% interval bar, cut to the axis; an arrowhead at a cut end says it goes on."""
    shown_lo, shown_hi = max(lo, bottom), min(hi, top)
    if shown_lo < shown_hi:
        ax.plot([x, x], [shown_lo, shown_hi], color=INK, lw=1.1, zorder=4,
                gid=f"interval-{label}")
    for y, end, cut in ((bottom, "low", lo < bottom), (top, "high", hi > top)):
        if cut:
            ax.plot([x], [y], marker="v" if end == "low" else "^", ms=5, color=INK, lw=0,
                    zorder=4, clip_on=False, gid=f"clipped-{label}-{end}")


def _draw(fig: Figure, h: MetricHistory) -> None:
    ax = fig.add_axes((0.07, 0.25, 0.9, 0.68))
    points = h.points
    bottom, top = y_limits(h)
    if h.culprit_x is not None:
        left = h.parent_x if h.parent_x is not None else h.culprit_x - 1
        ax.axvspan(left, h.culprit_x, color=BAD, alpha=0.08, lw=0)
        ax.axvline(h.culprit_x, color=BAD, lw=1.2, ls="--")
        ax.text(h.culprit_x, 1.0, " first bad", color=BAD, fontsize=8, va="top",
                transform=blended_transform_factory(ax.transData, ax.transAxes))
    for p in points:
        if p.kind in ("good-end", "bad-end") and p.mean is not None:
            ax.axhline(p.mean, color=GOOD if p.kind == "good-end" else BAD, lw=0.8, ls=":",
                       alpha=0.8)
    on_floor = blended_transform_factory(ax.transData, ax.transAxes)
    for p in points:
        colour = _COLOURS.get(p.kind, TESTED)
        n = len(p.values)
        _set_aside(ax, p, colour, bottom, top)
        if not n:
            ax.plot([p.x], [0.04], marker="x", color=SKIP, ms=7, mew=1.5, transform=on_floor)
            continue
        # side by side, within +-0.35 of the commit: 16 endpoint runs at 0.09 apart ran
        # past the plot's edge and into the next commit
        gap = min(0.09, 0.7 / max(n - 1, 1))
        xs = [p.x + gap * (i - (n - 1) / 2) for i in range(n)]
        ax.scatter(xs, p.values, s=14, color=colour, alpha=0.55, lw=0, zorder=3)
        if p.lo is not None and p.hi is not None and p.mean is not None:
            _interval(ax, p.x, p.label, p.lo, p.hi, bottom, top)
        if p.mean is not None:
            marker = "s" if p.kind.endswith("-end") else "D"
            ax.plot([p.x], [p.mean], marker=marker, ms=5.5, color=colour, mec=INK, mew=0.7,
                    zorder=5)
    _ticks(ax, h)
    ax.set_xlim(-0.6, max((p.x for p in points), default=0) + 0.6)
    ax.set_ylim(bottom, top)
    ax.grid(axis="y", color="#d0d7de", lw=0.6)
    ax.set_axisbelow(True)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)


def _set_aside(ax: Any, p: HistoryPoint, colour: str, bottom: float, top: float) -> None:
    """Runs the search set aside: hollow, beside the commit's own; one off the axis sits on
    its edge as a hollow arrowhead (a diverged run would squeeze the history flat)."""
    on_axes = blended_transform_factory(ax.transData, ax.transAxes)
    for k, v in enumerate(p.aside):
        x = p.x + 0.22 + 0.06 * k
        if bottom <= v <= top:
            ax.scatter([x], [v], s=22, facecolors="none", edgecolors=colour, lw=1.0, zorder=4)
        else:
            ax.plot([x], [0.02 if v < bottom else 0.98], marker="v" if v < bottom else "^",
                    ms=6, mfc="none", mec=colour, mew=1.0, transform=on_axes, zorder=4)


def _ticks(ax: object, h: MetricHistory) -> None:
    points = h.points
    keep = {points[0].x, points[-1].x, h.culprit_x, h.parent_x} if points else set()
    step = max(1, -(-len(points) // _MAX_TICKS))
    shown = [p for i, p in enumerate(points) if i % step == 0 or p.x in keep]
    labels = []
    for p in shown:
        tag = {"good-end": "good\n", "bad-end": "bad\n"}.get(p.kind, "")
        labels.append(tag + p.label)
    ax.set_xticks([p.x for p in shown], labels, rotation=60, ha="right",  # type: ignore[attr-defined]
                  rotation_mode="anchor", fontsize=7, fontfamily="monospace")


_ID = re.compile(r'\bid="([^"]+)"')
_REF = re.compile(r'(url\(#|href="#)([^")]+)')
_COMMENT = re.compile(r"<!--.*?-->", re.S)


def _inline(svg: str, prefix: str) -> str:
    """Drop the XML prologue and comments; prefix ids so plots on one page do not clash."""
    svg = svg[svg.index("<svg"):]
    svg = _COMMENT.sub("", svg)
    svg = _ID.sub(lambda m: f'id="{prefix}-{m.group(1)}"', svg)
    svg = _REF.sub(lambda m: f"{m.group(1)}{prefix}-{m.group(2)}", svg)
    svg = re.sub(r'<svg ([^>]*?)width="[^"]*" height="[^"]*"', r'<svg \1', svg, count=1)
    return svg.replace("<svg ", '<svg class="plot" role="img" ', 1).strip()
