"""The report under noise reads plainly: the History plot's y-axis, the Search trail's spread
column and the Metric field, on real CLI hunts (a user audit found all three misleading).

One noisy hunt: make_history, 21 commits, the score 2 lower from commit 12 on, noise sd 1,
independent per run; one job, so the engine's choices, and with them which commits get
two runs, are the same every time. One small deterministic hunt (tests/gitrepo) asks for
a metric its probe reports and one it never reports.

    c0 (good) .. c11  score 10 + noise
    c12 .. c20 (bad)  score  8 + noise   <- c12 is the culprit
"""

from __future__ import annotations

import html
import json
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

import pytest
from gitrepo import History, probe_cmd, run_cli

from bisector.store import Store

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
from make_history import build  # noqa: E402


@dataclass(frozen=True)
class Hunted:
    result: dict[str, object]
    page: str
    values: dict[str, list[float]]  # sha -> the plotted values there, one per seed


@pytest.fixture(scope="module")
def noisy(tmp_path_factory: pytest.TempPathFactory) -> Hunted:
    tmp = tmp_path_factory.mktemp("noisy")
    built = build(tmp / "repo", 21, 12, effect=2.0, noise=1.0, salt=5)
    proc = run_cli("find", "--repo", str(built.path), "--good", built.shas[0],
                   "--metric", "score", "--metric", "nosuch", "--direction", "higher",
                   "--probe", f"{sys.executable} probe.py", "--no-attribute", "--jobs", "1",
                   "--store", str(tmp / "s.sqlite"), "--out", str(tmp / "rep"), "--json",
                   cwd=tmp)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    by_seed: dict[str, dict[int, float]] = {}
    with Store(tmp / "s.sqlite") as store:
        for _, run in store.hunt_runs(str(result["hunt_id"])):
            value = run.value("score")
            if run.ok and value is not None:
                by_seed.setdefault(run.request.commit, {}).setdefault(run.request.seed, value)
    values = {sha: [seen[s] for s in sorted(seen)] for sha, seen in by_seed.items()}
    counts = [len(t["values"]) for t in result["trail"]]
    # What the checks below need from the hunt (true of this seeded history at one job).
    assert 2 in counts and max(counts) >= 3, counts
    return Hunted(result, (tmp / "rep" / "index.html").read_text(encoding="utf-8"), values)


# --- reading the page ------------------------------------------------------------------------


def first_svg(page: str) -> str:
    return page[page.index("<svg"):page.index("</svg>")]


def frame_px(svg: str) -> tuple[float, float]:
    """The pixel rows of the plot area's bottom and top (SVG y grows downwards)."""
    frame = re.search(r'<g id="plot0-patch_2">\s*<path d="M [\d.]+ ([\d.]+)\s+L [\d.]+ [\d.]+'
                      r'\s+L [\d.]+ ([\d.]+)', svg)
    assert frame, "no axes background in the plot"
    return float(frame.group(1)), float(frame.group(2))


def y_axis(svg: str) -> tuple[float, float]:
    """The plot's y-range in metric units: two tick labels map pixels to values."""
    bottom_px, top_px = frame_px(svg)
    axis = svg[svg.index('id="plot0-matplotlib.axis_2"'):]
    ticks = [(float(px), float(text.replace("\u2212", "-"))) for px, text in re.findall(
        r'<g id="plot0-ytick_\d+">.*?<use [^>]*?y="([\d.]+)".*?<text[^>]*>([^<]*)</text>',
        axis, re.S)]
    assert len(ticks) >= 2, ticks
    (p1, v1), (p2, v2) = ticks[0], ticks[-1]
    per_px = (v2 - v1) / (p2 - p1)
    return v1 + (bottom_px - p1) * per_px, v1 + (top_px - p1) * per_px


class Tables(HTMLParser):
    """Every `table.trail` on the page as rows of cell texts, the header row first."""

    def __init__(self, page: str) -> None:
        super().__init__()
        self.tables: list[list[list[str]]] = []
        self._cell: list[str] | None = None
        self._in = False
        self.feed(page)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "table":
            self._in = "trail" in (dict(attrs).get("class") or "").split()
            if self._in:
                self.tables.append([])
        elif self._in and tag == "tr":
            self.tables[-1].append([])
        elif self._in and tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag == "table":
            self._in = False
        elif self._in and tag in ("td", "th") and self._cell is not None:
            self.tables[-1][-1].append(" ".join("".join(self._cell).split()))
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def trail_cells(page: str) -> tuple[str, list[tuple[int, str]]]:
    """The trail's column after "mean": its header, and (row number, cell) for every row."""
    tables = Tables(page).tables
    assert tables, "no search trail table"
    header = tables[0][0]
    column = header.index("mean") + 1
    rows = [(int(row[0]), row[column]) for table in tables for row in table[1:]]
    return header[column], rows


