"""Run the user's probe command once, as SPEC section 3 fixes, and read its result.

This is the only module that starts probe processes. It owns the probe's
environment (BISECTOR_* variables), its process group (killed whole, with
bisector.process_group, on timeout, on Ctrl-C, and for stragglers left behind
after the probe exits), bounded capture of its output, and the parsing and
validation of the result JSON.
It must not touch git, the store or the search: it gets a worktree path and a
RunRequest, and gives back one model.Run. POSIX only (process groups, /bin/sh).
"""

from __future__ import annotations

import os
import selectors
import shlex
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import IO, Any

from bisector.errors import ProbeProtocolError
from bisector.model import Outcome, Run, RunRequest
from bisector.probe_result import (  # noqa: F401  (re-exported: part of this module's API)
    MAX_RESULT_LINE,
    find_result_line,
    is_result_line,
    parse_result,
)
from bisector.process_group import group_alive, kill_process_group

SKIP_EXIT_CODE = 125  # as in `git bisect run`
_NOT_FOUND_EXIT_CODE = 127  # POSIX shells: command not found
_NOT_EXECUTABLE_EXIT_CODE = 126  # POSIX shells: found but cannot execute

_READ_CHUNK = 1 << 16
_POLL = 0.05  # seconds between checks while waiting on processes
# After the probe exits, how long its leftover children may keep our pipes open
# before we treat them as stragglers and kill the group.
_LINGER = 0.2
_DRAIN_LIMIT = 2.0  # seconds to collect output still buffered after a kill

_NO_RESULT = (
    "probe exited 0 but wrote no result: write JSON to $BISECTOR_RESULT "
    "or print it as the last JSON line on stdout"
)


# ---------------------------------------------------------------- output capture


