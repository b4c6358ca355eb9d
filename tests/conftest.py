"""Let tests import their helpers (gitrepo) by name, and run each from its own tmp folder."""
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))


@pytest.fixture(autouse=True)
def _work_in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A hunt without --out writes reports/ID under the working directory: the suite must
    leave the checkout as it found it."""
    monkeypatch.chdir(tmp_path)
