"""bisector.kit and bisector.pytest_probe: the probe side of the protocol, run for real."""

from __future__ import annotations

import json
import os
import random
import re
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from bisector import kit, metrics
from bisector.pytest_probe import measure, parse_value

PROBE_ENV = ("BISECTOR_OVERRIDES", "BISECTOR_SEED", "BISECTOR_RESULT", "BISECTOR_ARTIFACTS")


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (*PROBE_ENV, "PYTHONHASHSEED", "CUBLAS_WORKSPACE_CONFIG"):
        monkeypatch.delenv(name, raising=False)  # restored after the test


@pytest.fixture
def torch_state() -> Iterator[None]:
    """seed_everything flips global torch switches; put them back."""
    deterministic = torch.are_deterministic_algorithms_enabled()
    warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    cudnn = (torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark)
    yield
    torch.use_deterministic_algorithms(deterministic, warn_only=warn_only)
    torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = cudnn


def last_json_line(text: str) -> dict[str, Any]:
    line = text.strip().splitlines()[-1]
    value = json.loads(line)
    assert isinstance(value, dict)
    return value


# --- environment -------------------------------------------------------------


def test_overrides_read_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    assert kit.overrides() == {}
    monkeypatch.setenv("BISECTOR_OVERRIDES", "  ")
    assert kit.overrides() == {}
    monkeypatch.setenv("BISECTOR_OVERRIDES", '{"object_big": false, "lr": 0.5, "name": "x"}')
    assert kit.overrides() == {"object_big": False, "lr": 0.5, "name": "x"}


@pytest.mark.parametrize(
    ("text", "message"),
    [("{object_big: true}", "not valid JSON"), ("[1, 2]", "must be a JSON object")],
)
def test_malformed_overrides_are_refused(
    monkeypatch: pytest.MonkeyPatch, text: str, message: str
) -> None:
    monkeypatch.setenv("BISECTOR_OVERRIDES", text)
    with pytest.raises(ValueError, match=f"BISECTOR_OVERRIDES .*{message}"):
        kit.overrides()


def test_seed_reads_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    assert kit.seed() == 0 and kit.seed(default=7) == 7
    monkeypatch.setenv("BISECTOR_SEED", "42")
    assert kit.seed(default=7) == 42
    monkeypatch.setenv("BISECTOR_SEED", "4x")
    with pytest.raises(ValueError, match="BISECTOR_SEED must be an integer"):
        kit.seed()


def test_config_is_defaults_updated_with_overrides(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    defaults = {"object_big": True, "probe_big": False, "epochs": 2}
    assert kit.config(defaults) == defaults
    monkeypatch.setenv("BISECTOR_OVERRIDES", '{"object_big": false, "pad_object": true}')
    effective = kit.config(defaults)
    # a key the probe does not know is not reported as used: a mistyped pin is caught
    assert effective == {"object_big": False, "probe_big": False, "epochs": 2}
    assert defaults["object_big"] is True  # the caller's mapping is left alone
    assert "'pad_object' is not one of the probe's config keys; ignored" in \
        capsys.readouterr().err


def test_seed_everything_repeats_every_generator(torch_state: None) -> None:
    def draws() -> tuple[float, float, list[float]]:
        return random.random(), float(np.random.rand()), torch.rand(3).tolist()

    kit.seed_everything(1234)
    first = draws()
    kit.seed_everything(1234)
    assert draws() == first
    kit.seed_everything(1235)
    assert draws() != first
    assert torch.are_deterministic_algorithms_enabled()
    assert torch.backends.cudnn.deterministic and not torch.backends.cudnn.benchmark
    assert os.environ["PYTHONHASHSEED"] == "1235"
    kit.seed_everything(-1)  # reduced into NumPy's range rather than refused
    assert os.environ["PYTHONHASHSEED"] == str(2**32 - 1)


def test_torch_imported_after_seeding_is_seeded_and_never_imported_for_nothing() -> None:
    code = ("import sys, bisector.kit as kit; kit.seed_everything(7); "
            "loaded = 'torch' in sys.modules; import torch; "
            "print(loaded, torch.initial_seed(), torch.are_deterministic_algorithms_enabled())")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True)
    assert done.stdout.split() == ["False", "7", "True"]


def test_importing_the_kit_loads_neither_torch_nor_skimage() -> None:
    code = "import sys, bisector.kit; print(sorted({'torch', 'skimage'} & set(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


# --- report ------------------------------------------------------------------


