"""The HTML report, its Markdown summary and the hunts table, on real stores and real hunts.

Hostile text goes into every field a probe, a commit or a user controls (subjects,
authors, config keys and values, facts, metric names, output tails, artifact
file names, the probe command, pins, attribution keys) and must come out as text.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shlex
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from gitrepo import History, git

from bisector.model import Direction, Outcome, Run, RunRequest
from bisector.report import hunts_table, render_html, render_report, summary_markdown
from bisector.report.artifacts import MAX_FILES_PER_RUN, safe_name
from bisector.report.view import build_view
from bisector.settings import FindSettings
from bisector.store import Hunt, Store
from bisector.summary import verdict_sentence

EVIL = ("<script>window.__pwned=1;document.title='pwned'</script>"
        "<img src=x onerror=\"window.__pwned=2;document.title='pwned'\">")


def evil(label: str) -> str:
    return f"{label} {EVIL} & \"dq\" 'sq' --> ]]> {{{{ 7*7 }}}} | *bold* [x](javascript:alert(3))"


GOOD, C1, CULPRIT, SKIPPED, FAILED, BAD = (hashlib.sha1(n.encode()).hexdigest()
                                           for n in ("good", "c1", "c", "s", "f", "bad"))
PINS = {"mode": evil("pin value")}
COMMAND = "python3 probe.py --tag '<script>alert(4)</script>'"
SUBJECT = evil("subject")
METRIC = "ssim_amp"
ODD_METRIC = evil("metric")
KEY = evil("key")
# Names a probe may give its files; none may escape the report folder or run anything.
ARTIFACT_NAMES = ["recon.png", "<img src=x onerror=alert(5)>.log", "..\\..\\evil",
                  "..hidden", "%2e%2e%2fevil", "new\nline.txt"]
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360f8cfc0f01f0005000201a5dd0f7a0000000049454e44ae426082")


class Clock:
    def __init__(self) -> None:
        self.now = 1_780_000_000.0

    def __call__(self) -> float:
        self.now += 1.0
        return self.now


def _artifacts(root: Path, n: int, secret: Path) -> str:
    folder = root / f"run{n}"
    folder.mkdir(parents=True)
    for name in ARTIFACT_NAMES:
        (folder / name).write_bytes(PNG if name.endswith(".png") else f"file {n}\n".encode())
    (folder / "sub").mkdir()
    (folder / "sub" / "nested.txt").write_text("nested")
    (folder / "stolen").symlink_to(secret)  # a link out of the folder is never copied
    return str(folder)


def make_hostile_store(tmp_path: Path) -> tuple[Path, str]:
    """A stored `find` hunt with hostile text in every field; returns (store path, hunt id)."""
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-CONTENT")
    store_path = tmp_path / "store.sqlite"
    art = tmp_path / "artifacts"  # where Measurer puts them: beside the store
    params = {"repo": str(tmp_path / "repo"), "good": "v1.0", "bad": "HEAD",
              "metrics": [METRIC, "mae_amp"], "direction": "higher", "probe": COMMAND,
              "pins": PINS, "min_effect": None, "jobs": 1, "timeout": 600.0,
              "first_parent": False, "repeats": 3, "attribute": True, "out": None,
              "store": None, "good_sha": GOOD, "bad_sha": BAD}
    n = 0
    with Store(store_path, clock=Clock()) as store:
        hunt_id = store.start_hunt("find", params)

        def add(commit: str, seed: int, value: float | None, role: str, *,
                outcome: Outcome = Outcome.OK, overrides: dict[str, Any] | None = None,
                exit_code: int = 0) -> int:
            nonlocal n
            n += 1
            metrics = {} if value is None else {METRIC: value, "mae_amp": 1 - value,
                                                ODD_METRIC: value * 2}
            run = Run(RunRequest(commit, COMMAND, seed, overrides or PINS), outcome, exit_code,
                      metrics=metrics,
                      config={"object_big": value is not None and value < 0.7, KEY: evil("value"),
                              "nested": {"list": [1, evil("nested")]}, **PINS},
                      facts={evil("fact"): evil("fact value"), "generator": "Hybrid"},
                      duration=1.25 + n / 100, output_tail=evil(f"tail of run {n}") + "\nlast",
                      error="" if outcome is Outcome.OK else evil("error"),
                      artifacts=_artifacts(art, n, secret), started_at=1_780_000_100.0 + n)
            stored = store.add_run(run)
            assert stored.run_id is not None
            store.link_run(hunt_id, stored.run_id, role)
            return stored.run_id

        good_ids = [add(GOOD, s, 0.86 + s / 100, "endpoint-good") for s in range(3)]
        bad_ids = [add(BAD, s, 0.60 + s / 100, "endpoint-bad") for s in range(3)]
        skip_id = add(SKIPPED, 0, None, "search", outcome=Outcome.SKIP, exit_code=125)
        c1_ids = [add(C1, s, 0.85 + s / 100, "search") for s in range(3)]
        fail_ids = [add(FAILED, 0, None, "search", outcome=Outcome.FAILED, exit_code=3)
                    for _ in range(2)]
        culprit_ids = [add(CULPRIT, s, 0.61 + s / 100, "search") for s in range(3)]
        attr_ids = [add(CULPRIT, s, 0.85 + s / 100, "attribute",
                        overrides={**PINS, "object_big": False}) for s in range(3)]

        def step(sha: str, verdict: str, ids: list[int], values: list[float],
                 **extra: Any) -> dict[str, Any]:
            return {"commit": sha, "subject": evil(f"subject of {sha[:4]}"),
                    "author": evil("author"), "date": "2026-02-01T12:00:00+00:00",
                    "verdict": verdict, "n": len(ids),
                    "mean": sum(values) / len(values) if values else None, "values": values,
                    "reason": "" if values else evil("reason"), "run_ids": ids, **extra}

        trail = [
            step(SKIPPED, "skip", [skip_id], [], date="2026-02-01T12:00:01+00:00"),
            step(CULPRIT, "bad", culprit_ids, [0.61, 0.62, 0.63], p_bad=0.999,
                 date="2026-02-01T12:00:04+00:00", subject=SUBJECT),
            step(C1, "good", c1_ids, [0.85, 0.86, 0.87], p_bad=0.001,
                 date="2026-02-01T12:00:02+00:00"),
            step(FAILED, "skip", fail_ids[-1:], [], date="2026-02-01T12:00:03+00:00"),
        ]
        attribution = {
            "verdict": "config", "code_effect": -0.01, "code_ci": [-0.02, 0.0],
            "sentence": evil("attribution sentence"),
            "deltas": [{"key": "object_big", "good": False, "bad": True, "effect": -0.24,
                        "ci": [-0.26, -0.22], "share": 0.96, "significant": True,
                        "controllable": True, "run_ids": attr_ids},
                       {"key": KEY, "good": evil("g"), "bad": evil("b"), "effect": 0.001,
                        "ci": [-0.01, 0.012], "share": 0.0, "significant": False}],
            "interactions": [{"keys": ["object_big", KEY], "effect": -0.005,
                              "ci": [-0.02, 0.01]}],
            "table": [{"code": "good", "commit": C1,
                       "config": {"object_big": False, KEY: evil("g")}, "mean": 0.86, "n": 3,
                       "run_ids": attr_ids},
                      {"config": {"object_big": True, KEY: evil("b")}, "mean": 0.62, "n": 3,
                       "run_ids": culprit_ids}],
        }
        result = {
            "status": "found", "metric": METRIC, "direction": "higher",
            "good": {"commit": GOOD, "mean": 0.87, "n": 3, "sd": 0.01},
            "bad": {"commit": BAD, "mean": 0.61, "n": 3, "sd": 0.01},
            "first_bad": {"commit": CULPRIT, "subject": SUBJECT, "author": evil("author"),
                          "date": "2026-02-01T12:00:04+00:00", "parent": C1, "mean": 0.62,
                          "parent_mean": 0.86, "n": 3, "ci": [-0.25, -0.23],
                          "confidence": 0.9995, "p_regression": 0.9987,
                          "metrics": {METRIC: {"mean": 0.62, "parent_mean": 0.86},
                                      ODD_METRIC: {"mean": 1.24, "parent_mean": 1.72}}},
            "candidates": [], "pins": PINS, "attribution": attribution,
            "regressions": [{"commit": CULPRIT, "subject": SUBJECT, "effect": -0.24,
                             "ci": [-0.25, -0.23], "confidence": 0.9995,
                             "attribution": {"verdict": "config"}},
                            {"commit": BAD, "subject": evil("second"), "effect": -0.03,
                             "ci": [-0.04, -0.02], "confidence": 0.97, "attribution": None}],
            "min_effect": 0.02, "probe_runs": n, "reused_runs": 0, "hunt_id": hunt_id,
            "trail": trail, "report": None,
        }
        assert len(good_ids + bad_ids) == 6
        store.finish_hunt(hunt_id, "found", result)
    return store_path, hunt_id


# --- reading the page back ---------------------------------------------------------------


class Page(HTMLParser):
    """Tags, attributes, ids and text of a page, as a browser's parser would see them."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str]]] = []
        self.chunks: list[str] = []
        self.title = ""
        self._in_title = False
        self.feed(html)
        self.close()
        self.text = "".join(self.chunks)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, {k: v or "" for k, v in attrs}))
        self._in_title = tag == "title"

    def handle_endtag(self, tag: str) -> None:
        self._in_title = False

    def handle_data(self, data: str) -> None:
        self.chunks.append(data)
        if self._in_title:
            self.title += data


