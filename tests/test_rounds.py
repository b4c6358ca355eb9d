"""Fixed costs of a hunt: what it imports before its first probe run, and when.

Real subprocesses and real probes.
"""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path


def test_start_up_imports_stay_light_and_preload_brings_the_rest() -> None:
    # What `find` imports before its first probe run, then what preload() adds while it runs.
    code = (
        "import sys, threading\n"
        "import bisector.cli, bisector.session\n"
        "heavy = ('numpy', 'scipy', 'matplotlib', 'jinja2', 'distributed', 'torch')\n"
        "print([m for m in heavy if m in sys.modules])\n"
        "bisector.session.preload()\n"
        "[t.join() for t in threading.enumerate() if t.name == 'bisector-preload']\n"
        "print([m for m in ('bisector.noisy', 'bisector.report') if m in sys.modules])\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.splitlines()
    assert out == ["[]", "['bisector.noisy', 'bisector.report']"]


class Folder:
    """A Checkout that is just a folder (the probe below needs no commit)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def checkout(self, sha: str) -> None:
        pass


def test_local_executor_tells_when_runs_have_started(tmp_path: Path) -> None:
    from bisector.executors import LocalExecutor
    from bisector.model import RunRequest

    executor = LocalExecutor([Folder(tmp_path)])
    request = RunRequest("0" * 40, f"{sys.executable} -c \"import time; time.sleep(0.5); "
                         "print('{\\\"metrics\\\": {\\\"m\\\": 1}}')\"", 0, {})
    assert not executor.wait_started(1, timeout=0.01)
    done: list[bool] = []
    worker = threading.Thread(target=lambda: done.append(executor.run(
        request, artifacts_dir=tmp_path / "a", timeout=10, cancel=threading.Event()).ok))
    worker.start()
    assert executor.wait_started(1, timeout=5)
    assert not done  # started, not finished: the probe still sleeps
    assert not executor.wait_started(2, timeout=0.05)
    worker.join()
    assert done == [True]
