"""The probe runner against real probe processes (SPEC section 3).

Each probe is a small script written into tmp_path and run with this Python,
or a one-line shell command. Timeouts are short (0.5 s, grace 0.5 s) so the
whole file runs in a few seconds.
"""

from __future__ import annotations

import json
import math
import os
import shlex
import signal
import sys
import textwrap
import time
import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bisector import probe
from bisector.errors import ProbeProtocolError
from bisector.model import Outcome, Run, RunRequest
from bisector.probe import (
    MAX_RESULT_LINE,
    find_result_line,
    is_result_line,
    parse_result,
    run_probe,
)

SHA = "0123456789abcdef0123456789abcdef01234567"
TIMEOUT = 0.5
GRACE = 0.5


def _alive(pid: int) -> bool:
    """True while the process exists and is not a zombie (zombies run nothing)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    except OSError:  # no procfs: fall back to the kernel's answer, zombies included
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


@pytest.fixture
def pids() -> Iterator[list[int]]:
    """Pids a test expects dead; killed afterwards so a failing test leaks nothing."""
    found: list[int] = []
    yield found
    for pid in found:
        if _alive(pid):
            os.kill(pid, signal.SIGKILL)


@pytest.fixture
def python_probe(tmp_path: Path) -> Callable[[str], str]:
    """Write a Python probe script; return the shell command that runs it."""
    count = [0]

    def write(source: str) -> str:
        count[0] += 1
        script = tmp_path / f"probe{count[0]}.py"
        script.write_text(textwrap.dedent(source))
        return f"{shlex.quote(sys.executable)} {shlex.quote(str(script))}"

    return write


def _run(
    command: str,
    tmp_path: Path,
    *,
    timeout: float | None = 10.0,
    seed: int = 7,
    overrides: dict[str, object] | None = None,
    **kwargs: object,
) -> Run:
    workdir = tmp_path / "worktree"
    workdir.mkdir(exist_ok=True)
    request = RunRequest(commit=SHA, command=command, seed=seed, overrides=overrides or {})
    return run_probe(
        request,
        workdir,
        timeout=timeout,
        artifacts_dir=tmp_path / "artifacts",
        grace=GRACE,
        **kwargs,  # type: ignore[arg-type]
    )


# ---------------------------------------------------------------- environment

ECHO_ENV = """
    import json, os
    names = ["BISECTOR_COMMIT", "BISECTOR_SEED", "BISECTOR_OVERRIDES", "BISECTOR_RESULT",
             "BISECTOR_ARTIFACTS", "CALLER_VAR", "OUTSIDE_VAR"]
    facts = {name: os.environ.get(name) for name in names}
    facts["cwd"] = os.getcwd()
    facts["result_existed"] = os.path.exists(os.environ["BISECTOR_RESULT"])
    facts["artifacts_listing"] = sorted(os.listdir(os.environ["BISECTOR_ARTIFACTS"]))
    with open(os.environ["BISECTOR_RESULT"], "w") as f:
        json.dump({"metrics": {"m": 1}, "facts": facts}, f)
