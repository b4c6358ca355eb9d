"""The demo project's history, commit by commit, as data.

Owns what the demo repository contains: forty steps, each a subject, an
author, and file changes (a template put in place, or one exact text
edit). The commit marked CULPRIT starts passing object_big, probe_big and
pad_object to the PyTorch trainer; the one marked UNTESTABLE leaves the model
module unimportable. Every other step keeps the numbers the probe reports at
a fixed seed bit for bit. Nothing here runs git or writes files.
"""

from __future__ import annotations

from bisector.demo.changes import CULPRIT, UNTESTABLE, Edit, Put, Step

MIRA = ("Mira Chen", "mira.chen@example.com")
TOMAS = ("Tomas Berg", "tomas.berg@example.com")

_INITIAL = (
    Put("README.md"),
    Put(".gitignore", "gitignore"),
    Put("probe.py"),
    Put("ptycho/__init__.py"),
    Put("ptycho/config.py"),
    Put("ptycho/data.py"),
    Put("ptycho/physics.py"),
    Put("ptycho/model.py"),
    Put("ptycho/optim.py"),
    Put("ptycho/train.py"),
    Put("ptycho/runner.py"),
)

_SCAN_BEFORE = """    probe = disk_probe(PROBE_SIZE)
    grid = np.arange(0, OBJECT_SIZE - PROBE_SIZE + 1, SCAN_STEP, dtype=np.float64)
    rows, cols = np.meshgrid(grid, grid, indexing="ij")
    positions = np.stack([rows.ravel(), cols.ravel()], axis=1)
    positions = np.clip(positions + rng.uniform(-0.45, 0.45, positions.shape), 0, grid[-1])
    positions_t = torch.tensor(positions, dtype=torch.float32)
"""
_SCAN_AFTER = """    probe = disk_probe(PROBE_SIZE)
    positions_t = scan_positions(rng)
"""
_SCAN_FUNCTION = '''def scan_positions(rng: np.random.Generator) -> torch.Tensor:
    """A raster scan with sub-pixel jitter, as (row, col) of each patch's corner."""
    grid = np.arange(0, OBJECT_SIZE - PROBE_SIZE + 1, SCAN_STEP, dtype=np.float64)
    rows, cols = np.meshgrid(grid, grid, indexing="ij")
    positions = np.stack([rows.ravel(), cols.ravel()], axis=1)
    positions = np.clip(positions + rng.uniform(-0.45, 0.45, positions.shape), 0, grid[-1])
    return torch.tensor(positions, dtype=torch.float32)


def simulate('''

_CONFIG_BEFORE = """    generator: str = "hybrid_resnet"
    n_steps: int = 80
    learning_rate: float = 0.05
    n_filters: int = 8
    nphotons: int = 10000
    object_big: bool = True
    probe_big: bool = True
    pad_object: bool = True
"""
_CONFIG_AFTER = """    generator: str = "hybrid_resnet"  # or "cnn"
    n_steps: int = 80  # optimizer steps; the training budget is fixed
    learning_rate: float = 0.05
    n_filters: int = 8  # width of the generator network
    nphotons: int = 10000  # photons per diffraction pattern
    object_big: bool = True  # reassembly forward model (TF default)
    probe_big: bool = True  # full-resolution branch in the CNN decoder (TF default)
    pad_object: bool = True  # reflection padding before the generator's convolutions
"""

_ENERGY_ASSERT = (
    "    assert torch.allclose(energy, patches.abs().square().sum(dim=(-2, -1)), rtol=1e-4)\n"
)
_REASSEMBLE_TESTS = """

def test_reassembling_patches_of_a_constant_gives_the_constant():
    obj = torch.full((16, 16), 0.5 + 0.25j, dtype=torch.complex64)
    positions = torch.tensor([[0.0, 0.0], [0.5, 7.25], [7.75, 3.5], [8.0, 8.0]])
    scan = BilinearScan(positions, 8, 16)
    big = scan.reassemble(scan.extract(obj))
    covered = big.abs() > 0
    assert torch.allclose(big[covered], obj[covered], atol=1e-5)
"""

_RUNNER_CLI = """

def main() -> None:
    import argparse

    parser = argparse.ArgumentParser(description="Train once and print the final loss.")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    result = run(TrainingConfig(), seed=args.seed)
    print(f"loss={result.loss:.6g} settings={result.settings}")


if __name__ == "__main__":
    main()
"""