class _LineSplitter:
    """Splits a byte stream into lines, holding at most `limit` bytes of a partial line.

    Yields (line, whole): `whole` is False for pieces of an over-long line,
    which are shown but never taken as a result line.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.partial = bytearray()
        self.overflowed = False

    def feed(self, chunk: bytes) -> Iterator[tuple[bytes, bool]]:
        start = 0
        while (end := chunk.find(b"\n", start)) >= 0:
            self.partial += chunk[start : end + 1]
            yield bytes(self.partial), not self.overflowed and len(self.partial) <= self.limit
            self.partial.clear()
            self.overflowed = False
            start = end + 1
        self.partial += chunk[start:]
        if len(self.partial) > self.limit:
            yield bytes(self.partial), False
            self.partial.clear()
            self.overflowed = True

    def flush(self) -> Iterator[tuple[bytes, bool]]:
        if self.partial:
            yield bytes(self.partial), not self.overflowed
        self.partial.clear()
        self.overflowed = False


class _Capture:
    """Reads the probe's stdout and stderr pipes without holding unbounded output.

    Keeps a merged tail (in arrival order) and the last stdout result line.
    """

    def __init__(
        self,
        stdout: IO[bytes],
        stderr: IO[bytes],
        tail_chars: int,
        echo: Callable[[str], None] | None,
    ) -> None:
        self.selector = selectors.DefaultSelector()
        self.stdout_fd = stdout.fileno()
        self.selector.register(stdout, selectors.EVENT_READ)
        self.selector.register(stderr, selectors.EVENT_READ)
        self.tail_chars = tail_chars
        self.tail_bytes = 4 * tail_chars + 4  # UTF-8 uses at most 4 bytes a character
        self.tail = bytearray()
        self.echo = echo
        self.splitters = {stdout.fileno(): _LineSplitter(MAX_RESULT_LINE)}
        if echo is not None:
            self.splitters[stderr.fileno()] = _LineSplitter(MAX_RESULT_LINE)
        self.result_line: str | None = None

    @property
    def open(self) -> bool:
        return bool(self.selector.get_map())

    def read(self, timeout: float) -> None:
        """Read whatever is ready within `timeout` seconds; unregister pipes at EOF."""
        for key, _ in self.selector.select(max(timeout, 0.0)):
            fd = key.fd
            chunk = os.read(fd, _READ_CHUNK)
            if not chunk:
                self.selector.unregister(key.fileobj)
                self._lines(fd, self.splitters[fd].flush() if fd in self.splitters else ())
                continue
            self.tail += chunk
            if len(self.tail) > 2 * self.tail_bytes:  # trim rarely, not per chunk
                del self.tail[: -self.tail_bytes]
            if fd in self.splitters:
                self._lines(fd, self.splitters[fd].feed(chunk))

    def drain(self, limit: float) -> None:
        deadline = time.monotonic() + limit
        while self.open and time.monotonic() < deadline:
            self.read(deadline - time.monotonic())

    def _lines(self, fd: int, lines: Iterable[tuple[bytes, bool]]) -> None:
        for raw, whole in lines:
            text = raw.decode("utf-8", errors="replace")
            if self.echo is not None:
                self.echo(text.rstrip("\r\n"))
            if fd == self.stdout_fd and whole and is_result_line(text):
                self.result_line = text.strip()

    def output_tail(self) -> str:
        if self.tail_chars <= 0:
            return ""
        return bytes(self.tail[-self.tail_bytes :]).decode("utf-8", errors="replace")[
            -self.tail_chars :
        ]

    def close(self) -> None:
        for key in list(self.selector.get_map().values()):
            self.selector.unregister(key.fileobj)
        self.selector.close()


# ---------------------------------------------------------------- running


def run_probe(
    request: RunRequest,
    workdir: Path,
    *,
    timeout: float | None,
    artifacts_dir: Path,
    env: Mapping[str, str] | None = None,
    tail_chars: int = 4000,
    grace: float = 5.0,
    echo: Callable[[str], None] | None = None,
    cancel: threading.Event | None = None,
    scratch: Path | None = None,
) -> Run:
    """Run `request.command` once in `workdir` and return what happened.

    The probe runs as `/bin/sh -c COMMAND` in its own session, so its whole
    process group can be killed: at `timeout`, on any exception while waiting
    (Ctrl-C included, re-raised afterwards), and for children still running
    after it exits. `echo`, when given, receives each output line as it comes;
    `cancel`, once set, stops the probe as Ctrl-C would (for runs in worker threads).
    `scratch`: where the result file's folder goes (default: the system's temp folder).
    """
    # Absolute, because the probe runs in `workdir`, not in our current directory.
    artifacts_dir = artifacts_dir.absolute()
    _empty_dir(artifacts_dir)
    result_dir = Path(tempfile.mkdtemp(prefix="bisector-result-", dir=scratch))
    result_path = result_dir / "result.json"
    probe_env = dict(os.environ if env is None else env)
    probe_env.update(
        BISECTOR_COMMIT=request.commit,
        BISECTOR_SEED=str(request.seed),
        BISECTOR_OVERRIDES=request.overrides_key,
        BISECTOR_RESULT=str(result_path),
        BISECTOR_ARTIFACTS=str(artifacts_dir),
    )
    started_at = time.time()
    start = time.monotonic()
    try:
        proc = subprocess.Popen(
            ["/bin/sh", "-c", request.command],
            cwd=workdir,
            env=probe_env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        assert proc.stdout is not None and proc.stderr is not None
        capture = _Capture(proc.stdout, proc.stderr, tail_chars, echo)
        try:
            deadline = None if timeout is None else start + timeout
            exited_at = _wait(proc, capture, deadline, cancel)
            timed_out = exited_at is None
            # On time out, and for children left running after the probe exited
            # (they may hold our pipes open), the whole group goes.
            if timed_out or capture.open or group_alive(proc.pid):
                kill_process_group(proc.pid, grace)
            capture.drain(_DRAIN_LIMIT)
            returncode = proc.wait()
            duration = (time.monotonic() if exited_at is None else exited_at) - start
        except BaseException:
            kill_process_group(proc.pid, grace)
            proc.wait()
            raise
        finally:
            capture.close()
            proc.stdout.close()
            proc.stderr.close()
        return _judge(
            request,
            returncode,
            timed_out=timed_out,
            timeout=timeout,
            result_path=result_path,
            capture=capture,
            duration=duration,
            started_at=started_at,
            artifacts_dir=artifacts_dir,
        )
    finally:
        shutil.rmtree(result_dir, ignore_errors=True)


def _wait(proc: subprocess.Popen[bytes], capture: _Capture, deadline: float | None,
          cancel: threading.Event | None = None) -> float | None:
    """Read output until the probe is done; return when it exited, None on time out.

    Once the probe itself has exited, the deadline no longer applies: children it
    left holding the pipes get a short linger, then the caller kills them.
    """
    exited_at: float | None = None
    while capture.open:
        if cancel is not None and cancel.is_set():
            raise KeyboardInterrupt  # another thread was interrupted: stop this probe too
        now = time.monotonic()
        if exited_at is None:
            if proc.poll() is not None:
                exited_at = now
            elif deadline is not None and now >= deadline:
                return None
        elif now - exited_at > _LINGER:
            return exited_at
        wait = _POLL if deadline is None or exited_at is not None else deadline - now
        capture.read(min(wait, _POLL))
    # Pipes closed (the probe may have closed them itself): wait for the exit.
    remaining = None if deadline is None else max(deadline - time.monotonic(), 0.0)
    try:
        proc.wait(timeout=remaining)
    except subprocess.TimeoutExpired:
        return None
    return exited_at if exited_at is not None else time.monotonic()


def _judge(
    request: RunRequest,
    returncode: int,
    *,
    timed_out: bool,
    timeout: float | None,
    result_path: Path,
    capture: _Capture,
    duration: float,
    started_at: float,
    artifacts_dir: Path,
) -> Run:
    """Turn an exit code and the captured result into one Run."""
    tail = capture.output_tail()
    metrics: dict[str, float] = {}
    config: dict[str, Any] = {}
    facts: dict[str, Any] = {}
    error = ""
    if timed_out:
        outcome, error = Outcome.TIMEOUT, f"timed out after {timeout:g}s"
    elif returncode == SKIP_EXIT_CODE:
        outcome = Outcome.SKIP
    elif returncode != 0:
        outcome, error = Outcome.FAILED, _failure_message(request.command, returncode, tail)
    else:
        try:
            metrics, config, facts = parse_result(_result_text(result_path, capture))
            outcome = Outcome.OK
        except ProbeProtocolError as e:
            outcome, error = Outcome.INVALID, str(e)
    return Run(
        request=request,
        outcome=outcome,
        exit_code=returncode,
        metrics=metrics,
        config=config,
        facts=facts,
        duration=duration,
        output_tail=tail,
        error=error,
        artifacts=str(artifacts_dir),
        started_at=started_at,
    )


def _result_text(result_path: Path, capture: _Capture) -> str:
    """The result file when the probe wrote one, else the last stdout result line.

    An empty file counts as not written (a framework may create it up front).
    """
    if result_path.exists():
        try:
            text = result_path.read_bytes().decode("utf-8", errors="replace")
        except OSError as e:
            raise ProbeProtocolError(
                f"cannot read $BISECTOR_RESULT ({e.strerror}): write the result JSON there "
                "as a plain file"
            ) from None
        if text.strip() or capture.result_line is None:
            return text
    if capture.result_line is None:
        raise ProbeProtocolError(_NO_RESULT)
    return capture.result_line


def _failure_message(command: str, returncode: int, tail: str) -> str:
    if returncode < 0:
        return f"probe killed by signal {_signal_name(-returncode)}"
    program = _first_word(command)
    if returncode == _NOT_FOUND_EXIT_CODE and "not found" in tail and program in tail:
        return f"probe command not found: {program}: check --probe"
    if returncode == _NOT_EXECUTABLE_EXIT_CODE and "ermission denied" in tail:
        return f"probe command is not executable: {program}: check --probe (chmod +x?)"
    if 128 < returncode < 128 + 65:
        # A shell reports a child killed by signal N as exit 128+N.
        return (
            f"probe exited with code {returncode} "
            f"(128+{returncode - 128}: killed by {_signal_name(returncode - 128)}?)"
        )
    return f"probe exited with code {returncode}"


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def _first_word(command: str) -> str:
    try:
        words = shlex.split(command)
    except ValueError:  # unbalanced quotes: the shell will complain itself
        words = command.split()
    # Skip leading variable assignments, as in `CUDA_VISIBLE_DEVICES= python probe.py`.
    while words and "=" in words[0] and words[0].split("=", 1)[0].isidentifier():
        words = words[1:]
    return words[0] if words else command


def _empty_dir(path: Path) -> None:
    """Make `path` an existing, empty directory (SPEC 3: BISECTOR_ARTIFACTS)."""
    path.mkdir(parents=True, exist_ok=True)
    for entry in path.iterdir():
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()
