"""The `bisector` command line: parse, build a session, call it, map errors to exit codes.

The only module that imports typer. Commands are thin: each merges the config
file with its options and calls one library function. Exit codes follow SPEC:
find 0 found, 1 no regression, 2 usage error, 3 ambiguous or inconclusive,
4 probe fails at an endpoint; 130 after Ctrl-C.
"""

from __future__ import annotations

import gc
import json
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Annotated, Any

import typer

from .errors import BisectorError, ProbeFailedAtEndpoint, UsageError
from .settings import FindSettings, for_metric, load_config_file, parse_pins, resolve_direction
from .summary import terminal_summary

try:  # typer 0.2x carries its own copy of click
    from typer._click import exceptions as click_errors
except ImportError:  # older typer runs on click itself
    from click import exceptions as click_errors  # type: ignore[no-redef]

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Find the commit, and the config delta, that made a metric worse.",
)

FIND_EXIT = {"found": 0, "no-regression": 1, "ambiguous": 3, "inconclusive": 3, "error": 2}


def _err(msg: str) -> None:
    typer.echo(msg, err=True)


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt  # unwinds like Ctrl-C: worktree removed, probe group killed


def _guarded(json_out: bool, body: Callable[[], int]) -> None:
    """Run a command body; turn bisector's errors into one line and an exit code."""
    signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        code = body()
    except ProbeFailedAtEndpoint as exc:
        if json_out and exc.result is not None:  # the command's own result object
            typer.echo(json.dumps(exc.result))
            json_out = False
        _fail(json_out, str(exc), 4, tail=exc.output_tail)
    except UsageError as exc:
        _fail(json_out, str(exc), 2)
    except BisectorError as exc:
        _fail(json_out, str(exc), 2)
    except KeyboardInterrupt:
        message = "interrupted; finished runs are stored, run the same command to resume"
        _err(f"bisector: {message}")
        if json_out:  # a script reading stdout gets an object, not nothing
            typer.echo(json.dumps({"status": "error", "error": message, "exit_code": 130}))
        raise typer.Exit(130) from None
    raise typer.Exit(code)


def _fail(json_out: bool, message: str, code: int, tail: str = "") -> None:
    _err(f"bisector: error: {message}")
    if tail:
        _err("--- probe output (tail) ---\n" + tail.rstrip())
    if json_out:
        typer.echo(json.dumps({"status": "error", "error": message, "exit_code": code}))
    raise typer.Exit(code)


def _pick(cli: Any, config: dict[str, Any], key: str, default: Any = None) -> Any:
    return cli if cli not in (None, [], ()) else config.get(key, default)


@app.command()
def find(
    good: Annotated[str | None, typer.Option(help="Known good revision (required).")] = None,
    bad: Annotated[str | None, typer.Option(help="Known bad revision (default: HEAD).")] = None,
    repo: Annotated[Path | None, typer.Option(help="Repository to bisect (default: .).")] = None,
    metric: Annotated[list[str] | None, typer.Option(
        help="Metric name; repeatable. The first drives the search.")] = None,
    direction: Annotated[str | None, typer.Option(
        help="higher|lower: which way is better (inferred for common names).")] = None,
    probe: Annotated[str | None, typer.Option(
        help="Probe command line, run in the commit's worktree.")] = None,
    pin: Annotated[list[str] | None, typer.Option(
        help="KEY=VALUE held fixed at every commit; repeatable.")] = None,
    min_effect: Annotated[float | None, typer.Option(
        help="Smallest change, in metric units, that counts as a regression.")] = None,
    jobs: Annotated[int | None, typer.Option(help="Probe runs in parallel.")] = None,
    timeout: Annotated[float | None, typer.Option(help="Seconds allowed per probe run.")] = None,
    repeats: Annotated[int | None, typer.Option(
        help="Seeds per commit when the probe is noisy.")] = None,
    max_runs: Annotated[int | None, typer.Option(
        help="Most probe runs this hunt may start, attribution included.")] = None,
    confidence: Annotated[float | None, typer.Option(
        help="Probability a culprit must reach to be reported found (default 0.99).")] = None,
    executor: Annotated[str | None, typer.Option(
        help="Where probes run: local (default) or dask.")] = None,
    scheduler: Annotated[str | None, typer.Option(
        help="Dask scheduler address, e.g. tcp://head:8786 (with --executor dask).")] = None,
    remote: Annotated[str | None, typer.Option(
        help="Repository URL for Dask workers that cannot see --repo.")] = None,
    gpus: Annotated[str | None, typer.Option(
        help="GPU ids, e.g. 0,1,2,3: one per local slot; on Dask, each run asks a GPU.")
                    ] = None,
    out: Annotated[Path | None, typer.Option(help="Report folder.")] = None,
    json_out: Annotated[bool, typer.Option(
        "--json", help="Print the result object on stdout, nothing else.")] = False,
    no_attribute: Annotated[bool, typer.Option(
        "--no-attribute", help="Stop after the culprit is found.")] = False,
    first_parent: Annotated[bool, typer.Option(
        "--first-parent", help="Follow only the first parent of merges.")] = False,
    config: Annotated[Path | None, typer.Option(help="Config file (TOML).")] = None,
    store: Annotated[Path | None, typer.Option(help="Store file (default: in .git).")] = None,
    summary_md: Annotated[Path | None, typer.Option(
        help="Also write a short Markdown summary here (e.g. $GITHUB_STEP_SUMMARY).")] = None,
) -> None:
    """Bisect good..bad for one primary metric, then attribute the culprit."""

    def body() -> int:
        from .session import FindSession

        cfg = load_config_file(config, Path.cwd())
        settings = _find_settings(cfg, good=good, bad=bad, repo=repo, metric=metric,
                                  direction=direction, probe=probe, pin=pin,
                                  min_effect=min_effect, jobs=jobs, timeout=timeout,
                                  repeats=repeats, out=out, no_attribute=no_attribute,
                                  first_parent=first_parent, store=store,
                                  summary_md=summary_md, max_runs=max_runs,
                                  confidence=confidence, executor=executor,
                                  scheduler=scheduler, remote=remote, gpus=gpus)
        result = FindSession(settings, progress=_err).run()
        if json_out:
            typer.echo(json.dumps(result))
        else:
            typer.echo(terminal_summary(result))
        return FIND_EXIT[result["status"]]

    _guarded(json_out, body)