def assert_inert(page: Page) -> None:
    """No script, no event handler, no hostile element, no link leaving the folder."""
    names = {tag for tag, _ in page.tags}
    assert not names & {"script", "iframe", "object", "embed", "base", "form", "textarea"}
    for tag, attrs in page.tags:
        for name, value in attrs.items():
            assert not name.startswith("on"), (tag, name)
            if name in ("href", "src", "xlink:href"):
                assert not re.match(r"^[a-z][a-z0-9+.-]*:", value, re.I), (tag, value)
                assert ".." not in value.split("/"), value
        if tag == "img":
            assert attrs["src"].startswith("artifacts/"), attrs
    ids = [attrs["id"] for _, attrs in page.tags if "id" in attrs]
    assert len(ids) == len(set(ids)), "duplicate element ids"


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, Path, str]:
    tmp = tmp_path_factory.mktemp("hostile")
    store_path, hunt_id = make_hostile_store(tmp)
    with Store(store_path) as store:
        index = render_report(store, hunt_id, tmp / "out")
    return store_path, hunt_id, index, index.read_text(encoding="utf-8")


def test_hostile_text_in_every_field_renders_as_text(hostile: tuple[Path, str, Path, str]
                                                     ) -> None:
    store_path, hunt_id, _, html = hostile
    page = Page(html)
    assert_inert(page)
    assert "<script" not in html.lower()
    nested = json.dumps({"list": [1, evil("nested")]}, ensure_ascii=False)
    for text in (SUBJECT, evil("author"), KEY, evil("value"), nested, evil("fact"),
                 evil("fact value"), evil("tail of run 1"), evil("error"), evil("reason"),
                 ODD_METRIC, evil("attribution sentence"), evil("pin value"), evil("second"),
                 "<img src=x onerror=alert(5)>.log", "..\\..\\evil"):
        assert text in page.text, text
    with Store(store_path) as store:
        hunt = store.hunt(hunt_id)
    assert page.title == f"bisector find {hunt_id}: {METRIC} (found)"
    assert verdict_sentence(hunt.result or {}) in page.text


