"""The probe author's kit: read what bisector passes in, write what it reads back.

Owns the probe side of the protocol (SPEC section 3): the overrides and seed
from the environment, seeding every random generator a PyTorch project uses,
the effective config, and the result JSON (written to $BISECTOR_RESULT and
printed as one line on stdout). `evaluate` gives bisector's own metrics.
This module runs inside the user's probe at every commit, so importing it must
stay cheap: torch, TensorFlow and scikit-image are imported only when used,
and nothing here talks to git or the store.

A probe for a PyTorch project:

    from bisector import kit

    kit.seed_everything(kit.seed())
    cfg = kit.config({"object_big": False, "epochs": 2})
    model = train(cfg)
    pred, truth = reconstruct(model)
    kit.report(kit.evaluate(pred, truth), config=cfg, facts={"generator": model.name})
"""

from __future__ import annotations

import importlib.abc
import importlib.util
import json
import math
import os
import random
import re
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

OVERRIDES_ENV = "BISECTOR_OVERRIDES"
SEED_ENV = "BISECTOR_SEED"
RESULT_ENV = "BISECTOR_RESULT"
ARTIFACTS_ENV = "BISECTOR_ARTIFACTS"


def overrides() -> dict[str, Any]:
    """The config overrides of this run ($BISECTOR_OVERRIDES); {} when unset or empty."""
    text = os.environ.get(OVERRIDES_ENV, "").strip()
    if not text:
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(f"{OVERRIDES_ENV} is not valid JSON ({error}): {text[:200]!r}") from None
    if not isinstance(value, dict):
        raise ValueError(f"{OVERRIDES_ENV} must be a JSON object, got: {text[:200]!r}")
    return value


def seed(default: int = 0) -> int:
    """The seed of this run ($BISECTOR_SEED), or `default` outside bisector."""
    text = os.environ.get(SEED_ENV, "").strip()
    if not text:
        return default
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"{SEED_ENV} must be an integer, got {text!r}") from None


def seed_everything(seed: int) -> None:
    """Seed random, NumPy and PyTorch, and ask for determinism.

    PyTorch is seeded now if the probe has imported it, else the moment it is
    imported (an import hook): importing it here would cost a probe that never
    uses it seconds a run. Deterministic algorithms are requested with
    warn_only=True: an op without a deterministic version warns instead of
    failing the run. PYTHONHASHSEED is set for child processes (this process's
    hash seed is fixed at start-up). TensorFlow is seeded only if the project
    has already imported it. The seed is reduced modulo 2**32, the range NumPy
    accepts.
    """
    value = int(seed) % 2**32
    random.seed(value)
    np.random.seed(value)
    os.environ["PYTHONHASHSEED"] = str(value)
    # cuBLAS is deterministic only with a fixed workspace; harmless on CPU.
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch = sys.modules.get("torch")
    if torch is not None:
        _seed_torch(torch, value)
    else:
        _SeedOnImport.arm(value)
    tensorflow = sys.modules.get("tensorflow")
    if tensorflow is not None:
        tensorflow.random.set_seed(value)


def _seed_torch(torch: Any, value: int) -> None:
    torch.manual_seed(value)  # seeds every device, CUDA included
    torch.use_deterministic_algorithms(True, warn_only=True)
    torch.backends.cudnn.deterministic = True
    torch.backends.cudnn.benchmark = False


class _SeedOnImport(importlib.abc.MetaPathFinder):
    """Seeds torch right after its first import (once; the last seed asked for wins)."""

    seed: int | None = None

    @classmethod
    def arm(cls, value: int) -> None:
        cls.seed = value
        if not any(isinstance(f, cls) for f in sys.meta_path):
            sys.meta_path.insert(0, cls())

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> Any:
        if name != "torch":
            return None
        sys.meta_path[:] = [f for f in sys.meta_path if not isinstance(f, _SeedOnImport)]
        spec = importlib.util.find_spec(name)
        if spec is None or spec.loader is None:
            return spec
        loader, seed = spec.loader, type(self).seed
        run = loader.exec_module

        def exec_module(module: Any) -> None:
            run(module)
            if seed is not None:
                _seed_torch(module, seed)

        loader.exec_module = exec_module  # type: ignore[method-assign]
        return spec