def _find_settings(cfg: dict[str, Any], **cli: Any) -> FindSettings:
    good = _pick(cli["good"], cfg, "good")
    if not good:
        raise UsageError("--good REV is required: name a commit where the metric was fine")
    metrics = _pick(cli["metric"], cfg, "metric") or cfg.get("metrics")
    if isinstance(metrics, str):
        metrics = [metrics]
    if not metrics:
        raise UsageError("--metric NAME is required: the metric the probe reports")
    probe = _pick(cli["probe"], cfg, "probe")
    if not probe:
        raise UsageError("--probe CMD is required: the command that measures the metric")
    pins_cfg = cfg.get("pin") or cfg.get("pins") or {}
    pins = dict(pins_cfg) if isinstance(pins_cfg, dict) else parse_pins(list(pins_cfg))
    pins.update(parse_pins(cli["pin"] or []))
    jobs = int(_pick(cli["jobs"], cfg, "jobs", 1))
    repeats = int(_pick(cli["repeats"], cfg, "repeats", 3))
    timeout = _pick(cli["timeout"], cfg, "timeout")
    if jobs < 1 or repeats < 1 or (timeout is not None and float(timeout) <= 0):
        raise UsageError("--jobs and --repeats must be at least 1 and --timeout positive")
    min_effect = for_metric(_pick(cli["min_effect"], cfg, "min_effect"), metrics[0], float)
    if min_effect is not None and float(min_effect) < 0:
        raise UsageError("--min-effect must be zero or positive (metric units)")
    out = _pick(cli["out"], cfg, "out")
    store = _pick(cli["store"], cfg, "store")
    summary_md = _pick(cli["summary_md"], cfg, "summary_md")
    max_runs = _pick(cli["max_runs"], cfg, "max_runs")
    if max_runs is not None and int(max_runs) < 3:
        raise UsageError("--max-runs must be at least 3 (the endpoints alone take 3 runs)")
    executor = str(_pick(cli["executor"], cfg, "executor", "local"))
    if executor not in ("local", "dask"):
        raise UsageError(f"--executor must be local or dask, not {executor!r}")
    gpus = _pick(cli["gpus"], cfg, "gpus") or ""
    gpus = [str(g) for g in gpus] if isinstance(gpus, list) else str(gpus).split(",")
    confidence = float(_pick(cli["confidence"], cfg, "confidence", 0.99))
    if not 0.5 < confidence < 1:
        raise UsageError("--confidence must be between 0.5 and 1, e.g. 0.99")
    return FindSettings(
        repo=Path(_pick(cli["repo"], cfg, "repo", ".")),
        good=str(good),
        bad=str(_pick(cli["bad"], cfg, "bad", "HEAD")),
        metrics=tuple(metrics),
        direction=resolve_direction(metrics[0], _pick(cli["direction"], cfg, "direction")),
        probe=str(probe),
        pins=pins,
        min_effect=None if min_effect is None else float(min_effect),
        jobs=jobs,
        timeout=None if timeout is None else float(timeout),
        out=Path(out) if out else None,
        attribute=not (cli["no_attribute"] or cfg.get("no_attribute", False)),
        first_parent=bool(cli["first_parent"] or cfg.get("first_parent", False)),
        repeats=repeats,
        store=Path(store) if store else None,
        summary_md=Path(summary_md) if summary_md else None,
        max_runs=None if max_runs is None else int(max_runs),
        confidence=confidence,
        executor=executor,
        scheduler=_pick(cli["scheduler"], cfg, "scheduler"),
        remote=_pick(cli["remote"], cfg, "remote"),
        gpus=tuple(g.strip() for g in gpus if g.strip()),
    )