def test_page_is_self_contained(hostile: tuple[Path, str, Path, str]) -> None:
    *_, html = hostile
    page = Page(html)
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", html, re.I)
    assert "@import" not in html and "url(http" not in html
    links = [tag for tag, _ in page.tags if tag == "link"]
    assert links == []
    csp = [a["content"] for t, a in page.tags if a.get("http-equiv") == "Content-Security-Policy"]
    assert csp and "default-src 'none'" in csp[0] and "script-src" not in csp[0]


def test_artifacts_are_copied_under_safe_names_and_links_stay_inside(
        hostile: tuple[Path, str, Path, str]) -> None:
    store_path, hunt_id, index, html = hostile
    out = index.parent
    copied = [p for p in out.rglob("*") if p.is_file() or p.is_symlink()]
    for path in copied:
        assert not path.is_symlink()
        assert path.resolve().is_relative_to(out.resolve())
        assert "TOP-SECRET-CONTENT" not in path.read_bytes().decode("utf-8", "replace")
        if path != index:
            rel = path.relative_to(out).parts
            assert rel[0] == "artifacts" and rel[1].isdigit() and len(rel) == 3, rel
            assert re.fullmatch(r"[A-Za-z0-9_-][A-Za-z0-9._-]*", rel[2]), rel
    page = Page(html)
    hrefs = [a["href"] for t, a in page.tags if t == "a" and a.get("href", "").startswith("art")]
    with Store(store_path) as store:
        runs = store.hunt_runs(hunt_id)
    # every regular file of every run (6 names + sub/nested.txt) is linked and exists
    assert len(hrefs) == len(runs) * (len(ARTIFACT_NAMES) + 1)
    for href in hrefs:
        assert (out / href).is_file()
    assert "symbolic link, not copied" in page.text
    assert (out / "artifacts/1/recon.png").read_bytes() == PNG
    assert (out / "artifacts/1/sub__nested.txt").read_text() == "nested"