def test_report_writes_the_result_file_and_one_stdout_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    result_file = tmp_path / "out" / "result.json"
    artifacts = tmp_path / "artifacts"
    artifacts.mkdir()
    monkeypatch.setenv("BISECTOR_RESULT", str(result_file))
    monkeypatch.setenv("BISECTOR_ARTIFACTS", str(artifacts))
    image = np.arange(12.0).reshape(3, 4)

    returned = kit.report(
        {"ssim_amp": np.float32(0.5), "mae_amp": torch.tensor(0.25), "steps": 3},
        config={"object_big": np.bool_(True), "shape": (64, 64), "lr": np.float64(0.1)},
        facts={"generator": "HybridResnet", "weights": torch.tensor([1.0, 2.0])},
        arrays={"pred/amp": image, "truth": torch.ones(2, 2)},
    )

    expected = {
        "metrics": {"ssim_amp": 0.5, "mae_amp": 0.25, "steps": 3.0},
        "config": {"object_big": True, "shape": [64, 64], "lr": 0.1},
        "facts": {"generator": "HybridResnet", "weights": [1.0, 2.0]},
    }
    assert returned == expected
    assert all(type(value) is float for value in returned["metrics"].values())
    assert json.loads(result_file.read_text()) == expected
    assert last_json_line(capsys.readouterr().out) == expected
    assert sorted(p.name for p in result_file.parent.iterdir()) == ["result.json"]  # no temp left
    np.testing.assert_array_equal(np.load(artifacts / "pred_amp.npy"), image)
    np.testing.assert_array_equal(np.load(artifacts / "truth.npy"), np.ones((2, 2)))


def test_report_outside_bisector_only_prints(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    returned = kit.report({"loss": 1.5}, arrays={"x": np.zeros(2)})
    assert returned == {"metrics": {"loss": 1.5}}
    assert last_json_line(capsys.readouterr().out) == returned
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("metrics_in", "message"),
    [
        ({}, "at least one metric"),
        ({"ssim": float("nan")}, "finite"),
        ({"ssim": np.float64("inf")}, "finite"),
        ({"ssim": "0.5"}, "not a number"),
        ({"ssim": np.ones(3)}, "not a number"),
    ],
)
def test_report_refuses_what_the_protocol_cannot_carry(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, metrics_in: dict[str, Any], message: str
) -> None:
    result_file = tmp_path / "result.json"
    monkeypatch.setenv("BISECTOR_RESULT", str(result_file))
    with pytest.raises(ValueError, match=message):
        kit.report(metrics_in)
    assert not result_file.exists()


def test_evaluate_takes_tensors_with_gradients() -> None:
    rng = np.random.default_rng(0)
    truth = (1 + rng.random((16, 16))) * np.exp(1j * rng.normal(0, 0.3, (16, 16)))
    pred = truth + 0.05 * rng.normal(size=(16, 16))
    pred_tensor = torch.tensor(pred, requires_grad=True)
    from_tensors = kit.evaluate(pred_tensor * 1, torch.tensor(truth.conj()).conj(), crop=2)
    assert from_tensors == metrics.evaluate(pred, truth, crop=2)
    half = kit.evaluate(torch.tensor(np.abs(pred)).to(torch.bfloat16), np.abs(truth))
    assert 0.0 < half["mae_amp"] < 0.1


def test_a_ten_line_probe_repeats_under_the_same_seed(tmp_path: Path) -> None:
    probe = tmp_path / "probe.py"
    probe.write_text(
        textwrap.dedent(
            """
            import torch
            from bisector import kit

            kit.seed_everything(kit.seed())
            cfg = kit.config({"noise": 0.1, "size": 16})
            truth = torch.rand(cfg["size"], cfg["size"]) + 0.5
            pred = truth + cfg["noise"] * torch.randn(cfg["size"], cfg["size"])
            kit.report(kit.evaluate(pred, truth), config=cfg, facts={"torch": torch.__version__})
            """
        )
    )

    # Three runs at once (each pays for importing torch): the same seed twice,
    # then the same seed with an override.
    runs = [(3, "{}"), (3, "{}"), (3, '{"noise": 0.3}')]
    started = []
    for index, (seed, overrides) in enumerate(runs):
        result_file = tmp_path / f"result-{index}.json"
        env = {
            **os.environ,
            "BISECTOR_SEED": str(seed),
            "BISECTOR_OVERRIDES": overrides,
            "BISECTOR_RESULT": str(result_file),
        }
        process = subprocess.Popen(
            [sys.executable, str(probe)], env=env, stdout=subprocess.PIPE, text=True
        )
        started.append((process, result_file))
    results = []
    for process, result_file in started:
        stdout, _ = process.communicate(timeout=120)
        assert process.returncode == 0
        written = json.loads(result_file.read_text())
        assert last_json_line(stdout) == written
        results.append(written)

    first, again, noisier = results
    assert first == again
    assert first["config"] == {"noise": 0.1, "size": 16}
    assert noisier["config"] == {"noise": 0.3, "size": 16}
    assert noisier["metrics"]["mae_amp"] > first["metrics"]["mae_amp"]
    assert set(first["metrics"]) == {"mae_amp", "mse_amp", "ssim_amp", "psnr_amp", "frc50"}


# --- pytest adapter ----------------------------------------------------------