@app.command("probe")
def probe_cmd(
    probe: Annotated[str, typer.Option(help="Probe command line.")],
    repo: Annotated[Path, typer.Option(help="Repository.")] = Path("."),
    rev: Annotated[str, typer.Option(help="Revision to measure.")] = "HEAD",
    seed: Annotated[int, typer.Option(help="BISECTOR_SEED for this run.")] = 0,
    pin: Annotated[list[str] | None, typer.Option(help="KEY=VALUE override; repeatable.")] = None,
    timeout: Annotated[float | None, typer.Option(help="Seconds allowed.")] = None,
    store: Annotated[Path | None, typer.Option(help="Store file (default: in .git).")] = None,
) -> None:
    """Run the probe once at a revision and print its parsed result."""

    def body() -> int:
        from .oneshot import probe_once

        run = probe_once(repo, rev, probe, seed=seed, pins=parse_pins(pin or []),
                         timeout=timeout, store_path=store)
        typer.echo(json.dumps({
            "commit": run.request.commit, "seed": run.request.seed,
            "overrides": dict(run.request.overrides), "outcome": run.outcome.value,
            "exit_code": run.exit_code, "duration": round(run.duration, 3),
            "metrics": dict(run.metrics), "config": dict(run.config), "facts": dict(run.facts),
            "error": run.error, "run_id": run.run_id}, indent=2))
        if not run.ok:
            said = {"skip": "says this commit cannot be tested (exit 125)",
                    "timeout": "timed out", "invalid": "broke the protocol"}
            _err(f"bisector: the probe run {said.get(run.outcome.value, 'failed')}: "
                 f"{run.error}")
            if run.output_tail:
                _err("--- probe output (tail) ---\n" + run.output_tail.rstrip())
            return 4
        return 0

    _guarded(False, body)


