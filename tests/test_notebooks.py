"""The notebooks in notebooks/ run top to bottom on sample_scans (so that they cannot rot).

They are committed WITH their outputs (inline PNG figures), written by
``python notebooks/build_notebooks.py``. These tests execute each notebook again in a fresh
kernel and fail when a cell errors, when the fresh run prints other text than the committed
outputs (stale outputs), or when a run leaves a temporary folder behind.
"""

from __future__ import annotations

import copy
import difflib
import importlib.util
import tempfile
from pathlib import Path
from typing import Any

import pytest

nbformat = pytest.importorskip("nbformat", reason="nbformat is a dev dependency")
pytest.importorskip("nbclient", reason="nbclient is a dev dependency")

NOTEBOOK_DIR = Path(__file__).resolve().parent.parent / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
#: Upper bound of a committed notebook's size: small PNGs, browsable.
MAX_BYTES = 1_500_000


def _builder() -> Any:
    spec = importlib.util.spec_from_file_location("build_notebooks",
                                                  NOTEBOOK_DIR / "build_notebooks.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _pngs(nb: Any) -> list[int]:
    """Indices of the code cells that display an image/png output."""
    return [i for i, c in enumerate(nb.cells) if c.cell_type == "code"
            and any("image/png" in o.get("data", {}) for o in c.get("outputs", []))]


def test_the_notebooks_are_the_built_ones() -> None:
    builder = _builder()
    assert sorted(builder.NOTEBOOKS) == [p.name for p in NOTEBOOKS] == [
        "walkthrough.ipynb", "your_study.ipynb"]
    for path in NOTEBOOKS:  # the committed cells are the builder's (edit the builder)
        committed = nbformat.read(path, as_version=4)
        built = builder.build(builder.NOTEBOOKS[path.name])
        assert ([(c.get("id"), c.source) for c in committed.cells]
                == [(c.get("id"), c.source) for c in built.cells]), (
            f"{path.name} differs from notebooks/build_notebooks.py: run "
            "`python notebooks/build_notebooks.py` and commit the result")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_is_committed_with_its_outputs(path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    unexecuted = [i for i, c in enumerate(nb.cells)
                  if c.cell_type == "code" and not c.get("execution_count")]
    assert unexecuted == [], f"{path.name}: cells {unexecuted} were not executed"
    # executed in order, in one run (1, 2, 3, ...)
    assert [c.execution_count for c in code] == list(range(1, len(code) + 1))
    errors = [o for c in code for o in c.outputs if o.output_type == "error"]
    assert errors == []
    # both notebooks draw the MIPs and the time course: at least two inline PNG figures
    assert sum(
        "image/png" in o.get("data", {}) for c in code for o in c.outputs) >= 2
    assert path.stat().st_size < MAX_BYTES


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_executes_and_its_outputs_are_current(path: Path,
                                                       sample_scans_dir: Path) -> None:
    builder = _builder()
    committed = nbformat.read(path, as_version=4)
    fresh = copy.deepcopy(committed)
    for cell in fresh.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None

    tmp = Path(tempfile.gettempdir())
    before = set(tmp.glob("emlesion-notebook-*"))
    builder.execute(fresh, NOTEBOOK_DIR)  # CellExecutionError names the failing cell
    assert set(tmp.glob("emlesion-notebook-*")) - before == set(), "left a temporary folder"

    # Figures come out inline as image/png, whatever MPLBACKEND is (CI sets Agg)
    assert _pngs(fresh) == _pngs(committed)

    old, new = builder.text_outputs(committed), builder.text_outputs(fresh)
    diff = [line for i, (a, b) in enumerate(zip(old, new)) if a != b
            for line in [f"--- code cell {i}", *difflib.unified_diff(a, b, lineterm="", n=1)]]
    assert len(old) == len(new) and diff == [], (
        f"{path.name}: the committed outputs are stale (run `python notebooks/"
        "build_notebooks.py` and commit):\n" + "\n".join(diff[:80]))

    stdout = "\n".join(line for cell in new for line in cell)
    if path.name == "walkthrough.ipynb":
        # sample_scans/truth.json "expected_response": PERCIST PMR at month 1, CMR at month 3
        assert "month1  percist     PMR" in stdout
        assert "month3  percist     CMR" in stdout, stdout[stdout.find("month3: "):][:3000]
        # the month-3 site readings were usable (registrations passed their quality check)
        assert "reliable False" not in stdout
        assert "RegistrationQuality(passed" in stdout
