"""Nightly words and pictures: the CI step summary, the history table and the history plot.

Pure functions of result dicts, except `history_plot`, which writes one image file.
Markdown escapes every untrusted string (report.markdown.md); the terminal table drops
control characters; the plot draws numbers, short hex shas and the metric's name (with
control characters dropped and `$` escaped, so matplotlib never reads it as mathtext).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bisector.summary import runs_phrase, verdict_sentence

from .format import finite, num, obj, signed
from .markdown import _plain, _sha, md, summary_markdown

_TITLES = {"baseline": "baseline recorded", "no-regression": "no regression",
           "regression": "regression found", "probe-failed": "the probe fails"}


def nightly_markdown(result: Mapping[str, Any]) -> str:
    """The night as Markdown: verdict, one row per metric, then each hunt's own summary."""
    status = str(result.get("status") or "error")
    rev = obj(result.get("revision"))
    lines = [f"### bisector nightly: {md(_TITLES.get(status, status))} at "
             f"{_sha(rev.get('commit'))} {md(rev.get('subject') or '')}", ""]
    checks = [c for c in result.get("checks") or [] if isinstance(c, Mapping)]
    if status == "probe-failed":
        lines += [f"**{md(result.get('error') or '')}**", ""]
        tail = str(result.get("output_tail") or "").rstrip()
        if tail:  # an indented code block: nothing inside it can close it or render as HTML
            lines += ["Probe output (tail):", ""]
            lines += ["    " + _plain(line) for line in tail.splitlines()[-40:]]
        return "\n".join(lines) + "\n"
    regressed = [c for c in checks if c.get("regressed")]
    for c in regressed or checks:
        lines.append(f"- **{md(_sentence(c))}**" if c.get("regressed") else f"- {md(_sentence(c))}")
    base = obj(result.get("baseline"))
    if base:
        source = {"store": "the last good night", "option": "--baseline"}.get(
            str(base.get("source")), str(base.get("source")))
        lines += ["", f"Baseline {_sha(base.get('commit'))} {md(base.get('subject') or '')} "
                      f"(from {md(source)}), revision {_sha(rev.get('commit'))}."]
    lines += ["", "| metric | baseline | revision | change | min effect | p (Holm) | result |",
              "|---|---|---|---|---|---|---|"]
    for c in checks:
        lines.append(f"| {md(c.get('metric'))} | {num(c.get('baseline_mean'))} "
                     f"| {num(c.get('mean'))} | {signed(c.get('effect'))} "
                     f"| {num(c.get('min_effect'))} | {_p(c.get('p_adjusted'))} "
                     f"| {_outcome(c)} |")
    if result.get("baseline_advanced"):
        lines += ["", f"{_sha(rev.get('commit'))} is now the baseline."]
    elif base.get("source") == "option":
        lines += ["", "A one-off comparison with --baseline: the series baseline is unchanged."]
    elif status == "regression":
        lines += ["", "The baseline stays where it was until a night passes."]
    for c in regressed:
        hunt = c.get("hunt")
        if isinstance(hunt, Mapping):
            lines += ["", summary_markdown(dict(hunt), hunt.get("report")).rstrip()]
    lines += ["", runs_phrase(num(result.get("probe_runs")), num(result.get("reused_runs"))) + "."]
    return "\n".join(lines) + "\n"


def metric_folder(metric: str, taken: set[str]) -> str:
    """The folder of a metric's hunt report under a night's --out: metric names are untrusted."""
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", metric).strip("._")[:64] or "metric"
    while slug in taken:
        slug += "_"
    taken.add(slug)
    return slug


def _sentence(check: Mapping[str, Any]) -> str:
    hunt = check.get("hunt")
    if check.get("regressed") and isinstance(hunt, Mapping) and hunt.get("status") == "found":
        return verdict_sentence(dict(hunt))
    return str(check.get("sentence") or "")


def _p(p: Any) -> str:
    v = finite(p)
    return "—" if v is None else f"{v:.2g}"


def _outcome(check: Mapping[str, Any]) -> str:
    if not check.get("regressed"):
        return "ok"
    fb = obj(obj(check.get("hunt")).get("first_bad"))
    if fb:
        return f"**regressed** at {_sha(fb.get('commit'))} {md(fb.get('subject') or '')}"
    return f"**regressed** ({md(obj(check.get('hunt')).get('status') or 'not hunted')})"


# --- `bisector history` ------------------------------------------------------------------


