"""The report in a real browser: headless Chromium opens it from file://.

Checks what only a browser can tell: the verdict is in the rendered DOM, hostile
commit subjects show as text and run nothing (the title stays, no global is set),
the console stays clean and no request leaves the file system. Talks to Chromium
over the DevTools protocol on a pipe (stdlib only), and also uses the plain
`--dump-dom` and `--screenshot` switches. Skipped only when no Chromium is found.
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import select
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from test_report import EVIL, SUBJECT, make_hostile_store

from bisector.report import render_report
from bisector.store import Store

CHROMIUM = next((p for p in (shutil.which(n) for n in (
    "chromium", "chromium-browser", "google-chrome", "google-chrome-stable")) if p), None)

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no chromium binary found on PATH")


def chromium_args(profile: Path) -> list[str]:
    assert CHROMIUM is not None
    return [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--disable-dev-shm-usage", "--hide-scrollbars", "--mute-audio",
            f"--user-data-dir={profile}"]


class DevTools:
    """A DevTools protocol session over --remote-debugging-pipe (fd 3 in, fd 4 out)."""

    def __init__(self, profile: Path) -> None:
        to_chrome_r, self._to_chrome = os.pipe()
        self._from_chrome, from_chrome_w = os.pipe()
        # Move the child's ends above 10 first, so dup2 onto 3 and 4 cannot clobber them.
        high_r = fcntl.fcntl(to_chrome_r, fcntl.F_DUPFD_CLOEXEC, 10)
        high_w = fcntl.fcntl(from_chrome_w, fcntl.F_DUPFD_CLOEXEC, 10)
        os.close(to_chrome_r)
        os.close(from_chrome_w)

        def wire() -> None:
            os.dup2(high_r, 3)
            os.dup2(high_w, 4)

        self.proc = subprocess.Popen(
            [*chromium_args(profile), "--remote-debugging-pipe", "about:blank"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            preexec_fn=wire, pass_fds=(3, 4), start_new_session=True)
        os.close(high_r)
        os.close(high_w)
        self._buffer = b""
        self._next_id = 0
        self.events: list[dict[str, Any]] = []

    def send(self, method: str, params: dict[str, Any] | None = None,
             session: str | None = None, timeout: float = 15.0) -> dict[str, Any]:
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method,
                                   "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self._to_chrome, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            reply = self._read(deadline)
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                result: dict[str, Any] = reply["result"]
                return result
            self.events.append(reply)

    def wait_for(self, method: str, timeout: float = 15.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        for event in self.events:
            if event.get("method") == method:
                return event
        while True:
            event = self._read(deadline)
            self.events.append(event)
            if event.get("method") == method:
                return event

    def drain(self, seconds: float) -> None:
        """Collect the events that arrive in the next few moments."""
        deadline = time.monotonic() + seconds
        try:
            while True:
                self.events.append(self._read(deadline))
        except TimeoutError:
            pass

    def _read(self, deadline: float) -> dict[str, Any]:
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._from_chrome], [], [], left)[0]:
                raise TimeoutError("chromium did not answer in time")
            chunk = os.read(self._from_chrome, 1 << 16)
            if not chunk:
                raise ConnectionError("chromium closed the DevTools pipe")
            self._buffer += chunk
        raw, self._buffer = self._buffer.split(b"\0", 1)
        message: dict[str, Any] = json.loads(raw)
        return message

    def close(self) -> None:
        try:
            self.send("Browser.close", timeout=5)
        except (OSError, RuntimeError, TimeoutError, ConnectionError):
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, 9)
            self.proc.wait()
        os.close(self._to_chrome)
        os.close(self._from_chrome)


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, str]:
    tmp = tmp_path_factory.mktemp("browser")
    store_path, hunt_id = make_hostile_store(tmp)
    with Store(store_path) as store:
        index = render_report(store, hunt_id, tmp / "report")
        hunt = store.hunt(hunt_id)
    from bisector.summary import verdict_sentence

    return index, f"bisector find {hunt_id}: ssim_amp (found)", verdict_sentence(hunt.result or {})


def test_report_in_chromium_runs_nothing_fetches_nothing_and_logs_nothing(
        report: tuple[Path, str, str], tmp_path: Path) -> None:
    index, title, verdict = report
    url = index.resolve().as_uri()
    tools = DevTools(tmp_path / "profile")
    try:
        target = tools.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = tools.send("Target.attachToTarget",
                             {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Runtime", "Log", "Network", "Page"):
            tools.send(f"{domain}.enable", session=session)
        tools.send("Emulation.setDeviceMetricsOverride", {
            "width": 1280, "height": 900, "deviceScaleFactor": 1, "mobile": False},
            session=session)
        tools.send("Page.navigate", {"url": url}, session=session)
        tools.wait_for("Page.loadEventFired")
        tools.drain(0.5)
        probe = tools.send("Runtime.evaluate", {"returnByValue": True, "expression": """
            JSON.stringify({
              title: document.title,
              verdict: document.getElementById('verdict-sentence').textContent,
              text: document.body.innerText,
              scripts: document.scripts.length,
              pwned: typeof window.__pwned,
              handlers: document.querySelectorAll('[onerror],[onclick],[onload]').length,
              strayImages: [...document.images].filter(i => !i.getAttribute('src')
                                                             .startsWith('artifacts/')).length,
              svgs: document.querySelectorAll('svg.plot').length,
              brokenImages: [...document.images].filter(i => i.complete
                                                             && i.naturalWidth === 0).length,
            })"""}, session=session)
        dom = json.loads(probe["result"]["value"])
        height = tools.send("Page.getLayoutMetrics", session=session)["cssContentSize"]["height"]
        shot = tools.send("Page.captureScreenshot", {
            "format": "png", "captureBeyondViewport": True,
            "clip": {"x": 0, "y": 0, "width": 1280, "height": min(height, 6000), "scale": 1}},
            session=session)
    finally:
        tools.close()
    png = base64.b64decode(shot["data"])
    (tmp_path / "report.png").write_bytes(png)
    assert png.startswith(b"\x89PNG") and len(png) > 20_000

    assert dom["title"] == title
    assert dom["verdict"] == verdict
    assert SUBJECT in dom["text"] and EVIL in dom["text"]
    assert dom["scripts"] == 0 and dom["pwned"] == "undefined" and dom["handlers"] == 0
    assert dom["strayImages"] == 0 and dom["brokenImages"] == 0
    assert dom["svgs"] >= 2

    problems = [e for e in tools.events if e.get("method") in (
        "Runtime.exceptionThrown", "Runtime.consoleAPICalled", "Log.entryAdded")]
    assert problems == []
    requests = [e["params"]["request"]["url"] for e in tools.events
                if e.get("method") == "Network.requestWillBeSent"]
    assert requests and requests[0] == url
    assert all(u.startswith(("file://", "data:")) for u in requests), requests


def test_dump_dom_and_screenshot_switches(report: tuple[Path, str, str], tmp_path: Path) -> None:
    index, title, verdict = report
    url = index.resolve().as_uri()
    dom = subprocess.run([*chromium_args(tmp_path / "p1"), "--dump-dom", url],
                         capture_output=True, text=True, timeout=60)
    assert dom.returncode == 0, dom.stderr[-2000:]
    html = dom.stdout
    assert f"<title>{title}</title>" in html
    assert "<script" not in html.lower()
    assert "&lt;script&gt;window.__pwned=1;document.title='pwned'&lt;/script&gt;" in html
    shot = tmp_path / "shot.png"
    proc = subprocess.run([*chromium_args(tmp_path / "p2"), "--window-size=1280,1600",
                           f"--screenshot={shot}", url],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert shot.read_bytes().startswith(b"\x89PNG") and shot.stat().st_size > 20_000