@app.command("attribute")
def attribute_cmd(
    bad: Annotated[str, typer.Option(help="The commit to explain (default: HEAD).")] = "HEAD",
    good: Annotated[str | None, typer.Option(
        help="The commit to compare with (default: the parent of --bad).")] = None,
    repo: Annotated[Path | None, typer.Option(help="Repository (default: .).")] = None,
    metric: Annotated[list[str] | None, typer.Option(help="Metric name.")] = None,
    direction: Annotated[str | None, typer.Option(help="higher|lower.")] = None,
    probe: Annotated[str | None, typer.Option(help="Probe command line.")] = None,
    pin: Annotated[list[str] | None, typer.Option(help="KEY=VALUE held fixed.")] = None,
    min_effect: Annotated[float | None, typer.Option(help="Smallest change that matters.")
                          ] = None,
    max_runs: Annotated[int | None, typer.Option(help="Most probe runs to start.")] = None,
    repeats: Annotated[int | None, typer.Option(help="Seeds when the probe is noisy.")] = None,
    timeout: Annotated[float | None, typer.Option(help="Seconds per probe run.")] = None,
    out: Annotated[Path | None, typer.Option(help="Report folder.")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print the result object.")] = False,
    config: Annotated[Path | None, typer.Option(help="Config file (TOML).")] = None,
    store: Annotated[Path | None, typer.Option(help="Store file (default: in .git).")] = None,
) -> None:
    """Attribute the metric difference between two commits to config deltas and code."""

    def body() -> int:
        from .compare import attribute_between

        cfg = load_config_file(config, Path.cwd())
        metrics = _pick(metric, cfg, "metric") or cfg.get("metrics")
        metrics = [metrics] if isinstance(metrics, str) else metrics
        command = _pick(probe, cfg, "probe")
        if not metrics or not command:
            raise UsageError("--metric NAME and --probe CMD are required")
        pins_cfg = cfg.get("pin") or cfg.get("pins") or {}
        pins = dict(pins_cfg) if isinstance(pins_cfg, dict) else parse_pins(list(pins_cfg))
        pins.update(parse_pins(pin or []))
        result = attribute_between(
            Path(_pick(repo, cfg, "repo", ".")), good, bad, metric=metrics[0],
            direction=resolve_direction(metrics[0], _pick(direction, cfg, "direction")),
            probe=str(command), pins=pins,
            min_effect=for_metric(_pick(min_effect, cfg, "min_effect"), metrics[0], float),
            max_runs=_pick(max_runs, cfg, "max_runs"),
            repeats=int(_pick(repeats, cfg, "repeats", 3)),
            timeout=_pick(timeout, cfg, "timeout"), out=out, store_path=store, progress=_err)
        typer.echo(json.dumps(result) if json_out else terminal_summary(result))
        return 0

    _guarded(json_out, body)


def _open_store(repo: Path, store: Path | None) -> Any:
    from .git_ops import GitRepo
    from .store import Store, default_store_path

    path = store or default_store_path(GitRepo(repo).common_dir)
    if not path.exists():
        raise UsageError(f"no bisector store at {path}: run `bisector find` there first")
    return Store(path)


@app.command()
def report(
    run: Annotated[str, typer.Argument(help="Hunt id, or 'latest'.")] = "latest",
    repo: Annotated[Path, typer.Option(help="Repository whose store to read.")] = Path("."),
    store: Annotated[Path | None, typer.Option(help="Store file (default: in .git).")] = None,
    out: Annotated[Path | None, typer.Option(help="Report folder (default: reports/ID).")
                   ] = None,
    summary_md: Annotated[Path | None, typer.Option(help="Also write a Markdown summary.")
                          ] = None,
) -> None:
    """Re-render the HTML report of a stored hunt, from the store alone (no probe runs)."""

    def body() -> int:
        from .report import hunt_summary, render_report

        with _open_store(repo, store) as s:
            hunt = s.hunt(run)
            out_dir = out or Path("reports") / hunt.id
            path = render_report(s, hunt.id, out_dir)
            if summary_md is not None:
                summary_md.write_text(hunt_summary(s, hunt.id, path), encoding="utf-8")
        typer.echo(str(path))
        return 0

    _guarded(False, body)


@app.command()
def runs(
    repo: Annotated[Path, typer.Option(help="Repository whose store to read.")] = Path("."),
    store: Annotated[Path | None, typer.Option(help="Store file (default: in .git).")] = None,
    limit: Annotated[int, typer.Option(help="How many hunts, newest first.")] = 50,
) -> None:
    """List stored hunts with date, range, metric and status."""

    def body() -> int:
        from .report import hunts_table

        with _open_store(repo, store) as s:
            typer.echo(hunts_table(s, limit), nl=False)
        return 0

    _guarded(False, body)


@app.command()
def demo(
    out: Annotated[Path, typer.Option(help="Where the reports and the demo's store go.")
                   ] = Path("reports/demo"),
    keep_repo: Annotated[Path | None, typer.Option(
        help="Build the demo repository here and keep it (default: a temporary folder).")
                         ] = None,
    jobs: Annotated[int, typer.Option(help="Probe runs in parallel.")] = 2,
) -> None:
    """Build a small PyTorch ptychography repository and hunt its regression end to end."""

    def body() -> int:
        from .demo.run import run_demo

        outcome = run_demo(out, keep_repo=keep_repo, jobs=jobs, progress=_err)
        typer.echo("hunt 1, the history as it is:")
        typer.echo(terminal_summary(outcome.plain))
        typer.echo("\nhunt 2, with --pin object_big=false:")
        typer.echo(terminal_summary(outcome.pinned))
        for problem in outcome.problems:
            _err(f"bisector demo: unexpected: {problem}")
        return 0 if outcome.ok else 1

    _guarded(False, body)


from . import cli_ci  # noqa: E402,F401  (registers nightly, history, store)


def _run_app(args: list[str]) -> int:
    """The app's exit code; a mistyped option or value is one line, as every usage error."""
    try:
        code = app(args=args, prog_name="bisector", standalone_mode=False)
    except click_errors.NoArgsIsHelpError as exc:
        exc.show()
        return exc.exit_code
    except click_errors.UsageError as exc:
        where = exc.ctx.command_path if exc.ctx else "bisector"
        message = f"{exc.format_message()} (see '{where} --help')"
        _err(f"bisector: error: {message}")
        if "--json" in args:
            typer.echo(json.dumps({"status": "error", "error": message, "exit_code": 2}))
        return 2
    except click_errors.ClickException as exc:
        _err(f"bisector: error: {exc.format_message()}")
        return exc.exit_code
    except (typer.Abort, getattr(click_errors, "Abort", typer.Abort)):
        _err("bisector: interrupted")
        return 130
    return code if isinstance(code, int) else 0


def main() -> None:
    try:
        sys.exit(_run_app(sys.argv[1:]))
    finally:
        # The process ends here and its memory goes with it: the collector need not
        # walk numpy's, scipy's and matplotlib's objects on the way out (0.1 s).
        gc.freeze()


if __name__ == "__main__":
    main()