"""


def test_probe_sees_every_bisector_variable(
    tmp_path: Path, python_probe: Callable[[str], str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OUTSIDE_VAR", "from-os-environ")
    run = _run(python_probe(ECHO_ENV), tmp_path, seed=42, overrides={"b": "x", "a": 1})
    assert run.outcome is Outcome.OK, run.error
    facts = run.facts
    assert facts["BISECTOR_COMMIT"] == SHA
    assert facts["BISECTOR_SEED"] == "42"
    assert facts["BISECTOR_OVERRIDES"] == '{"a":1,"b":"x"}'  # canonical: sorted, compact
    assert facts["BISECTOR_ARTIFACTS"] == str(tmp_path / "artifacts")
    assert facts["OUTSIDE_VAR"] == "from-os-environ"  # the caller's environment passes through
    assert facts["cwd"] == str((tmp_path / "worktree").resolve())
    assert facts["result_existed"] is False
    assert facts["artifacts_listing"] == []
    # The result file lives in a private temp dir, removed afterwards.
    result_path = Path(facts["BISECTOR_RESULT"])
    assert not result_path.is_relative_to(tmp_path)
    assert not result_path.parent.exists()
    assert run.artifacts == str(tmp_path / "artifacts")


def test_explicit_env_replaces_os_environ_and_overrides_default_to_empty_object(
    tmp_path: Path, python_probe: Callable[[str], str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OUTSIDE_VAR", "from-os-environ")
    env = {"PATH": os.environ["PATH"], "CALLER_VAR": "given", "BISECTOR_SEED": "stale"}
    run = _run(python_probe(ECHO_ENV), tmp_path, seed=0, env=env)
    assert run.outcome is Outcome.OK, run.error
    assert run.facts["CALLER_VAR"] == "given"
    assert run.facts["OUTSIDE_VAR"] is None
    assert run.facts["BISECTOR_SEED"] == "0"  # ours win over the caller's stale value
    assert run.facts["BISECTOR_OVERRIDES"] == "{}"


def test_artifacts_dir_is_emptied_first_and_probe_files_stay(
    tmp_path: Path, python_probe: Callable[[str], str]
) -> None:
    artifacts = tmp_path / "artifacts"
    (artifacts / "old_subdir").mkdir(parents=True)
    (artifacts / "old_subdir" / "x.txt").write_text("old")
    (artifacts / "old.png").write_text("old")
    command = python_probe(
        """
        import os, pathlib
        d = pathlib.Path(os.environ["BISECTOR_ARTIFACTS"])
        (d / "seen.txt").write_text(",".join(sorted(os.listdir(d))))
        (d / "plot.png").write_bytes(b"png")
        print('{"metrics": {"m": 0.5}}')
        """
    )
    run = _run(command, tmp_path)
    assert run.outcome is Outcome.OK, run.error
    assert (artifacts / "seen.txt").read_text() == ""
    assert sorted(p.name for p in artifacts.iterdir()) == ["plot.png", "seen.txt"]


# ---------------------------------------------------------------- where the result comes from


def test_result_file_wins_over_stdout(tmp_path: Path, python_probe: Callable[[str], str]) -> None:
    command = python_probe(
        """
        import json, os
        with open(os.environ["BISECTOR_RESULT"], "w") as f:
            json.dump({"metrics": {"ssim": 0.9}, "config": {"object_big": True}}, f)
        print(json.dumps({"metrics": {"ssim": 0.1}}))
        """
    )
    run = _run(command, tmp_path)
    assert run.outcome is Outcome.OK, run.error
    assert dict(run.metrics) == {"ssim": 0.9}
    assert dict(run.config) == {"object_big": True}


def test_an_empty_result_file_falls_back_to_stdout(
    tmp_path: Path, python_probe: Callable[[str], str]
) -> None:
    # SPEC: the result comes from BISECTOR_RESULT, "or else" from stdout; a file created
    # up front and never written is not a result
    command = python_probe(
        """
        import json, os
        open(os.environ["BISECTOR_RESULT"], "w").close()
        print(json.dumps({"metrics": {"ssim": 0.7}}))
        """
    )
    run = _run(command, tmp_path)
    assert run.outcome is Outcome.OK, run.error
    assert dict(run.metrics) == {"ssim": 0.7}


def test_last_stdout_result_line_is_chosen_among_noise(
    tmp_path: Path, python_probe: Callable[[str], str]
) -> None:
    command = python_probe(
        """
        import sys
        print("epoch 1 loss 0.3")
        print('{"metrics": {"ssim": 0.1}}')
        print('{"metrics": {"ssim": 0.7}, "config": {"k": 3}, "facts": {"gen": "hybrid"}}')
        print('{"progress": 0.9}')
        print('[{"metrics": {"ssim": 0.2}}]')
        print('{"metrics": {"ssim": 0.3}')  # broken: not a result line
        sys.stderr.write('{"metrics": {"ssim": 0.4}}\\n')  # stderr never counts
        sys.stderr.flush()
        print("done, wrote 3 files")
        """
    )
    run = _run(command, tmp_path)
    assert run.outcome is Outcome.OK, run.error
    assert dict(run.metrics) == {"ssim": 0.7}
    assert dict(run.config) == {"k": 3}
    assert dict(run.facts) == {"gen": "hybrid"}


def test_result_line_without_trailing_newline_counts(tmp_path: Path) -> None:
    run = _run("""printf 'noise\\n{"metrics": {"acc": 3}}'""", tmp_path)
    assert run.outcome is Outcome.OK, run.error
    assert dict(run.metrics) == {"acc": 3.0}
    assert isinstance(run.metrics["acc"], float)


def test_over_long_stdout_line_is_never_taken_as_the_result(
    tmp_path: Path, python_probe: Callable[[str], str]
) -> None:
    command = python_probe(
        f"""
        import json
        print('{{"metrics": {{"m": 1}}}}')
        print(json.dumps({{"metrics": {{"m": 2}}, "facts": {{"pad": "x" * {MAX_RESULT_LINE}}}}}))
        """
    )
    run = _run(command, tmp_path)
    assert run.outcome is Outcome.OK, run.error
    assert dict(run.metrics) == {"m": 1.0}


# ---------------------------------------------------------------- outcomes


def test_exit_125_is_skip_without_a_result(tmp_path: Path) -> None:
    run = _run("echo cannot build this one; exit 125", tmp_path)
    assert run.outcome is Outcome.SKIP
    assert run.exit_code == 125
    assert run.metrics == {}
    assert "cannot build" in run.output_tail


def test_exit_3_is_failed_with_stderr_in_tail(
    tmp_path: Path, python_probe: Callable[[str], str]
) -> None:
    command = python_probe(
        """
        import sys
        print('{"metrics": {"m": 1}}')
        sys.stderr.write("RuntimeError: CUDA out of memory\\n")
        sys.exit(3)
        """
    )
    run = _run(command, tmp_path)
    assert run.outcome is Outcome.FAILED
    assert run.exit_code == 3
    assert run.error == "probe exited with code 3"
    assert run.metrics == {}
    assert "RuntimeError: CUDA out of memory" in run.output_tail
    assert run.duration > 0
    assert abs(run.started_at - time.time()) < 60


def test_exit_0_without_result_is_invalid(tmp_path: Path) -> None:
    run = _run("echo all good", tmp_path)
    assert run.outcome is Outcome.INVALID
    assert run.exit_code == 0
    assert run.error == (
        "probe exited 0 but wrote no result: write JSON to $BISECTOR_RESULT "
        "or print it as the last JSON line on stdout"
    )


@pytest.mark.parametrize(
    ("metrics_json", "expected"),
    [
        ('{"ssim": NaN}', "metric 'ssim' is NaN: metrics must be finite numbers"),
        ('{"ssim": 1, "mae": Infinity}', "metric 'mae' is infinite"),
        ('{"psnr": -Infinity}', "metric 'psnr' is infinite"),
        ('{"ssim": "0.83"}', "metric 'ssim' is a string"),
        ('{"acc": true}', "metric 'acc' is a boolean"),
        ('{"loss": null}', "metric 'loss' is null"),
        ('{"loss": 1e999}', "metric 'loss' is infinite"),
    ],
)
def test_bad_metric_values_are_invalid_and_named(
    tmp_path: Path, metrics_json: str, expected: str
) -> None:
    line = '{"metrics": ' + metrics_json + "}"
    run = _run(f"echo {shlex.quote(line)}", tmp_path)
    assert run.outcome is Outcome.INVALID
    assert expected in run.error
    assert "\n" not in run.error
    assert run.metrics == {}


def test_malformed_result_file_is_invalid(tmp_path: Path) -> None:
    run = _run("""printf '{"metrics": {"m": 1,}}' > "$BISECTOR_RESULT" """, tmp_path)
    assert run.outcome is Outcome.INVALID
    assert run.error.startswith("result JSON is malformed at line 1 column 21: ")
    assert "\n" not in run.error


def test_result_file_without_metrics_is_invalid(tmp_path: Path) -> None:
    run = _run("""echo '{"ssim": 0.8}' > "$BISECTOR_RESULT" """, tmp_path)
    assert run.outcome is Outcome.INVALID
    assert run.error.startswith("result JSON has no 'metrics' key")


def test_missing_command_is_failed_with_not_found(tmp_path: Path) -> None:
    run = _run("CUDA_VISIBLE_DEVICES= no-such-probe-xyz --fast", tmp_path)
    assert run.outcome is Outcome.FAILED
    assert run.exit_code == 127
    assert run.error == "probe command not found: no-such-probe-xyz: check --probe"


def test_not_executable_command_is_failed_with_hint(tmp_path: Path) -> None:
    script = tmp_path / "probe.sh"
    script.write_text("#!/bin/sh\necho hi\n")
    script.chmod(0o644)
    run = _run(shlex.quote(str(script)), tmp_path)
    assert run.outcome is Outcome.FAILED
    assert run.exit_code == 126
    assert run.error.startswith(f"probe command is not executable: {script}")


def test_probe_killed_by_signal_names_it(tmp_path: Path) -> None:
    run = _run("kill -SEGV $$", tmp_path)  # $$ is the probe's shell itself
    assert run.outcome is Outcome.FAILED
    assert run.exit_code == -signal.SIGSEGV
    assert run.error == "probe killed by signal SIGSEGV"


# ---------------------------------------------------------------- killing


GRANDCHILD_THEN_HANG = """
    import os, subprocess, sys, time
    child = subprocess.Popen(["sleep", "1000"])
    with open(sys.argv[1], "w") as f:
        f.write(str(child.pid))
    print("grandchild started", flush=True)
    time.sleep(1000)
