"""A probe's process group: is anything in it still running, and stop all of it.

Owns only signals and /proc reading; bisector.probe starts the processes and decides
when a group must go. POSIX only.
"""

from __future__ import annotations

import os
import signal
import time

_POLL = 0.05  # seconds between checks while a group winds down


def group_alive(pgid: int) -> bool:
    """Whether any live (non-zombie) process is still in the group.

    Zombies count as gone: an orphaned grandchild may stay a zombie for as long
    as whatever reaps orphans here cares to, but it runs nothing.
    """
    try:
        entries = os.listdir("/proc")
    except OSError:
        entries = []
    if not entries:  # no procfs: ask the kernel, zombies included
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    for name in entries:
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue  # exited while we looked
        # Fields after the command name, which is in parentheses and may hold anything.
        fields = stat[stat.rfind(b")") + 2 :].split()
        if len(fields) > 2 and int(fields[2]) == pgid and fields[0] not in (b"Z", b"X"):
            return True
    return False


def kill_process_group(pgid: int, grace: float = 5.0) -> None:
    """SIGTERM the whole group, give it `grace` seconds, then SIGKILL what is left.

    The SIGKILL is in a `finally`, so a second Ctrl-C during the grace period
    still leaves nothing running.
    """
    try:
        _signal_group(pgid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        while group_alive(pgid) and time.monotonic() < deadline:
            time.sleep(_POLL)
    finally:
        _signal_group(pgid, signal.SIGKILL)
    # SIGKILL is asynchronous; wait (briefly) until the kernel has finished the job.
    deadline = time.monotonic() + 1.0
    while group_alive(pgid) and time.monotonic() < deadline:
        time.sleep(0.01)


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass  # group already gone (or only zombies we may not signal)
