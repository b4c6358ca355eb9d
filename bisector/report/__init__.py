"""The HTML report of a stored hunt, its Markdown summary, and the table of stored hunts.

Reads only the store (a report re-rendered later, with no probe run, is the same
page), copies the probe's artifacts next to the page, and writes one
self-contained `index.html`: inline CSS and SVG, no script, no network fetch,
readable from file://. The only module that imports jinja2; autoescaping is on
for everything, and the plots are the one piece of markup inserted as is.
Output is deterministic: the same store gives byte-identical HTML.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import TYPE_CHECKING

from jinja2 import Environment, PackageLoader, StrictUndefined
from markupsafe import Markup

from .artifacts import copy_artifacts
from .markdown import hunts_text, summary_markdown
from .plot import history_svg
from .view import ReportView, build_view

if TYPE_CHECKING:  # the store is passed in; this adapter does not build one
    from bisector.store import Store

__all__ = ["render_report", "render_html", "hunt_summary", "hunts_table", "summary_markdown",
           "preload"]


@functools.cache  # one per process: compiling the page template is a tenth of a second
def _environment() -> Environment:
    return Environment(
        loader=PackageLoader("bisector.report", "templates"),
        autoescape=True,  # every template, whatever its name
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def preload() -> None:
    """Compile the page template now (this module's imports are done by importing it)."""
    _environment().get_template("report.html")


def render_html(view: ReportView) -> str:
    """The page for a view model (no files touched)."""
    plots = [Markup(history_svg(h, prefix=f"plot{i}")) for i, h in enumerate(view.histories)]
    return _environment().get_template("report.html").render(view=view, plots=plots)


def render_report(store: Store, hunt_id: str, out_dir: Path) -> Path:
    """Write out_dir/index.html (and out_dir/artifacts/) for a stored hunt; return the page."""
    hunt = store.hunt(hunt_id)
    out_dir = Path(out_dir)
    if hunt.kind == "nightly":  # a night has its own page, linking the hunts it ran
        from .nightly_page import render_nightly

        return render_nightly(store, hunt, out_dir, _environment(), render_report)
    linked = store.hunt_runs(hunt.id)
    out_dir.mkdir(parents=True, exist_ok=True)
    # Probes write into <store folder>/artifacts (see measure.py and oneshot.py).
    artifacts = copy_artifacts([run for _, run in linked], out_dir,
                               allowed_root=store.path.parent / "artifacts")
    return write_page(out_dir, render_html(build_view(hunt, linked, artifacts)))


def write_page(out_dir: Path, page: str) -> Path:
    """out_dir/index.html, replaced whole: a reader never sees half a page."""
    index = out_dir / "index.html"
    partial = out_dir / f".index.html.{os.getpid()}.partial"
    try:
        partial.write_text(page, encoding="utf-8")
        os.replace(partial, index)
    finally:
        partial.unlink(missing_ok=True)
    return index


def hunt_summary(store: Store, hunt_id: str, page: Path) -> str:
    """The Markdown summary of a stored hunt whose page `render_report` wrote at `page`."""
    hunt = store.hunt(hunt_id)
    if hunt.kind == "nightly":
        from .nightly import nightly_markdown
        from .nightly_page import rebased

        return nightly_markdown(rebased(hunt.result or {}, page.parent))
    return summary_markdown(hunt.result or {}, str(page))


def hunts_table(store: Store, limit: int = 50) -> str:
    """Plain-text table of stored hunts, newest first, for `bisector runs`."""
    return hunts_text(store.hunts(limit=limit))