def config(defaults: Mapping[str, Any]) -> dict[str, Any]:
    """The effective config: `defaults` updated with this run's overrides.

    An override for a key that is not among `defaults` is left out, with a warning on
    stderr: reporting a key the probe never reads would make a pin (a typo, say) look
    honoured when it is not; bisector then says the probe ignored it. A probe that
    does read more keys lists them, with their defaults, in `defaults`.
    """
    effective = dict(defaults)
    for key, value in overrides().items():
        if key not in effective:
            print(
                f"bisector.kit: override {key!r} is not one of the probe's config keys;"
                " ignored (add it to the defaults if the code reads it)",
                file=sys.stderr,
            )
            continue
        effective[key] = value
    return effective


def report(
    metrics: Mapping[str, Any],
    config: Mapping[str, Any] | None = None,
    facts: Mapping[str, Any] | None = None,
    arrays: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Write the result of this run and return it.

    Metric values may be Python, NumPy or one-element torch numbers; they must
    be finite. The result goes to $BISECTOR_RESULT when set (written to a
    temp file, then renamed, so bisector never reads half a file) and is
    always printed as one JSON line on stdout. Each of `arrays` is saved as
    <name>.npy in $BISECTOR_ARTIFACTS when that is set, and skipped otherwise.
    `config` and `facts` appear in the result only when given.
    """
    result: dict[str, Any] = {"metrics": _metrics(metrics)}
    if config is not None:
        result["config"] = {str(key): _jsonable(value) for key, value in config.items()}
    if facts is not None:
        result["facts"] = {str(key): _jsonable(value) for key, value in facts.items()}
    line = json.dumps(result, sort_keys=True, allow_nan=False)

    artifacts = os.environ.get(ARTIFACTS_ENV, "")
    if arrays and artifacts:
        for name, array in arrays.items():
            np.save(Path(artifacts) / f"{_file_name(name)}.npy", to_numpy(array))
    target = os.environ.get(RESULT_ENV, "")
    if target:
        _write_atomically(Path(target), line + "\n")
    print(line, flush=True)
    return result


def evaluate(pred: Any, truth: Any, crop: int = 0) -> dict[str, float]:
    """bisector.metrics.evaluate on arrays or tensors (PyTorch, TensorFlow)."""
    from bisector import metrics  # scikit-image loads only when metrics are wanted

    return metrics.evaluate(to_numpy(pred), to_numpy(truth), crop=crop)


def to_numpy(value: Any) -> np.ndarray[Any, Any]:
    """A NumPy array from an array, a tensor on any device, or nested lists."""
    if hasattr(value, "detach") and hasattr(value, "cpu"):  # torch.Tensor
        tensor = value.detach().cpu()
        if hasattr(tensor, "resolve_conj"):
            tensor = tensor.resolve_conj().resolve_neg()
        try:
            return np.asarray(tensor.numpy())
        except TypeError:  # bfloat16 and friends have no NumPy dtype
            return np.asarray(tensor.float().numpy())
    if hasattr(value, "numpy") and not isinstance(value, np.ndarray):  # tf.Tensor
        return np.asarray(value.numpy())
    return np.asarray(value)


def _metrics(metrics: Mapping[str, Any]) -> dict[str, float]:
    if not metrics:
        raise ValueError("report needs at least one metric")
    converted: dict[str, float] = {}
    for name, value in metrics.items():
        if not isinstance(name, str) or not name:
            raise ValueError(f"metric names must be non-empty strings, got {name!r}")
        number = _number(value)
        if number is None:
            raise ValueError(f"metric {name!r} is not a number: {value!r}")
        if not math.isfinite(number):
            raise ValueError(f"metric {name!r} is {number}; the protocol needs finite numbers")
        converted[name] = number
    return converted


def _number(value: Any) -> float | None:
    """A float from a Python, NumPy or one-element tensor number; None otherwise."""
    if isinstance(value, (str, bytes)):
        return None
    if hasattr(value, "item") and callable(value.item):
        try:
            value = value.item()
        except (ValueError, RuntimeError):  # more than one element
            return None
    if isinstance(value, complex):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _jsonable(value: Any) -> Any:
    """A JSON value for a config or fact: NumPy and torch values unwrapped, others as text."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, Mapping):
        return {str(key): _jsonable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(item) for item in value]
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, np.generic):
        return _jsonable(value.item())
    if isinstance(value, np.ndarray) or (hasattr(value, "detach") and hasattr(value, "cpu")):
        return _jsonable(to_numpy(value).tolist())
    return str(value)


def _file_name(name: str) -> str:
    """An artifact file name that stays inside the artifacts directory."""
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "_", str(name)).strip("._")
    if not cleaned:
        raise ValueError(f"array name {name!r} gives no usable file name")
    return cleaned


def _write_atomically(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as temp:
            temp.write(text)
        os.replace(temp_name, path)
    except BaseException:
        Path(temp_name).unlink(missing_ok=True)
        raise
