"""`bisector demo`: build the demo repository and hunt its regression, twice.

First `find` on ssim_amp as the history is (it should name the propagation
commit and blame object_big), then again with `--pin object_big=false` (it
should find no regression). Both reports go under the output folder, next to a
store that a second invocation reuses: the demo's commit shas are the same on
every build, so stored runs match.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bisector.demo.build import DemoRepo, build_demo_repo
from bisector.model import Direction
from bisector.settings import FindSettings


@dataclass(frozen=True)
class DemoOutcome:
    demo: DemoRepo
    plain: dict[str, Any]  # the hunt as the history is
    pinned: dict[str, Any]  # the hunt with object_big held false
    problems: tuple[str, ...]  # where the story did not come out as it should

    @property
    def ok(self) -> bool:
        return not self.problems


def run_demo(out: Path, *, keep_repo: Path | None = None, jobs: int = 2,
             progress: Callable[[str], None] = lambda _m: None) -> DemoOutcome:
    from bisector.session import FindSession

    out.mkdir(parents=True, exist_ok=True)
    workdir = None
    if keep_repo is None:
        workdir = Path(tempfile.mkdtemp(prefix="bisector-demo-"))
        repo_path = workdir / "ptycho-demo"
    else:
        repo_path = keep_repo
    try:
        progress(f"building the demo repository in {repo_path}")
        demo = build_demo_repo(repo_path)

        def settings(pins: dict[str, Any], name: str) -> FindSettings:
            return FindSettings(
                repo=demo.path, good=demo.good, bad=demo.bad, metrics=demo.metrics,
                direction=Direction.HIGHER, probe=demo.probe_command, pins=pins,
                min_effect=0.02, jobs=jobs, timeout=120, out=out / name,
                store=out / "store.sqlite")

        progress("hunt 1: ssim_amp as the history is")
        plain = FindSession(settings({}, "find"), progress).run()
        progress("hunt 2: the same range with --pin object_big=false")
        pinned = FindSession(settings({"object_big": False}, "find-pinned"), progress).run()
    finally:
        if workdir is not None:
            shutil.rmtree(workdir, ignore_errors=True)
    if workdir is not None:  # the reports' reproduce commands name the deleted repository
        progress(f"the demo repository was temporary and is deleted: `bisector demo "
                 f"--keep-repo DIR` keeps one for the reports' commands; `bisector report "
                 f"latest --store {out / 'store.sqlite'}` renders a report again")
    return DemoOutcome(demo, plain, pinned, _check(demo, plain, pinned))


def _check(demo: DemoRepo, plain: dict[str, Any], pinned: dict[str, Any]) -> tuple[str, ...]:
    """The story the demo tells; anything else is reported, not hidden."""
    problems = []
    found = (plain.get("first_bad") or {}).get("commit")
    if found != demo.culprit:
        problems.append(f"expected the culprit {demo.culprit[:8]}, the hunt said {found}")
    deltas = {d["key"]: d for d in (plain.get("attribution") or {}).get("deltas", [])}
    if not deltas.get("object_big", {}).get("significant"):
        problems.append("object_big was not found to matter")
    for key in ("probe_big", "pad_object"):
        if deltas.get(key, {}).get("significant"):
            problems.append(f"{key} was found to matter, but it does nothing here")
    if pinned.get("status") != "no-regression":
        problems.append(f"with object_big pinned the status is {pinned.get('status')}, "
                        "expected no-regression")
    return tuple(problems)