_README_CLI = """
Train from the command line (prints the final loss and the settings used):

    python -m ptycho.runner --seed 3
"""

_README_DEFAULTS = """
## Defaults

`TrainingConfig` keeps the TF model's defaults: `object_big=True`,
`probe_big=True`, `pad_object=True`. The PyTorch trainer has its own
defaults for every key of its payload (see `TRAINING_DEFAULTS` in
`ptycho/train.py`).
"""

_README_PAYLOAD = """
## The training payload

`ptycho.runner.training_payload` turns a `TrainingConfig` into the dict the
trainer reads. The trainer reports the settings it actually used in
`TrainResult.settings`; `probe.py` reports those, not the config it asked for.
"""

_README_TROUBLE = """
## Troubleshooting

- Metrics differ between two machines at the same seed: check the torch
  version; the probe runs single-threaded so thread count does not matter.
- `probe.py` exits 125: the project does not import at this commit.
"""

_CHANGELOG_PAYLOAD = """## Unreleased

- The runner now passes object_big, probe_big and pad_object to the PyTorch
  trainer; before, the trainer's own defaults (all False) were used.
"""

STEPS: tuple[Step, ...] = (
    Step(
        "Initial lines-ptycho project: simulated scan, generator training, probe",
        _INITIAL,
        body="A lines object (amplitude and phase), a soft disk probe, a 5x5 raster\n"
        "scan with sub-pixel jitter and Poisson-noisy diffraction. A hybrid ResNet\n"
        "generator is fitted to the diffraction amplitudes for 80 Adam steps.",
        author=MIRA,
    ),
    Step(
        "README: say what the probe prints",
        (
            Edit(
                "README.md",
                "    python probe.py          # train once, print metrics as one JSON line\n",
                "    python probe.py          # train once, print metrics as one JSON line\n\n"
                "The JSON line holds the metrics, the settings training used and a few\n"
                "facts (which generator and which forward model ran).\n",
            ),
        ),
        author=MIRA,
    ),
    Step("tests: forward model unit tests", (Put("tests/test_physics.py"),), author=TOMAS),
    Step(
        "data: factor the scan grid out of simulate()",
        (
            Edit("ptycho/data.py", _SCAN_BEFORE, _SCAN_AFTER),
            Edit("ptycho/data.py", "def simulate(", _SCAN_FUNCTION),
        ),
        author=MIRA,
    ),
    Step(
        "config: document each TrainingConfig field",
        (Edit("ptycho/config.py", _CONFIG_BEFORE, _CONFIG_AFTER),),
        author=MIRA,
    ),
    Step(
        "train: log the loss every 20 steps at debug level",
        (
            Edit(
                "ptycho/train.py",
                "from __future__ import annotations\n\n",
                "from __future__ import annotations\n\nimport logging\n",
            ),
            Edit(
                "ptycho/train.py",
                "from ptycho.physics import ForwardModel\n",
                "from ptycho.physics import ForwardModel\n\nlog = logging.getLogger(__name__)\n",
            ),
            Edit(
                "ptycho/train.py",
                '    for _ in range(settings["n_steps"]):\n'
                "        loss = amplitude_loss(forward(generator()), data.intensities)\n",
                '    for step in range(settings["n_steps"]):\n'
                "        loss = amplitude_loss(forward(generator()), data.intensities)\n"
                "        if step % 20 == 0:\n"
                '            log.debug("step %d loss %.6g", step, loss.item())\n',
            ),
        ),
        author=TOMAS,
    ),
    Step(
        "physics: name the overlap floor of reassemble()",
        (
            Edit(
                "ptycho/physics.py",
                "import torch\n\n\n",
                "import torch\n\n"
                "MIN_OVERLAP = 1e-3  # pixels no patch covers stay zero instead of 0/0\n\n\n",
            ),
            Edit("ptycho/physics.py", "clamp_min(1e-3)", "clamp_min(MIN_OVERLAP)"),
        ),
        author=MIRA,
    ),
    Step(
        "model: explain where probe_big is read",
        (
            Edit(
                "ptycho/model.py",
                '    """Last decoder layer; probe_big adds a full-resolution branch."""\n',
                '    """Last decoder layer of the CNN autoencoder.\n\n'
                "    This is the only place probe_big is read: it adds a full-resolution 1x1\n"
                "    branch next to the 3x3 one. HybridResnetGeneratorModule never gets here.\n"
                '    """\n',
            ),
        ),
        author=TOMAS,
    ),
    Step(
        "tests: reassembly of a constant object is that constant",
        (Edit("tests/test_physics.py", _ENERGY_ASSERT, _ENERGY_ASSERT + _REASSEMBLE_TESTS),),
        author=MIRA,
    ),
    Step(
        "runner: command-line entry point",
        (
            Edit(
                "ptycho/runner.py",
                "    return train(training_payload(cfg), seed=seed)\n",
                "    return train(training_payload(cfg), seed=seed)\n" + _RUNNER_CLI,
            ),
        ),
        author=MIRA,
    ),
    Step(
        "README: running the trainer from the command line",
        (Edit("README.md", "\nLayout:\n", _README_CLI + "\nLayout:\n"),),
        author=MIRA,
    ),
    Step(
        "optim: document the update rule",
        (
            Edit(
                "ptycho/optim.py",
                "class Adam:\n",
                "class Adam:\n"
                '    """Adam (Kingma & Ba) with bias correction, stepping on a loss.\n\n'
                "    step(loss) takes the gradients of `loss` itself, so no .grad fields\n"
                "    are kept between steps.\n"
                '    """\n\n',
            ),
        ),
        author=TOMAS,
    ),
    Step(
        "data: keep the photon count in the Dataset",
        (
            Edit(
                "ptycho/data.py",
                "    intensities: torch.Tensor  # (k, m, m) measured, with Poisson noise\n",
                "    intensities: torch.Tensor  # (k, m, m) measured, with Poisson noise\n"
                "    nphotons: int  # photons per pattern before noise\n",
            ),
            Edit(
                "ptycho/data.py",
                "    return Dataset(obj=obj, probe=probe, positions=positions_t,"
                " intensities=intensities)\n",
                "    return Dataset(\n"
                "        obj=obj,\n"
                "        probe=probe,\n"
                "        positions=positions_t,\n"
                "        intensities=intensities,\n"
                "        nphotons=nphotons,\n"
                "    )\n",
            ),
        ),
        author=MIRA,
    ),
    Step("Add a changelog", (Put("CHANGELOG.md"),), author=MIRA),
    Step(
        "physics: name the two forward models",
        (
            Edit(
                "ptycho/physics.py",
                "class ForwardModel:\n",
                'SIMPLE = "simple"\nREASSEMBLY = "reassembly"\n\n\nclass ForwardModel:\n',
            ),
            Edit(
                "ptycho/physics.py",
                '        return "reassembly" if self.object_big else "simple"\n',
                "        return REASSEMBLY if self.object_big else SIMPLE\n",
            ),
        ),
        author=TOMAS,
    ),
    Step(
        "model: name the known generators in the error message",
        (
            Edit(
                "ptycho/model.py",
                "PAD = 2  # pixels of reflection padding when pad_object is on\n",
                "PAD = 2  # pixels of reflection padding when pad_object is on\n"
                'GENERATORS = ("hybrid_resnet", "cnn")\n',
            ),
            Edit(
                "ptycho/model.py",
                'f"unknown generator {name!r} (hybrid_resnet, cnn)"',
                "f\"unknown generator {name!r}; known: {', '.join(GENERATORS)}\"",
            ),
        ),
        author=MIRA,
    ),
    Step("tests: generator output shape and dtype", (Put("tests/test_model.py"),), author=TOMAS),
    Step(
        "probe: say which forward model ran, on stderr",
        (
            Edit(
                "probe.py",
                "    result = run(cfg, seed=seed)\n",
                "    result = run(cfg, seed=seed)\n"
                '    print(f"probe: {result.facts}", file=sys.stderr)\n',
            ),
        ),
        author=MIRA,
    ),
    Step(
        "README: the config keeps the TF model's defaults",
        (
            Edit(
                "README.md",
                "- `ptycho/config.py`, `ptycho/runner.py`:"
                " experiment config -> payload -> training\n",
                "- `ptycho/config.py`, `ptycho/runner.py`:"
                " experiment config -> payload -> training\n" + _README_DEFAULTS,
            ),
        ),
        author=MIRA,
    ),
    Step(
        "train: record the number of scan positions in facts",
        (
            Edit(
                "ptycho/train.py",
                '        "forward_model": forward.name,\n',
                '        "forward_model": forward.name,\n'
                '        "scan_positions": int(data.positions.shape[0]),\n',
            ),
        ),
        author=TOMAS,
    ),
    Step(
        "refactor: move the hybrid generator into ptycho/generators (WIP)",
        (
            Put("ptycho/generators/__init__.py"),
            Put("ptycho/model.py", "ptycho/model_split.py"),
        ),
        body="Work in progress: hybrid_resnet.py follows in the next commit.",
        author=TOMAS,
        role=UNTESTABLE,
    ),
    Step(
        "generators: add hybrid_resnet.py, left out of the split",
        (Put("ptycho/generators/hybrid_resnet.py"),),
        author=TOMAS,
    ),
    Step(
        "tests: import the generator from its new module",
        (
            Edit(
                "tests/test_model.py",
                "from ptycho.model import HybridResnetGeneratorModule\n",
                "from ptycho.generators import HybridResnetGeneratorModule\n",
            ),
        ),
        author=MIRA,
    ),
    Step(
        "runner: log the training payload at debug level",
        (
            Edit(
                "ptycho/runner.py",
                "from typing import Any\n",
                "import logging\nfrom typing import Any\n",
            ),
            Edit(
                "ptycho/runner.py",
                "from ptycho.train import TrainResult, train\n",
                "from ptycho.train import TrainResult, train\n\nlog"
                " = logging.getLogger(__name__)\n",
            ),
            Edit(
                "ptycho/runner.py",
                "    return train(training_payload(cfg), seed=seed)\n",
                "    payload = training_payload(cfg)\n"
                '    log.debug("training payload: %s", payload)\n'
                "    return train(payload, seed=seed)\n",
            ),
        ),
        author=MIRA,
    ),
    Step(
        "config: reject unknown generator names early",
        (
            Edit(
                "ptycho/config.py",
                "    pad_object: bool = True  # reflection padding"
                " before the generator's convolutions\n",
                "    pad_object: bool = True  # reflection padding"
                " before the generator's convolutions\n\n"
                "    def __post_init__(self) -> None:\n"
                '        if self.generator not in ("hybrid_resnet", "cnn"):\n'
                '            raise ValueError(f"unknown generator {self.generator!r}")\n',
            ),
        ),
        author=TOMAS,
    ),
    Step(
        "README: the payload keys the trainer reads",
        (Edit("README.md", "`ptycho/train.py`).\n", "`ptycho/train.py`).\n" + _README_PAYLOAD),),
        author=MIRA,
    ),
    Step(
        "physics: document the far-field normalisation",
        (
            Edit(
                "ptycho/physics.py",
                '    """Diffraction intensities of the exit waves probe * patch."""\n',
                '    """Diffraction intensities of the exit waves probe * patch.\n\n'
                '    norm="ortho" keeps the total intensity equal to the exit wave\'s energy.\n'
                '    """\n',
            ),
        ),
        author=MIRA,
    ),
    Step(
        "torch: propagate object_big/probe_big/pad_object into training payload",
        (
            Edit(
                "ptycho/runner.py",
                '        "nphotons": cfg.nphotons,\n',
                '        "nphotons": cfg.nphotons,\n'
                '        "object_big": cfg.object_big,\n'
                '        "probe_big": cfg.probe_big,\n'
                '        "pad_object": cfg.pad_object,\n',
            ),
        ),
        body="TrainingConfig carries the TF defaults (object_big, probe_big and\n"
        "pad_object all True) but the payload never passed them on, so the\n"
        "PyTorch trainer silently used its own defaults (all False). Pass them\n"
        "through so both backends train the same model.",
        author=TOMAS,
        role=CULPRIT,
    ),
    Step(
        "tests: the payload carries every TrainingConfig field",
        (Put("tests/test_runner.py"),),
        author=MIRA,
    ),
    Step(
        "CHANGELOG: payload propagation",
        (Edit("CHANGELOG.md", "## Unreleased\n", _CHANGELOG_PAYLOAD),),
        author=TOMAS,
    ),
    Step(
        "probe: save the reconstruction as an artifact",
        (
            Edit(
                "probe.py",
                "    kit.report(metrics, config=result.settings, facts=result.facts)\n",
                "    kit.report(\n"
                "        metrics,\n"
                "        config=result.settings,\n"
                "        facts=result.facts,\n"
                '        arrays={"reconstruction": result.obj, "truth": result.truth},\n'
                "    )\n",
            ),
        ),
        author=MIRA,
    ),
    Step(
        "data: explain the fixed dataset seed",
        (
            Edit(
                "ptycho/data.py",
                "DATA_SEED = 20260205\n",
                "# The measurements are part of the experiment, not of the run: they come\n"
                "# from this seed, so runs with different training seeds see the same data.\n"
                "DATA_SEED = 20260205\n",
            ),
        ),
        author=TOMAS,
    ),
    Step(
        "runner: --steps option on the command line",
        (
            Edit(
                "ptycho/runner.py",
                '    parser.add_argument("--seed", type=int, default=0)\n',
                '    parser.add_argument("--seed", type=int, default=0)\n'
                '    parser.add_argument("--steps", type=int, default=TrainingConfig.n_steps)\n',
            ),
            Edit(
                "ptycho/runner.py",
                "    result = run(TrainingConfig(), seed=args.seed)\n",
                "    result = run(TrainingConfig(n_steps=args.steps), seed=args.seed)\n",
            ),
        ),
        author=MIRA,
    ),
    Step(
        "train: name the loss epsilon",
        (
            Edit(
                "ptycho/train.py",
                "log = logging.getLogger(__name__)\n",
                "log = logging.getLogger(__name__)\n\n"
                "EPS = 1e-8  # keeps sqrt differentiable where the predicted intensity is 0\n",
            ),
            Edit("ptycho/train.py", "torch.sqrt(predicted + 1e-8)", "torch.sqrt(predicted + EPS)"),
        ),
        author=MIRA,
    ),
    Step(
        "tests: cover the CNN autoencoder path",
        (
            Edit(
                "tests/test_model.py",
                "from ptycho.generators import HybridResnetGeneratorModule\n",
                "from ptycho.generators import HybridResnetGeneratorModule\n"
                "from ptycho.model import CnnAutoencoder\n",
            ),
            Edit(
                "tests/test_model.py",
                "    assert obj.dtype == torch.complex64\n\n\ndef test_pad_object",
                "    assert obj.dtype == torch.complex64\n\n\n"
                "def test_cnn_autoencoder_probe_big_adds_a_branch():\n"
                "    torch.manual_seed(0)\n"
                "    small = CnnAutoencoder(32, 4, probe_big=False)\n"
                "    big = CnnAutoencoder(32, 4, probe_big=True)\n"
                "    assert big().shape == small().shape == (32, 32)\n"
                "    assert big.last.fine is not None and small.last.fine is None\n\n\n"
                "def test_pad_object",
            ),
        ),
        author=TOMAS,
    ),
    Step("Add CONTRIBUTING.md", (Put("CONTRIBUTING.md"),), author=MIRA),
    Step(
        "optim: type the betas",
        (
            Edit(
                "ptycho/optim.py",
                "    def __init__(self, params: Iterable[torch.Tensor],"
                " lr: float, betas=(0.9, 0.999), eps=1e-8):\n",
                "    def __init__(\n"
                "        self,\n"
                "        params: Iterable[torch.Tensor],\n"
                "        lr: float,\n"
                "        betas: tuple[float, float] = (0.9, 0.999),\n"
                "        eps: float = 1e-8,\n"
                "    ):\n",
            ),
        ),
        author=TOMAS,
    ),
    Step(
        "README: troubleshooting",
        (
            Edit(
                "README.md",
                "`TrainResult.settings`; `probe.py` reports those, not the config it asked for.\n",
                "`TrainResult.settings`; `probe.py` reports those, not the config it asked for.\n"
                + _README_TROUBLE,
            ),
        ),
        author=MIRA,
    ),
    Step(
        "runner: default log format for the command line",
        (
            Edit(
                "ptycho/runner.py",
                "    args = parser.parse_args()\n",
                "    args = parser.parse_args()\n"
                '    logging.basicConfig(format="%(asctime)s %(name)s'
                ' %(message)s", level=logging.INFO)\n',
            ),
        ),
        author=MIRA,
    ),
    Step(
        "Release 0.2.0",
        (
            Edit("ptycho/__init__.py", '__version__ = "0.1.0"', '__version__ = "0.2.0"'),
            Edit("CHANGELOG.md", "## Unreleased\n", "## 0.2.0\n"),
        ),
        author=TOMAS,
    ),
)