@pytest.mark.parametrize("name", ["../../evil", "..", ".", "", "-rf", ".bashrc",
                                  "a/../../b", "..\\..\\evil", "x" * 400 + ".png"])
def test_safe_name_never_climbs_or_hides(name: str) -> None:
    safe = safe_name(name)
    assert re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9._-]*", safe)
    assert "/" not in safe and safe not in (".", "..") and len(safe) <= 120
    assert (Path("/r") / safe).resolve().parent == Path("/r")


def test_artifacts_outside_the_store_folder_are_not_read(tmp_path: Path) -> None:
    # A store imported from elsewhere may name any folder; only <store dir>/artifacts is read.
    private = tmp_path / "home" / ".ssh"
    private.mkdir(parents=True)
    (private / "id_ed25519").write_text("TOP-SECRET-KEY")
    with Store(tmp_path / "s.sqlite") as store:
        hunt_id = store.start_hunt("find", {"metrics": ["m"], "direction": "higher"})
        run = store.add_run(Run(RunRequest(GOOD, "p", 0), Outcome.OK, 0, metrics={"m": 1.0},
                                artifacts=str(private)))
        assert run.run_id is not None
        store.link_run(hunt_id, run.run_id, "endpoint-good")
        store.finish_hunt(hunt_id, "error", {"status": "error", "error": "stopped"})
        index = render_report(store, hunt_id, tmp_path / "out")
    assert not (tmp_path / "out" / "artifacts").exists()
    assert "outside the store's artifacts folder" in Page(index.read_text()).text
    assert "TOP-SECRET-KEY" not in index.read_text()