def metric_field(page: str) -> str:
    found = re.search(r"<dt>Metric</dt><dd>(.*?)</dd>", page, re.S)
    assert found, "no Metric field"
    return html.unescape(found.group(1))


def num(x: float) -> str:
    return f"{x:.4g}"


# --- the checks ------------------------------------------------------------------------------


def test_history_axis_spans_the_values_and_shows_the_step(noisy: Hunted) -> None:
    lo, hi = y_axis(first_svg(noisy.page))
    plotted = [v for vs in noisy.values.values() for v in vs]
    low, high = min(plotted), max(plotted)
    assert lo <= low and high <= hi  # every run is on the plot
    # The axis is the values' range with a little room, not a 2-run t-interval's 15-fold.
    assert hi - lo <= 1.5 * (high - low), (lo, hi, low, high)
    good, bad = (noisy.result[k] for k in ("good", "bad"))
    assert isinstance(good, dict) and isinstance(bad, dict)
    assert (good["mean"] - bad["mean"]) / (hi - lo) >= 0.1  # the step is plain to see


def test_history_bars_only_from_three_runs_and_cut_at_the_axis(noisy: Hunted) -> None:
    svg = first_svg(noisy.page)
    lo_px, hi_px = frame_px(svg)
    bars = dict(re.findall(r'<g id="plot0-interval-([0-9a-f]{7})">\s*<path d="([^"]*)"', svg))
    cut = set(re.findall(r'<g id="plot0-clipped-([0-9a-f]{7})-(?:low|high)">', svg))
    by_label = {sha[:7]: vs for sha, vs in noisy.values.items()}
    wide = {label for label, vs in by_label.items() if len(vs) >= 3}
    assert set(bars) | cut == wide  # a bar (or its cut ends) exactly where there are 3 runs
    assert any(len(vs) == 2 for vs in by_label.values())  # and two runs were not enough
    for path in bars.values():
        ys = [float(y) for y in re.findall(r"[ML] [\d.]+ ([\d.]+)", path)]
        assert ys and all(hi_px - 0.01 <= y <= lo_px + 0.01 for y in ys), (path, lo_px, hi_px)
    caption = html.unescape(noisy.page)
    assert "drawn only where it has 3 runs or more" in caption
    assert "cut at its edge" in caption


def test_trail_gives_values_below_three_runs_and_a_labelled_spread_from_three(
        noisy: Hunted) -> None:
    label, cells = trail_cells(noisy.page)
    trail = noisy.result["trail"]
    assert isinstance(trail, list) and len(cells) == len(trail)
    for number, cell in cells:
        step = trail[number - 1]
        values: Sequence[float] = step["values"]
        if len(values) >= 3:
            found = re.fullmatch(r"\[(\S+), (\S+)\]", cell)
            assert found, (number, cell)
            assert float(found.group(1)) < step["mean"] < float(found.group(2))
        else:
            assert "[" not in cell, (number, cell)  # no interval from one or two runs
            assert cell == (", ".join(num(v) for v in values) if len(values) == 2 else "—")
    assert label == "spread of its runs"
    note = html.unescape(noisy.page)
    assert "They are not what decides: the decision and P(bad) compare" in note


def test_metric_field_names_a_metric_never_reported_apart(noisy: Hunted,
                                                          tmp_path: Path) -> None:
    assert metric_field(noisy.page) == "score (asked for but never reported: nosuch)"
    # A probe that reports ssim and mae: mae is recorded, nosuch is not.
    h = History(tmp_path / "repo")
    shas = h.linear([0.9] * 4 + [0.5] * 4)
    proc = run_cli("find", "--repo", str(h.path), "--good", shas[0], "--metric", "ssim",
                   "--metric", "mae", "--metric", "nosuch", "--probe", probe_cmd(),
                   "--no-attribute", "--out", str(tmp_path / "rep"))
    assert proc.returncode == 0, proc.stderr
    page = (tmp_path / "rep" / "index.html").read_text(encoding="utf-8")
    assert metric_field(page) == "ssim (also recorded: mae; asked for but never reported: nosuch)"