"""


def _read_pid(path: Path, pids: list[int]) -> int:
    pid = int(path.read_text())
    pids.append(pid)
    return pid


def test_timeout_kills_the_whole_group_including_grandchild(
    tmp_path: Path, python_probe: Callable[[str], str], pids: list[int]
) -> None:
    pid_file = tmp_path / "grandchild.pid"
    command = python_probe(GRANDCHILD_THEN_HANG) + f" {shlex.quote(str(pid_file))}"
    begin = time.monotonic()
    run = _run(command, tmp_path, timeout=TIMEOUT)
    elapsed = time.monotonic() - begin
    grandchild = _read_pid(pid_file, pids)
    assert run.outcome is Outcome.TIMEOUT
    assert run.error == "timed out after 0.5s"
    assert elapsed < TIMEOUT + GRACE + 1.0
    assert run.duration >= TIMEOUT
    assert not _alive(grandchild)
    assert "grandchild started" in run.output_tail


def test_timeout_kills_shell_background_job(tmp_path: Path, pids: list[int]) -> None:
    pid_file = tmp_path / "bg.pid"
    command = f"sleep 1000 & echo $! > {shlex.quote(str(pid_file))}; wait"
    run = _run(command, tmp_path, timeout=TIMEOUT)
    assert run.outcome is Outcome.TIMEOUT
    assert not _alive(_read_pid(pid_file, pids))


def test_probe_ignoring_sigterm_is_sigkilled_after_grace(
    tmp_path: Path, python_probe: Callable[[str], str], pids: list[int]
) -> None:
    marker = tmp_path / "ignoring"
    command = python_probe(
        f"""
        import os, signal, time
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        open({str(marker)!r}, "w").write(str(os.getpid()))
        time.sleep(1000)
        """
    )
    # exec: the Python process is the group leader itself, so its pid is ours to check.
    begin = time.monotonic()
    run = _run("exec " + command, tmp_path, timeout=TIMEOUT)
    elapsed = time.monotonic() - begin
    probe_pid = _read_pid(marker, pids)
    assert run.outcome is Outcome.TIMEOUT
    assert run.exit_code == -signal.SIGKILL  # SIGTERM was ignored, SIGKILL was not
    assert TIMEOUT + GRACE - 0.05 <= elapsed < TIMEOUT + GRACE + 1.0
    assert not _alive(probe_pid)


@pytest.mark.parametrize("timeout", [None, TIMEOUT])
def test_children_left_after_a_normal_exit_are_killed(
    tmp_path: Path, pids: list[int], timeout: float | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The linger outlasts the timeout: a probe that exited in time is OK, not TIMEOUT.
    monkeypatch.setattr(probe, "_LINGER", 2 * TIMEOUT)
    pid_file = tmp_path / "bg.pid"
    # The background sleep inherits stdout, so it would hold the pipe open for 1000 s.
    command = (
        f"sleep 1000 & echo $! > {shlex.quote(str(pid_file))}; "
        """echo '{"metrics": {"m": 1}}'"""
    )
    begin = time.monotonic()
    run = _run(command, tmp_path, timeout=timeout)
    elapsed = time.monotonic() - begin
    assert run.outcome is Outcome.OK, run.error
    assert dict(run.metrics) == {"m": 1.0}
    assert run.duration < 2 * TIMEOUT  # the probe's own time, not the stragglers'
    assert elapsed < 2 * TIMEOUT + GRACE + 1.0
    assert not _alive(_read_pid(pid_file, pids))


def test_keyboard_interrupt_while_waiting_kills_the_group(
    tmp_path: Path, python_probe: Callable[[str], str], pids: list[int]
) -> None:
    pid_file = tmp_path / "grandchild.pid"
    command = python_probe(GRANDCHILD_THEN_HANG) + f" {shlex.quote(str(pid_file))}"

    def interrupt_on_start(line: str) -> None:
        if line == "grandchild started":
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        _run(command, tmp_path, timeout=None, echo=interrupt_on_start)
    assert not _alive(_read_pid(pid_file, pids))


# ---------------------------------------------------------------- output


def test_echo_receives_lines_from_both_streams(tmp_path: Path) -> None:
    seen: list[str] = []
    run = _run(
        """echo out-line; echo err-line >&2; echo '{"metrics": {"m": 1}}'""",
        tmp_path,
        echo=seen.append,
    )
    assert run.outcome is Outcome.OK
    assert sorted(seen) == sorted(["out-line", "err-line", '{"metrics": {"m": 1}}'])


def _big_output_line(i: int) -> str:
    return f"line {i:07d} " + "abcdefghij" * 9 + "\n"


BIG_LINES = 100_000  # about 10 MB


def test_ten_megabytes_of_output_keep_memory_bounded_and_tail_exact(
    tmp_path: Path, python_probe: Callable[[str], str]
) -> None:
    command = python_probe(
        f"""
        import sys
        out = sys.stdout
        for i in range({BIG_LINES}):
            out.write(f"line {{i:07d}} " + "abcdefghij" * 9 + "\\n")
        out.write('{{"metrics": {{"m": 2.5}}}}\\n')
        """
    )
    tracemalloc.start()
    try:
        run = _run(command, tmp_path, tail_chars=3000)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert run.outcome is Outcome.OK, run.error
    assert dict(run.metrics) == {"m": 2.5}
    full = "".join(_big_output_line(i) for i in range(BIG_LINES)) + '{"metrics": {"m": 2.5}}\n'
    assert len(full) > 10_000_000
    assert run.output_tail == full[-3000:]
    assert peak < 2_000_000  # the 10 MB went through, never into memory at once


def test_non_utf8_output_is_replaced_not_fatal(
    tmp_path: Path, python_probe: Callable[[str], str]
) -> None:
    command = python_probe(
        """
        import sys
        sys.stdout.buffer.write(b"bad \\xff\\xfe bytes\\n")
        sys.stdout.buffer.flush()
        sys.stderr.buffer.write(b"more \\xc3 bad\\n")
        sys.stderr.buffer.flush()
        sys.stdout.buffer.write(b'{"metrics": {"m": 1}, "facts": {"name": "caf\\xe9"}}\\n')
        """
    )
    run = _run(command, tmp_path)
    assert run.outcome is Outcome.OK, run.error
    assert dict(run.metrics) == {"m": 1.0}
    assert run.facts["name"] == "caf\ufffd"
    assert "bad \ufffd\ufffd bytes" in run.output_tail
    assert "more \ufffd bad" in run.output_tail


def test_tail_is_bounded_in_characters_with_multibyte_text(tmp_path: Path) -> None:
    run = _run("for i in 1 2 3 4 5 6 7 8; do printf 'żółw→'; done; exit 4", tmp_path, tail_chars=7)
    assert run.outcome is Outcome.FAILED
    assert run.output_tail == ("żółw→" * 8)[-7:]


# ---------------------------------------------------------------- parsing without processes


def test_parse_result_returns_floats_config_and_facts() -> None:
    metrics, config, facts = parse_result(
        '{"metrics": {"ssim": 1, "mae": 0.05}, "config": {"object_big": true}, "facts": null}'
    )
    assert metrics == {"ssim": 1.0, "mae": 0.05}
    assert all(type(v) is float for v in metrics.values())
    assert config == {"object_big": True}
    assert facts == {}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", "result JSON is empty"),
        ("[1, 2]", "result JSON is a list, not an object"),
        ('{"metrics": [0.8]}', "'metrics' is a list, not an object"),
        ('{"metrics": {}, "config": "big"}', "'config' is a string, not an object"),
        ('{"metrics": {}, "facts": [1]}', "'facts' is a list, not an object"),
        ('{"metrics": {"a\\nb": "x"}}', "metric 'a\\nb' is a string"),
        ('{"metrics": {"m": [1]}}', "metric 'm' is a list"),
        ('{\n "metrics": {"m": 1}\n  oops}', "result JSON is malformed at line 3 column 3"),
    ],
)
def test_parse_result_messages(text: str, expected: str) -> None:
    with pytest.raises(ProbeProtocolError) as info:
        parse_result(text)
    assert expected in str(info.value)
    assert "\n" not in str(info.value)


@given(
    st.dictionaries(
        st.text(min_size=1, max_size=10),
        st.floats(allow_nan=False, allow_infinity=False) | st.integers(-(10**15), 10**15),
        max_size=5,
    )
)
def test_parse_result_round_trips_finite_metrics(metrics: dict[str, float]) -> None:
    parsed, _, _ = parse_result(json.dumps({"metrics": metrics}))
    assert parsed == {k: float(v) for k, v in metrics.items()}
    assert all(math.isfinite(v) for v in parsed.values())


def test_find_result_line_picks_last_object_with_metrics() -> None:
    lines = [
        '{"metrics": {"m": 1}}',
        '  {"metrics": {"m": 2}}  \n',
        '{"no": "metrics here"}',
        '"metrics"',
        "{metrics}",
        "plain text",
    ]
    assert find_result_line(lines) == '{"metrics": {"m": 2}}'
    assert find_result_line(["plain", '{"other": 1}']) is None
    assert not is_result_line('{"facts": {"note": "metrics later"}}')
    # A result line with bad values is still the result line; parse_result rejects it.
    assert is_result_line('{"metrics": {"m": NaN}}')