def history_text(history: Mapping[str, Any]) -> str:
    """The series as a table, change points marked, then what the detector found."""
    nights = [n for n in history.get("nights") or [] if isinstance(n, Mapping)]
    metric = _plain(history.get("metric"), 40)
    lines = [f"{metric} ({history.get('direction')} is better): {len(nights)} nights, probe "
             f"{_plain(history.get('probe'), 60)!r}"]
    header = ("NIGHT (UTC)", "COMMIT", "MEAN", "SD", "N", "STATUS", "")
    rows = [header]
    points = {p["index"]: p for p in history.get("change_points") or []}
    for i, n in enumerate(nights):
        mark = ""
        if i in points:
            p = points[i]
            mark = f"<- change: {p['before']:.4g} -> {p['after']:.4g} ({_worse(p)})"
        rows.append((_stamp(n.get("measured_at")), str(n.get("commit", ""))[:8],
                     num(n.get("mean")), num(n.get("sd")), str(n.get("n", "")),
                     _plain(n.get("status"), 16), mark))
    widths = [max(len(r[i]) for r in rows) for i in range(len(header) - 1)]
    for r in rows:
        lines.append(("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=False))
                      + "  " + r[-1]).rstrip())
    found = history.get("change_points") or []
    lines.append(f"{len(found)} change point{'s' * (len(found) != 1)} "
                 f"({history.get('method')}; noise sigma {num(history.get('noise'))}, "
                 f"penalty {num(history.get('penalty'))})")
    return "\n".join(lines) + "\n"


def _worse(point: Mapping[str, Any]) -> str:
    return f"{point['shift']:+.4g}, {'worse' if point.get('worse') else 'better'}"


def _stamp(ts: Any) -> str:
    v = finite(ts)
    return "—" if v is None else datetime.fromtimestamp(v, UTC).strftime("%Y-%m-%d %H:%M")


def history_plot(history: Mapping[str, Any], path: Path) -> Path:
    """The series with its segment means and change points, as .svg or .png at `path`."""
    import matplotlib
    from matplotlib.figure import Figure

    from .plot import _RC, BAD, GOOD, INK, SKIP

    fmt = path.suffix.lower().lstrip(".")
    if fmt not in ("svg", "png"):
        raise ValueError(f"cannot plot to {path}: use a .svg or .png file name")
    nights = [n for n in history.get("nights") or [] if isinstance(n, Mapping)]
    xs = list(range(len(nights)))
    means = [float(n["mean"]) for n in nights]
    with matplotlib.rc_context(_RC):  # type: ignore[arg-type]
        fig = Figure(figsize=(9.6, 3.4), dpi=100)
        ax = fig.add_axes((0.08, 0.25, 0.9, 0.68))
        sds = [float(n.get("sd") or 0.0) for n in nights]
        ax.errorbar(xs, means, yerr=sds, fmt="none", ecolor=SKIP, lw=0.8, zorder=2)
        colours = [BAD if n.get("status") == "regression" else INK for n in nights]
        ax.scatter(xs, means, s=18, color=colours, zorder=3)
        for (a, b), level in _segments(history, len(nights)):
            ax.plot([a - 0.4, b - 0.6], [level, level], color=GOOD, lw=1.6, zorder=4)
        for p in history.get("change_points") or []:
            ax.axvline(p["index"] - 0.5, color=BAD if p.get("worse") else GOOD, lw=1.1, ls="--")
        step = max(1, -(-len(nights) // 40))
        shown = xs[::step]
        ax.set_xticks(shown, [str(nights[i].get("commit", ""))[:7] for i in shown],
                      rotation=60, ha="right", rotation_mode="anchor", fontsize=7,
                      fontfamily="monospace")
        ax.set_xlim(-0.6, max(xs, default=0) + 0.6)
        # A standalone file, so the metric's name may appear; "$" would start mathtext.
        name = _plain(history.get("metric", ""), 60).replace("$", r"\$")
        ax.set_title(f"{name} ({history.get('direction')} is better), nightly means",
                     loc="left", fontsize=9, color=INK)
        ax.margins(y=0.12)
        ax.grid(axis="y", color="#d0d7de", lw=0.6)
        for side in ("top", "right"):
            ax.spines[side].set_visible(False)
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, format=fmt, metadata=_metadata(fmt))
    return path


def _segments(history: Mapping[str, Any], n: int) -> Sequence[tuple[tuple[int, int], float]]:
    """(start, end) of each segment with its mean, from the change points."""
    points = history.get("change_points") or []
    bounds = [0, *[int(p["index"]) for p in points], n]
    nights = history.get("nights") or []
    out = []
    for a, b in zip(bounds, bounds[1:], strict=False):
        if b > a:
            out.append(((a, b), sum(float(x["mean"]) for x in nights[a:b]) / (b - a)))
    return out


def _metadata(fmt: str) -> dict[str, Any]:
    return {"Date": None, "Creator": None} if fmt == "svg" else {"Software": None}
