"""`bisector report ID` for a nightly hunt: the night's page, and each metric's hunt page.

A night is stored as a hunt of kind "nightly" whose result holds one check per metric;
a regressed metric's check holds the `find` hunt the night ran (its own stored hunt).
The find view would read the night as a hunt and say false things (no culprit, no
attribution, an error verdict), so a night gets its own page: the verdict, the
baseline, one row per metric, and a link to each metric's hunt, which is re-rendered
with the find view into `<out>/<metric>/index.html`, the layout `nightly --out` writes.
Reads only the store; writes only under the report folder; output is deterministic.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bisector.summary import runs_phrase, verdict_sentence

from .format import DASH, finite, num, obj, signed, when
from .nightly import metric_folder

if TYPE_CHECKING:
    from jinja2 import Environment

    from bisector.store import Hunt, Store

TITLES = {"baseline": "baseline recorded", "no-regression": "no regression",
          "regression": "regression found", "probe-failed": "the probe fails",
          "error": "the night stopped with an error", "interrupted": "the night was interrupted",
          "running": "the night is still running (or was killed)"}

RenderFind = Callable[["Store", str, Path], Path]


def rebased(result: Mapping[str, Any], out_dir: Path) -> dict[str, Any]:
    """A copy of a night's result whose report paths point into `out_dir`."""
    night = copy.deepcopy(dict(result))
    taken: set[str] = set()
    for check in night.get("checks") or []:
        hunt = check.get("hunt") if isinstance(check, dict) else None
        if isinstance(hunt, dict):
            folder = metric_folder(str(check.get("metric")), taken)
            hunt["report"] = str(out_dir / folder / "index.html")
    night["report"] = str(out_dir / "index.html")
    return night


def render_nightly(store: Store, hunt: Hunt, out_dir: Path, env: Environment,
                   render_find: RenderFind) -> Path:
    """Write out_dir/index.html for a night, and out_dir/<metric>/ for each hunt it ran."""
    out_dir.mkdir(parents=True, exist_ok=True)
    result = hunt.result or {}
    night = rebased(result, out_dir)
    rows = []
    for check in night.get("checks") or []:
        if not isinstance(check, dict):
            continue
        sub = obj(check.get("hunt"))
        link, note = None, ""
        if sub:
            folder = Path(str(sub["report"])).parent.name  # where `rebased` put its page
            sub_id = str(sub.get("hunt_id") or "")
            if sub_id and _stored(store, sub_id):
                render_find(store, sub_id, out_dir / folder)
                link = f"{folder}/index.html"
            elif sub.get("status") == "error":
                note = f"the hunt stopped with an error: {sub.get('error') or DASH}"
            else:
                note = "its hunt is not in this store"
        rows.append(_row(check, link, note))
    status = str(night.get("status") or hunt.status)
    # a night that stopped early stored only its status: its revision is in the params
    rev = obj(night.get("revision")) or {"commit": (hunt.params or {}).get("rev_sha")}
    base = obj(night.get("baseline"))
    view = {
        "title": f"bisector nightly: {TITLES.get(status, status)} at {_short(rev.get('commit'))}",
        "status": status, "label": TITLES.get(status, status), "hunt_id": hunt.id,
        "created": when(hunt.created_at), "revision": _commit(rev), "baseline": _commit(base),
        "baseline_source": {"store": "the last good night of the series",
                            "option": "--baseline (a one-off comparison; the series "
                                      "baseline is unchanged)"}.get(
            str(base.get("source")), str(base.get("source") or "")),
        "sentences": _sentences(night, status),
        "rows": rows, "error": str(night.get("error") or ""),
        "output_tail": str(night.get("output_tail") or "").rstrip(),
        "advanced": bool(night.get("baseline_advanced")),
        "runs": "" if finite(night.get("probe_runs")) is None else
        runs_phrase(num(night.get("probe_runs")), num(night.get("reused_runs"))),
        "series": str(night.get("series") or ""),
    }
    from . import write_page

    return write_page(out_dir, env.get_template("nightly.html").render(view=view))


def _stored(store: Store, hunt_id: str) -> bool:
    from bisector.errors import BisectorError

    try:
        store.hunt(hunt_id)
    except BisectorError:
        return False
    return True


def _sentences(night: Mapping[str, Any], status: str) -> list[str]:
    """What the night found: each regression's verdict, else every metric's sentence."""
    if status in ("error", "interrupted", "running"):
        return [f"The night ended with status {status!r}: it stored no comparison."]
    checks = [c for c in night.get("checks") or [] if isinstance(c, Mapping)]
    if status == "probe-failed":
        return [str(night.get("error") or "the probe failed")]
    regressed = [c for c in checks if c.get("regressed")]
    out = []
    for c in regressed or checks:
        hunt = obj(c.get("hunt"))
        if c.get("regressed") and hunt.get("status") == "found":
            out.append(verdict_sentence(hunt))
        else:
            out.append(str(c.get("sentence") or ""))
    return out


def _row(check: Mapping[str, Any], link: str | None, note: str) -> dict[str, Any]:
    hunt = obj(check.get("hunt"))
    fb = obj(hunt.get("first_bad"))
    if not check.get("regressed"):
        outcome = "error" if check.get("error") else "ok"
    elif fb:
        outcome = f"regressed at {_short(fb.get('commit'))} {fb.get('subject') or ''}".rstrip()
    else:
        outcome = f"regressed ({hunt.get('status') or 'not hunted'})"
    p = finite(check.get("p_adjusted"))
    return {"metric": str(check.get("metric") or ""),
            "direction": str(check.get("direction") or ""),
            "baseline": num(check.get("baseline_mean")), "revision": num(check.get("mean")),
            "change": signed(check.get("effect")), "min_effect": num(check.get("min_effect")),
            "p": DASH if p is None else f"{p:.2g}", "n": num(check.get("n")),
            "regressed": bool(check.get("regressed")), "outcome": outcome,
            "link": link, "note": note}


def _commit(c: Mapping[str, Any]) -> dict[str, str] | None:
    if not c:
        return None
    return {"sha": _short(c.get("commit")), "full": str(c.get("commit") or ""),
            "subject": str(c.get("subject") or ""), "author": str(c.get("author") or ""),
            "date": str(c.get("date") or "")}


def _short(sha: Any) -> str:
    return str(sha or "")[:8] or DASH