TEST_PROJECT = {
    "conftest.py": """
        def pytest_addoption(parser):
            parser.addoption("--size", default="8")
        """,
    "tests/test_model.py": """
        import json, os
        import pytest

        def test_metrics(record_property, request):
            overrides = json.loads(os.environ.get("BISECTOR_OVERRIDES") or "{}")
            record_property("metric.ssim_amp", 0.75)
            record_property("metric.size", int(request.config.getoption("--size")))
            record_property("epochs", 3)
            record_property("config.object_big", overrides.get("object_big", True))
            record_property("config.shape", (64, 64))
            record_property("fact.generator", "HybridResnetGeneratorModule")
            record_property("fact.seed", os.environ.get("BISECTOR_SEED"))

        def test_below_threshold(record_property):
            record_property("ssim_amp", 0.6)
            assert 0.6 > 0.8, "ssim below threshold"

        def test_skipped(record_property):
            pytest.skip("needs a GPU")

        @pytest.fixture
        def broken():
            raise RuntimeError("dataset missing")

        def test_errored(broken, record_property):
            record_property("ssim_amp", 0.5)

        def test_no_metric(record_property):
            record_property("note", "tensor(0.5000)")

        @pytest.mark.parametrize("size", [1, 2])
        def test_many(size, record_property):
            record_property("ssim_amp", size)
        """,
}


@pytest.fixture(scope="module")
def test_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("project")
    for name, text in TEST_PROJECT.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return root


def run_pytest_probe(
    project: Path, *args: str, env: dict[str, str] | None = None
) -> tuple[subprocess.CompletedProcess[str], Path]:
    result_file = project / "result.json"
    result_file.unlink(missing_ok=True)
    full_env = {**os.environ, "BISECTOR_RESULT": str(result_file), **(env or {})}
    done = subprocess.run(
        [sys.executable, "-m", "bisector.pytest_probe", *args],
        cwd=project,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    return done, result_file


def test_pytest_probe_reports_recorded_properties(test_project: Path) -> None:
    done, result_file = run_pytest_probe(
        test_project,
        "tests/test_model.py::test_metrics",
        "--metric-prefix",
        "metric.",
        "--",
        "--size=12",
        env={"BISECTOR_OVERRIDES": '{"object_big": false}', "BISECTOR_SEED": "5"},
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(result_file.read_text())
    assert result == {
        "metrics": {"ssim_amp": 0.75, "size": 12.0},
        "config": {"object_big": False, "shape": [64, 64]},
        "facts": {
            "generator": "HybridResnetGeneratorModule",
            "seed": 5,
            "epochs": 3,
            "pytest_outcome": "passed",
            "pytest_nodeid": "tests/test_model.py::test_metrics",
        },
    }
    # stdout carries the result line alone; pytest's own output went to stderr.
    assert done.stdout.strip().splitlines() == [json.dumps(result, sort_keys=True)]
    assert "1 passed" in done.stderr


def test_pytest_probe_reports_a_failed_threshold_as_a_measurement(test_project: Path) -> None:
    done, result_file = run_pytest_probe(test_project, "tests/test_model.py::test_below_threshold")
    assert done.returncode == 0, done.stderr
    result = json.loads(result_file.read_text())
    assert result["metrics"] == {"ssim_amp": 0.6}
    assert result["facts"]["pytest_outcome"] == "failed"


def test_measure_works_in_process_with_captured_stderr(
    test_project: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Under pytest's capture sys.stderr has no file descriptor to hand to the child.
    monkeypatch.chdir(test_project)
    found = measure("tests/test_model.py::test_below_threshold")
    assert found.metrics == {"ssim_amp": 0.6}
    assert found.facts["pytest_outcome"] == "failed"
    assert "ssim below threshold" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("node", "code", "message"),
    [
        ("test_skipped", 125, "was skipped: needs a GPU"),
        ("test_errored", 1, "errored: .*dataset missing"),
        ("test_no_metric", 1, "recorded no numeric property.*note='tensor"),
        ("test_many", 1, "selects 2 tests"),
        ("test_missing", 1, "ran no test"),
    ],
)
def test_pytest_probe_without_a_measurement_exits_nonzero(
    test_project: Path, node: str, code: int, message: str
) -> None:
    done, result_file = run_pytest_probe(test_project, f"tests/test_model.py::{node}")
    assert done.returncode == code
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("bisector.pytest_probe: ")
    assert re.search(message, last), last
    assert not result_file.exists() and done.stdout.strip() == ""


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("0.5", 0.5),
        ('{"a": [1, 2]}', {"a": [1, 2]}),
        ("True", True),
        ("FALSE", False),
        ("None", None),
        ("(64, 64)", [64, 64]),
        ("{'mode': 'real_imag'}", {"mode": "real_imag"}),
        ("HybridResnet", "HybridResnet"),
        ("NaN", "NaN"),
        ("{1, 2}", "{1, 2}"),
    ],
)
def test_parse_value_reads_what_record_property_wrote(text: str, value: Any) -> None:
    assert parse_value(text) == value