def test_artifact_count_is_capped(tmp_path: Path) -> None:
    folder = tmp_path / "artifacts" / "many"
    folder.mkdir(parents=True)
    for i in range(MAX_FILES_PER_RUN + 5):
        (folder / f"f{i:04d}.txt").write_text(str(i))
    with Store(tmp_path / "s.sqlite") as store:
        hunt_id = store.start_hunt("find", {"metrics": ["m"], "direction": "higher"})
        run = store.add_run(Run(RunRequest(GOOD, "p", 0), Outcome.OK, 0, metrics={"m": 1.0},
                                artifacts=str(folder)))
        assert run.run_id is not None
        store.link_run(hunt_id, run.run_id, "endpoint-good")
        store.finish_hunt(hunt_id, "error", {"status": "error", "error": "stopped"})
        index = render_report(store, hunt_id, tmp_path / "out")
    assert len(list((tmp_path / "out/artifacts/1").iterdir())) == MAX_FILES_PER_RUN
    assert "more files not copied" in Page(index.read_text()).text


def test_same_store_gives_byte_identical_html(hostile: tuple[Path, str, Path, str],
                                              tmp_path: Path) -> None:
    store_path, hunt_id, _, first = hostile
    with Store(store_path) as store:
        again = render_report(store, "latest", tmp_path / "again").read_text(encoding="utf-8")
    assert again == first
    # A fresh interpreter with another hash seed (set and dict order, matplotlib state).
    code = ("import sys; from pathlib import Path; from bisector.store import Store; "
            "from bisector.report import render_report; "
            "s = Store(Path(sys.argv[1])); print(render_report(s, sys.argv[2], Path(sys.argv[3])))")
    proc = subprocess.run([sys.executable, "-c", code, str(store_path), hunt_id,
                           str(tmp_path / "fresh")], capture_output=True, text=True,
                          env=dict(os.environ, PYTHONHASHSEED="12345"), timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert Path(proc.stdout.strip()).read_text(encoding="utf-8") == first


def test_view_model_reads_every_section(hostile: tuple[Path, str, Path, str]) -> None:
    store_path, hunt_id, *_ = hostile
    with Store(store_path) as store:
        hunt, linked = store.hunt(hunt_id), store.hunt_runs(hunt_id)
    view = build_view(hunt, linked)
    assert view.tone == "found" and view.culprit is not None
    assert "(confidence 0.999); attribution sentence" in view.verdict  # 0.9995 never "1.000"
    # the noisy engine's confidence is given a regression: its probability stands beside it
    assert "confidence 0.999 given a regression (P(regression) 0.998)" in view.step
    assert view.culprit.subject == SUBJECT
    # history order: good, then by commit date (skip 01, c1 02, failed 03, culprit 04), bad
    assert [p.label for p in view.histories[0].points] == [
        s[:7] for s in (GOOD, SKIPPED, C1, FAILED, CULPRIT, BAD)]
    assert view.histories[0].culprit_x == 4 and view.histories[0].parent_x == 2
    assert [h.metric for h in view.histories] == [METRIC, "mae_amp", ODD_METRIC]
    good = view.histories[0].points[0]
    assert good.values == (0.86, 0.87, 0.88) and good.lo is not None and good.lo < 0.86
    # attribution variants (object_big forced false) are not history points
    assert view.histories[0].points[4].values == (0.61, 0.62, 0.63)
    assert [s.p_bad for s in view.trail] == ["", "0.999", "0.001", ""]
    assert view.trail[3].tail.startswith(evil("tail of run 12"))
    assert view.trail[3].decision == "skip"
    a = view.attribution
    assert a is not None and [d.label for d in a.deltas] == ["object_big", KEY]
    bar = a.deltas[0].bar
    assert bar is not None and bar.worse and bar.left < 50 and bar.left + bar.width == 50
    assert bar.lo is not None and bar.hi is not None and bar.lo < bar.left < bar.hi < 50
    assert a.deltas[1].bar is not None and not a.deltas[1].bar.worse
    assert a.table_keys == ("object_big", KEY)
    assert [r.values for r in a.table] == [("false", evil("g")), ("true", evil("b"))]
    assert [r.code for r in a.table] == [f"good {C1[:8]}", "—"]  # a row may not say
    assert {r.key for r in view.config_diff if r.changed} == {"object_big"}
    assert len(view.runs) == len(linked) and len(view.regressions) == 2


def _hunt(result: dict[str, Any] | None, status: str = "running") -> Hunt:
    return Hunt("20260101-000000-abcd", "find", {"metrics": ["loss"], "direction": "lower"},
                status, result, 1_780_000_000.0, None)


@pytest.mark.parametrize("result", [
    None,
    {"status": "interrupted"},
    {"status": "no-regression", "good": {"commit": GOOD, "mean": 1.0, "n": 1},
     "bad": {"commit": BAD, "mean": 1.0, "n": 1}, "min_effect": 0.1, "trail": []},
    {"status": "ambiguous", "candidates": [C1, CULPRIT], "good": {"commit": GOOD},
     "bad": {"commit": BAD}, "trail": [{"commit": C1, "verdict": "skip", "values": []}]},
    {"status": "found", "first_bad": {"commit": CULPRIT, "mean": "bogus", "ci": "x",
                                      "metrics": {"loss": None}},
     "attribution": {"deltas": [{"key": None, "effect": float("nan")}], "table": "x"},
     "trail": [None, {"commit": C1, "n": "3", "values": ["a", None]}], "regressions": [7]},
])
def test_missing_or_odd_pieces_render_gracefully(result: dict[str, Any] | None) -> None:
    hunt = _hunt(result, status=(result or {}).get("status", "running"))
    view = build_view(hunt, [])
    page = Page(render_html(view))
    assert_inert(page)
    assert view.verdict in page.text and "loss" in view.verdict
    assert "Direction" in page.text and "lower is better" in page.text
    if result is None:
        assert "still running" in view.verdict and view.tone == "warn"
    if result and result["status"] == "ambiguous":
        assert [c.sha for c, _ in view.candidates] == [C1, CULPRIT]
        assert "Candidates" in page.text


def test_trail_positions_give_history_order() -> None:
    trail = [{"commit": C1, "verdict": "good", "values": [1.0], "position": 7,
              "date": "2026-01-01T00:00:09+00:00"},
             {"commit": CULPRIT, "verdict": "bad", "values": [0.5], "position": 3,
              "date": "2026-01-01T00:00:01+00:00"}]
    runs = [(role, Run(RunRequest(sha, "p", 0), Outcome.OK, 0, metrics={"loss": v}, run_id=i))
            for i, (role, sha, v) in enumerate([("endpoint-good", GOOD, 1.0),
                                                ("search", C1, 1.0), ("search", CULPRIT, 0.5),
                                                ("endpoint-bad", BAD, 0.5)], start=1)]
    result = {"status": "found", "good": {"commit": GOOD}, "bad": {"commit": BAD},
              "trail": trail}
    view = build_view(_hunt(result, "found"), runs)
    assert [p.label for p in view.histories[0].points] == [GOOD[:7], CULPRIT[:7], C1[:7],
                                                           BAD[:7]]
    assert view.history_order == "history order"
    # No positions: commit dates decide (C1 is later than CULPRIT).
    for t in trail:
        del t["position"]
    view = build_view(_hunt(result, "found"), runs)
    assert [p.label for p in view.histories[0].points][1:3] == [CULPRIT[:7], C1[:7]]
    assert view.history_order == "commit-date order"


# --- a real hunt ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def real_hunt(tmp_path_factory: pytest.TempPathFactory) -> tuple[History, list[str], Path, str]:
    from bisector.session import FindSession

    # c1..c6 (0.9) -> c7 ("<b>bold</b> change", 0.6) .. c12; noisy: 3 seeds per commit
    tmp = tmp_path_factory.mktemp("real")
    h = History(tmp / "repo")
    shas = [h.commit(value=0.9, noise=0.01) for _ in range(6)]
    shas.append(h.commit("<b>bold</b> change <script>alert(1)</script>", value=0.6, noise=0.01))
    shas += [h.commit(value=0.6, noise=0.01) for _ in range(5)]
    settings = FindSettings(repo=h.path, good=shas[0], bad=shas[-1], metrics=("ssim", "mae"),
                            direction=Direction.HIGHER, probe=f"{sys.executable} probe.py",
                            store=tmp / "store.sqlite", out=tmp / "session-report")
    result = FindSession(settings).run()
    assert result["status"] == "found" and result["first_bad"]["commit"] == shas[6]
    with Store(tmp / "store.sqlite") as store:
        index = render_report(store, result["hunt_id"], tmp / "report")
    return h, shas, index, result["hunt_id"]


def test_real_hunt_report_shows_verdict_trail_plots_and_runs(
        real_hunt: tuple[History, list[str], Path, str]) -> None:
    h, shas, index, hunt_id = real_hunt
    html = index.read_text(encoding="utf-8")
    page = Page(html)
    assert_inert(page)
    with Store(h.path.parent / "store.sqlite") as store:
        hunt, linked = store.hunt(hunt_id), store.hunt_runs(hunt_id)
    result = hunt.result or {}
    assert verdict_sentence(result) in page.text
    assert "<b>bold</b> change <script>alert(1)</script>" in page.text
    assert html.count("<svg") == 2  # ssim and mae
    for step in result["trail"]:
        assert step["commit"][:8] in page.text
    run_ids = [a["id"] for t, a in page.tags
               if t == "details" and a.get("id", "").startswith("run-")]
    assert run_ids == [f"run-{run.run_id}" for _, run in linked]


def test_reproduce_commands_rerun_exactly(real_hunt: tuple[History, list[str], Path, str]
                                          ) -> None:
    h, shas, index, hunt_id = real_hunt
    store_path = h.path.parent / "store.sqlite"
    with Store(store_path) as store:
        hunt, linked = store.hunt(hunt_id), store.hunt_runs(hunt_id)
    view = build_view(hunt, linked)
    role, run = max(linked, key=lambda pair: pair[1].request.seed)  # a non-default seed
    command = next(r.reproduce for r in view.runs if r.id == run.run_id)
    words = shlex.split(command)
    assert words[:2] == ["bisector", "probe"]
    proc = subprocess.run([sys.executable, "-m", "bisector", *words[1:],
                           "--store", str(h.path.parent / "probe.sqlite")],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert f'"ssim": {run.metrics["ssim"]!r}' in proc.stdout
    # The hunt's command finds the same culprit, reusing every stored run.
    words = shlex.split(view.command)
    assert words[:2] == ["bisector", "find"] and "--store" in words
    proc = subprocess.run([sys.executable, "-m", "bisector", *words[1:], "--json"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert f'"commit": "{shas[6]}", "subject"' in proc.stdout
    assert '"probe_runs": 0' in proc.stdout
    assert git(h.path, "status", "--porcelain") == ""


# --- Markdown and the hunts table -------------------------------------------------------


def test_summary_markdown_is_inert_and_complete(hostile: tuple[Path, str, Path, str]) -> None:
    store_path, hunt_id, *_ = hostile
    with Store(store_path) as store:
        result = store.hunt(hunt_id).result or {}
    text = summary_markdown(result, "reports/x y/index.html")
    assert "<" not in text and ">" not in text.replace("→", "")
    body, _, link = text.partition("Report: ")
    assert not re.search(r"(?<!\\)\](\(|:)", body)  # no link but ours
    assert f"`{CULPRIT[:8]}`" in text and "0.86" in text and "0.62" in text
    assert "Report: [reports/x y/index.html](reports/x%20y/index.html)" in text
    for table in re.findall(r"(?:^\|.*\n?)+", text, flags=re.M):
        # escaped pipes keep every row of a table at its column count
        counts = {len(re.findall(r"(?<!\\)\|", line)) for line in table.splitlines()}
        assert len(counts) == 1, table
    assert "object\\_big" in text and "+0.001" in text and "96%" in text
    assert "confidence 0.999 given a regression (P(regression) 0.998)." in text


def test_hunts_table_lists_hunts_and_strips_control_characters(tmp_path: Path) -> None:
    with Store(tmp_path / "s.sqlite", clock=Clock()) as store:
        assert "no stored hunts" in hunts_table(store)
        first = store.start_hunt("find", {"metrics": ["ssim\x1b[31m"], "good_sha": GOOD,
                                          "bad_sha": BAD})
        store.finish_hunt(first, "found", {"first_bad": {"commit": CULPRIT,
                                                         "subject": "fix\x07\nthing"}})
        second = store.start_hunt("find", {"metrics": ["loss"], "good": "v1", "bad": "HEAD"})
        table = hunts_table(store)
    lines = table.splitlines()
    assert lines[0].split() == ["HUNT", "CREATED", "(UTC)", "KIND", "STATUS", "METRIC",
                                "RANGE", "CULPRIT"]
    assert lines[1].startswith(second) and "running" in lines[1] and "v1..HEAD" in lines[1]
    assert lines[2].startswith(first) and f"{GOOD[:8]}..{BAD[:8]}" in lines[2]
    assert f"{CULPRIT[:8]} fix??thing" in lines[2]
    assert "\x1b" not in table and "\x07" not in table and len(lines) == 3


def test_no_regression_names_the_threshold_only_when_one_was_applied() -> None:
    base = {"status": "no-regression", "metric": "mae", "direction": "lower",
            "good": {"commit": GOOD, "mean": 0.1, "n": 16}, "bad": {"commit": BAD, "mean": 0.1}}
    assert verdict_sentence({**base, "min_effect": 0.02}).endswith(
        "the change is within 0.02.")
    assert verdict_sentence({**base, "min_effect": None}).endswith("no step shown.")


def test_summary_markdown_gives_findings_json_values_and_notes() -> None:
    result = {"status": "found", "metric": "ssim", "direction": "higher",
              "good": {"commit": GOOD, "mean": 0.9}, "bad": {"commit": BAD, "mean": 0.6},
              "first_bad": {"commit": CULPRIT, "subject": "s", "mean": 0.6,
                            "parent_mean": 0.9, "effect": -0.3, "ci": [-0.32, -0.28],
                            "confidence": 0.999},
              "attribution": {"verdict": "config", "deltas": [
                  {"key": "object_big", "good": False, "bad": True, "effect": -0.3,
                   "share": 1.0, "finding": "matters"},
                  {"key": "probe_big", "good": False, "bad": True, "effect": 0.0,
                   "share": 0.0, "finding": "no effect"}],
                  "notes": ["the good code ignores object_big"]}}
    text = summary_markdown(result, None)
    assert "| object\\_big | false → true | -0.3 | 100% | matters |" in text
    assert "| probe\\_big | false → true |" in text and "| no effect |" in text
    assert "False" not in text
    assert "Note: the good code ignores object\\_big" in text


def test_hunts_table_names_a_nights_culprit(tmp_path: Path) -> None:
    with Store(tmp_path / "s.sqlite", clock=Clock()) as store:
        night = store.start_hunt("nightly", {"metrics": ["ssim"], "rev": BAD})
        store.finish_hunt(night, "regression", {
            "first_bad": None, "regressions": [
                {"metric": "ssim", "commit": CULPRIT, "subject": "night's culprit"}]})
        table = hunts_table(store)
    assert f"{CULPRIT[:8]} night's culprit" in table.splitlines()[1]
