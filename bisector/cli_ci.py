"""CI commands: `bisector nightly`, `bisector history`, `bisector store export|import`.

Importing this module registers them on `bisector.cli.app` (cli.py imports it last).
Typer only, like cli.py: parse, merge the config file, call one library function,
print, and let `cli._guarded` map errors to exit codes. nightly exits 0 when nothing
regressed (the revision becomes the baseline), 1 when a metric regressed, 2 on a usage
error, 4 when the probe fails at the revision (or the baseline), 130 after Ctrl-C.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from .cli import _err, _guarded, _pick, app
from .errors import UsageError
from .settings import load_config_file, parse_pins, resolve_direction

NIGHTLY_EXIT = {"baseline": 0, "no-regression": 0, "regression": 1}

store_app = typer.Typer(no_args_is_help=True,
                        help="Move the run store between machines as one file.")
app.add_typer(store_app, name="store")

T = TypeVar("T")


@app.command()
def nightly(
    metric: Annotated[list[str] | None, typer.Option(
        help="Metric to watch; repeatable. The first one leads the summary.")] = None,
    probe: Annotated[str | None, typer.Option(help="Probe command line.")] = None,
    rev: Annotated[str, typer.Option(help="Revision to measure.")] = "HEAD",
    baseline: Annotated[str | None, typer.Option(
        help="Compare with this revision instead of the stored last good one "
             "(one-off: the series baseline is unchanged).")] = None,
    accept: Annotated[bool, typer.Option(
        "--accept", help="Make --rev the series baseline without comparing (a change the "
                         "team accepts); later nights compare with it.")] = False,
    repo: Annotated[Path | None, typer.Option(help="Repository (default: .).")] = None,
    direction: Annotated[list[str] | None, typer.Option(
        help="higher|lower, or NAME=higher|lower per metric (inferred for common names).")
                         ] = None,
    pin: Annotated[list[str] | None, typer.Option(
        help="KEY=VALUE held fixed at every commit; repeatable.")] = None,
    min_effect: Annotated[list[str] | None, typer.Option(
        help="Smallest change that counts, X for every metric or NAME=X; repeatable.")] = None,
    confidence: Annotated[float | None, typer.Option(
        help="1 - alpha of the Holm-corrected test across metrics (default: 0.99).")] = None,
    repeats: Annotated[int | None, typer.Option(
        help="Seeds per commit when the probe is noisy (default: 3).")] = None,
    jobs: Annotated[int | None, typer.Option(help="Probe runs in parallel.")] = None,
    timeout: Annotated[float | None, typer.Option(help="Seconds allowed per probe run.")] = None,
    out: Annotated[Path | None, typer.Option(
        help="Report folder (default: reports/<night id>/, written on a regression).")] = None,
    store: Annotated[Path | None, typer.Option(
        help="Store file, e.g. where a CI cache keeps it (default: in .git).")] = None,
    summary_md: Annotated[Path | None, typer.Option(
        help="Write the Markdown summary here (e.g. $GITHUB_STEP_SUMMARY).")] = None,
    junit: Annotated[Path | None, typer.Option(
        help="Write a JUnit XML file here: one test case per metric.")] = None,
    json_out: Annotated[bool, typer.Option(
        "--json", help="Print the night's result object on stdout, nothing else.")] = False,
    no_attribute: Annotated[bool, typer.Option(
        "--no-attribute", help="Hunt the culprit but do not attribute it.")] = False,
    first_parent: Annotated[bool, typer.Option(
        "--first-parent", help="Follow only the first parent of merges.")] = False,
    config: Annotated[Path | None, typer.Option(help="Config file (TOML).")] = None,
) -> None:
    """CI mode: measure a revision, compare with the last good baseline, hunt what regressed."""

    def body() -> int:
        from .nightly import NightlySession, NightlySettings

        if accept and baseline:
            raise UsageError("--accept and --baseline exclude each other: --accept makes "
                             "--rev the baseline, with nothing to compare")
        cfg = load_config_file(config, Path.cwd())
        metrics = _pick(metric, cfg, "metric") or cfg.get("metrics")
        metrics = [metrics] if isinstance(metrics, str) else list(metrics or [])
        if not metrics:
            raise UsageError("--metric NAME is required: the metrics the probe reports")
        if len(set(metrics)) != len(metrics):
            raise UsageError("a --metric is given twice: name each metric once")
        command = _pick(probe, cfg, "probe")
        if not command:
            raise UsageError("--probe CMD is required: the command that measures the metrics")
        pins_cfg = cfg.get("pin") or cfg.get("pins") or {}
        pins = dict(pins_cfg) if isinstance(pins_cfg, dict) else parse_pins(list(pins_cfg))
        pins.update(parse_pins(pin or []))
        given_dirs = _per_metric(direction or _as_list(cfg.get("direction")), metrics,
                                 "--direction", str)
        effects = _per_metric(min_effect or _as_list(cfg.get("min_effect")), metrics,
                              "--min-effect", float)
        if any(v < 0 for v in effects.values()):
            raise UsageError("--min-effect must be zero or positive (metric units)")
        conf = float(_pick(confidence, cfg, "confidence", 0.99))
        n_jobs = int(_pick(jobs, cfg, "jobs", 1))
        n_repeats = int(_pick(repeats, cfg, "repeats", 3))
        limit = _pick(timeout, cfg, "timeout")
        if not 0 < conf < 1:
            raise UsageError("--confidence must lie between 0 and 1, e.g. 0.99")
        if n_jobs < 1 or n_repeats < 1 or (limit is not None and float(limit) <= 0):
            raise UsageError("--jobs and --repeats must be at least 1 and --timeout positive")
        out_dir, store_path = _pick(out, cfg, "out"), _pick(store, cfg, "store")
        settings = NightlySettings(
            repo=Path(_pick(repo, cfg, "repo", ".")), metrics=tuple(metrics),
            directions={m: resolve_direction(m, given_dirs.get(m)) for m in metrics},
            probe=str(command), rev=rev, baseline=baseline, accept=accept, pins=pins,
            min_effects=effects,
            confidence=conf, repeats=n_repeats, jobs=n_jobs,
            timeout=None if limit is None else float(limit),
            out=Path(out_dir) if out_dir else None,
            store=Path(store_path) if store_path else None, summary_md=summary_md,
            junit=junit, attribute=not (no_attribute or cfg.get("no_attribute", False)),
            first_parent=bool(first_parent or cfg.get("first_parent", False)))
        result = NightlySession(settings, progress=_err).run()
        if json_out:
            typer.echo(json.dumps(result))
        else:
            typer.echo(_terminal(result))
        return NIGHTLY_EXIT[result["status"]]

    _guarded(json_out, body)


def _as_list(value: Any) -> list[str]:
    """A config value for a per-metric option: X, [..], or a {NAME = X} table."""
    if value is None:
        return []
    if isinstance(value, dict):
        return [f"{k}={v}" for k, v in value.items()]
    if isinstance(value, list):
        return [str(v) for v in value]
    return [str(value)]


def _per_metric(texts: Sequence[str], metrics: Sequence[str], option: str,
                convert: Callable[[str], T]) -> dict[str, T]:
    """`X` for every metric, `NAME=X` for one; a named value wins over the bare one."""
    every: dict[str, T] = {}
    named: dict[str, T] = {}
    for text in texts:
        name, sep, raw = text.rpartition("=")
        try:
            value = convert(raw.strip())
        except ValueError:
            raise UsageError(f"malformed {option} {text!r}") from None
        if not sep:
            every = dict.fromkeys(metrics, value)
        elif name.strip() in metrics:
            named[name.strip()] = value
        else:
            raise UsageError(f"{option} {text!r} names {name.strip()!r}, which is not a "
                             "--metric of this night")
    return {**every, **named}


def _terminal(result: dict[str, Any]) -> str:
    from .summary import terminal_summary

    lines = [str(c.get("sentence", "")) for c in result.get("checks") or []]
    for c in result.get("checks") or []:
        if isinstance(c.get("hunt"), dict):
            lines.append(terminal_summary(c["hunt"]))
    if result.get("baseline_advanced"):
        lines.append(f"{str(result['revision']['commit'])[:8]} is now the baseline.")
    if result.get("report"):
        lines.append(f"report: {result['report']}")
    return "\n".join(lines)


@app.command()
def history(
    metric: Annotated[str, typer.Option(help="Metric whose nightly series to show.")],
    repo: Annotated[Path, typer.Option(help="Repository whose store to read.")] = Path("."),
    store: Annotated[Path | None, typer.Option(help="Store file (default: in .git).")] = None,
    probe: Annotated[str | None, typer.Option(
        help="The nightly probe command, when several series measure the metric.")] = None,
    pin: Annotated[list[str] | None, typer.Option(
        help="The nightly pins (KEY=VALUE), when several series measure the metric.")] = None,
    out: Annotated[Path | None, typer.Option(help="Also plot to this .svg or .png file.")
                   ] = None,
    penalty: Annotated[float | None, typer.Option(
        help="Change-point penalty (default: 4 sigma^2 ln n, sigma the night-to-night noise).")
                       ] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print the series as JSON.")] = False,
) -> None:
    """Nightly series of one metric, with the change points ruptures finds in it."""

    def body() -> int:
        from .cli import _open_store
        from .nightly import metric_history
        from .report.nightly import history_plot, history_text

        if out is not None and out.suffix.lower() not in (".svg", ".png"):
            raise UsageError(f"--out {out}: use a .svg or .png file name")
        if penalty is not None and penalty <= 0:
            raise UsageError("--penalty must be positive")
        with _open_store(repo, store) as s:
            series = metric_history(s, metric, probe=probe,
                                    pins=parse_pins(pin) if pin else None, penalty=penalty)
        if out is not None:
            series["plot"] = str(history_plot(series, out))
        typer.echo(json.dumps(series) if json_out else history_text(series).rstrip("\n"))
        if out is not None and not json_out:
            typer.echo(f"plot: {out}")
        return 0

    _guarded(json_out, body)


@store_app.command("export")
def store_export(
    path: Annotated[Path, typer.Argument(help="File to write (replaced atomically).")],
    repo: Annotated[Path, typer.Option(help="Repository whose store to export.")] = Path("."),
    store: Annotated[Path | None, typer.Option(help="Store file (default: in .git).")] = None,
) -> None:
    """Write the whole store (runs, hunts, nightly baselines) to one file."""

    def body() -> int:
        from .cli import _open_store

        with _open_store(repo, store) as s:
            if path.resolve() == s.path.resolve():
                raise UsageError(f"{path} is the store itself: export to another file")
            s.export_to(path)
            hunts = len(s.hunts(limit=1 << 30))
        typer.echo(f"exported {s.path} ({hunts} hunts) to {path}")
        return 0

    _guarded(False, body)


@store_app.command("import")
def store_import(
    path: Annotated[Path, typer.Argument(help="A file written by `bisector store export`.")],
    repo: Annotated[Path, typer.Option(help="Repository whose store receives it.")] = Path("."),
    store: Annotated[Path | None, typer.Option(help="Store file (default: in .git).")] = None,
) -> None:
    """Merge an exported store into this one; runs and hunts already here are not duplicated."""

    def body() -> int:
        from .git_ops import GitRepo
        from .store import Store, default_store_path

        if not path.is_file():
            raise UsageError(f"no file at {path}: pass a file written by `bisector store export`")
        target = store or default_store_path(GitRepo(repo).common_dir)
        if target.exists() and path.resolve() == target.resolve():
            raise UsageError(f"{path} is the store itself: import another file")
        with Store(target) as s:
            before = len(s.hunts(limit=1 << 30))
            added = s.import_from(path)
            new_hunts = len(s.hunts(limit=1 << 30)) - before
        typer.echo(f"imported {added} new runs and {new_hunts} new hunts from {path} "
                   f"into {target}")
        return 0

    _guarded(False, body)
