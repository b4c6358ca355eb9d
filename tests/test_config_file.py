"""The config file (`bisector.toml`, `[tool.bisector]`, `--config`): what it accepts,
and the one-line usage error (exit 2) for what it does not.

The CLI tests run the real `bisector` in a subprocess from a folder holding the file;
the repository beside it is a real throwaway git history.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from gitrepo import History, probe_cmd, run_cli

from bisector import settings
from bisector.errors import UsageError
from bisector.settings import check_config, for_metric, load_config_file


def write_config(folder: Path, body: str, name: str = "bisector.toml") -> Path:
    path = folder / name
    path.write_text(body, encoding="utf-8")
    return path


def assert_usage_error(folder: Path, *args: str, says: tuple[str, ...]) -> str:
    """Run `bisector find ARGS` in `folder` with and without --json; both must fail
    with exit 2 and one line on stderr containing every text in `says`."""
    plain = run_cli("find", *args, cwd=folder)
    assert plain.returncode == 2, plain.stderr
    assert plain.stdout == ""
    lines = plain.stderr.strip().splitlines()
    assert len(lines) == 1, plain.stderr  # no traceback, no second thought
    for text in says:
        assert text in lines[0], lines[0]

    as_json = run_cli("find", *args, "--json", cwd=folder)
    assert as_json.returncode == 2, as_json.stderr
    error = json.loads(as_json.stdout)
    assert error["status"] == "error" and error["exit_code"] == 2
    assert lines[0] == f"bisector: error: {error['error']}"
    return lines[0]


# Each defect of the audit, as the user wrote it. The file is otherwise complete,
# so only the line under test can stop the hunt.
@pytest.mark.parametrize(("line", "says"), [
    ('min_effect = "big"', ("bisector.toml: min_effect must be a number", 'got "big"')),
    ('jobs = "two"', ("bisector.toml: jobs must be a whole number", "jobs = 2", 'got "two"')),
    ("min_efect = 1.0", ("bisector.toml: unknown key 'min_efect'",
                         "did you mean 'min_effect'?", "known keys: bad, confidence")),
    ('pins = "object_big=false"', ("bisector.toml: pins must be a table like "
                                   '{object_big = false} or a list like ["object_big=false"]',
                                   'got "object_big=false"')),
    ('no_attribute = "false"', ("bisector.toml: no_attribute must be true or false",)),
])
def test_a_bad_line_in_bisector_toml_is_one_usage_error(tmp_path: Path, line: str,
                                                        says: tuple[str, ...]) -> None:
    write_config(tmp_path, f'good = "HEAD~1"\nmetric = "ssim"\nprobe = "python probe.py"\n'
                           f"{line}\n")
    assert_usage_error(tmp_path, "--repo", str(tmp_path), says=says)


def test_pyproject_and_config_option_are_checked_alike(tmp_path: Path) -> None:
    write_config(tmp_path, '[project]\nname = "x"\n\n[tool.bisector]\nmetric = "ssim"\n'
                           "max-runs = 2.5\n", name="pyproject.toml")
    assert_usage_error(tmp_path, "--good", "HEAD", says=(
        "pyproject.toml [tool.bisector]: max_runs must be a whole number", "got 2.5"))

    other = write_config(tmp_path, 'pins = ["object_big"]\n', name="hunt.toml")
    assert_usage_error(tmp_path, "--config", str(other), "--good", "HEAD", says=(
        f'{other}: pins: "object_big" is not "KEY=VALUE"',))


def test_values_from_the_file_reach_the_hunt_and_options_override_them(
        tmp_path: Path) -> None:
    # c1 .. c4 (0.9) -> c5 .. c8 (0.6): first bad is c5
    h = History(tmp_path / "repo")
    shas = h.linear([0.9] * 4 + [0.6] * 4)
    write_config(tmp_path, f'repo = "repo"\ngood = "{shas[0]}"\nmetric = "ssim"\n'
                           f'probe = "{probe_cmd()}"\npins = ["object_big=false"]\n'
                           "min-effect = 0.05\nno_attribute = true\n")
    from_file = run_cli("find", "--json", cwd=tmp_path)
    assert from_file.returncode == 0, from_file.stderr
    result = json.loads(from_file.stdout)
    assert result["first_bad"]["commit"] == shas[4]
    assert result["min_effect"] == 0.05
    assert result["pins"] == {"object_big": False}
    assert result["attribution"] is None  # no_attribute = true

    overridden = run_cli("find", "--json", "--min-effect", "0.2", "--pin", "object_big=true",
                         cwd=tmp_path)
    assert overridden.returncode == 0, overridden.stderr
    result = json.loads(overridden.stdout)
    assert result["min_effect"] == 0.2
    assert result["pins"] == {"object_big": True}
    assert result["first_bad"]["commit"] == shas[4]


def test_find_takes_its_metric_share_of_a_per_metric_table(tmp_path: Path) -> None:
    # nightly's form, in a file find shares: find's primary metric is ssim
    h = History(tmp_path / "repo")
    shas = h.linear([0.9] * 2 + [0.6] * 2)
    write_config(tmp_path, f'[tool.bisector]\nrepo = "repo"\ngood = "{shas[0]}"\n'
                           f'metric = "ssim"\nprobe = "{probe_cmd()}"\nno_attribute = true\n'
                           'min_effect = {ssim = 0.07, mae = 0.5}\n'
                           'direction = ["mae=lower", "ssim=higher"]\n', name="pyproject.toml")
    proc = run_cli("find", "--json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert (result["min_effect"], result["direction"]) == (0.07, "higher")
    assert result["first_bad"]["commit"] == shas[2]


# One value each key accepts and one it refuses: a key added to the table without
# a sample here fails the first assertion below.
SAMPLES: dict[str, tuple[Any, Any]] = {
    "good": ("v1", 1), "bad": ("HEAD", ["HEAD"]), "repo": (".", True),
    "metric": (["ssim", "mae"], 3), "metrics": ("ssim", ["ssim", 3]),
    "direction": ({"ssim": "higher"}, 1), "probe": ("python p.py", ["python", "p.py"]),
    "pin": ({"a": [1, {"b": True}]}, "a=1"), "pins": (["a=1", "b=x"], ["a=1", 2]),
    "min_effect": (["0.1", "mae=0.2", 3], ["mae=big"]), "jobs": (2, 2.0),
    "repeats": (3, "3"), "max_runs": (100, True), "timeout": (1.5, float("inf")),
    "confidence": (0.99, "0.99"), "out": ("reports", 1), "store": ("s.sqlite", False),
    "summary_md": ("s.md", []), "executor": ("dask", 0), "scheduler": ("tcp://h:1", 1),
    "remote": ("https://h/r.git", {}), "gpus": (["0", 1], [0.5]),
    "no_attribute": (False, 0), "first_parent": (True, "true"),
}


def test_every_known_key_is_checked_against_its_kind() -> None:
    assert set(SAMPLES) == set(settings._KEYS)
    for key, (good, bad) in SAMPLES.items():
        accepted = check_config({key: good}, "f.toml")
        assert key in accepted, key
        with pytest.raises(UsageError, match=rf"^f\.toml: {key}\b") as info:
            check_config({key: bad}, "f.toml")
        assert "\n" not in str(info.value)


def test_pins_come_back_as_one_table_whichever_form() -> None:
    listed = check_config({"pins": ["object_big=false", "lr=0.5", "name=x"]}, "f")["pins"]
    table = check_config({"pin": {"object_big": False, "lr": 0.5, "name": "x"}}, "f")["pin"]
    assert listed == table == {"object_big": False, "lr": 0.5, "name": "x"}
    with pytest.raises(UsageError, match="both pin and pins"):
        check_config({"pin": {}, "pins": []}, "f")
    with pytest.raises(UsageError, match="object_big is pinned twice"):
        check_config({"pins": ["object_big=false", "object_big=true"]}, "f")


def test_a_file_without_settings_or_a_broken_tool_table(tmp_path: Path) -> None:
    assert load_config_file(None, tmp_path) == {}
    write_config(tmp_path, '[project]\nname = "x"\n', name="pyproject.toml")
    assert load_config_file(None, tmp_path) == {}
    write_config(tmp_path, 'tool = {bisector = "yes"}\n', name="pyproject.toml")
    with pytest.raises(UsageError, match=r"pyproject.toml \[tool.bisector\] must be a table"):
        load_config_file(None, tmp_path)


def test_for_metric_picks_the_named_value_over_the_bare_one() -> None:
    assert for_metric(["0.1", "ssim=0.3"], "ssim", float) == 0.3
    assert for_metric(["0.1", "ssim=0.3"], "mae", float) == 0.1
    assert for_metric([0.2], "mae", float) == 0.2
    assert for_metric({"ssim": 0.4}, "mae", float) is None
    assert for_metric({"ssim": 0.4}, "ssim", float) == 0.4
    assert for_metric(0.5, "ssim", float) == 0.5
    assert for_metric(None, "ssim", float) is None
