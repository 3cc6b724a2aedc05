"""The researcher notebooks: committed without outputs, and run against a live server.

Each notebook is executed with nbclient in a python3 kernel against the sample
town served on loopback (``conftest.py``), with the server's URL, the tokens and
a figures folder passed in through the environment, as a researcher's shell
would. A notebook passes when every cell runs, it saves exactly the figures
listed here (non-empty PNGs), and the checks it prints for itself hold.
"""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = ROOT / "notebooks"
CELL_TIMEOUT_S = 300

FIGURES = {
    "01_catalog_and_layers.ipynb": ["01_town_map.png"],
    "02_flood_scenarios.ipynb": ["02_cloudburst_depth.png", "02_return_periods.png",
                                 "02_sealevel_depth.png"],
    "03_dig_request.ipynb": ["03_dig_conflicts.png"],
    "04_waste.ipynb": ["04_coverage_gaps.png", "04_forecast.png", "04_routes.png"],
    "05_energy.ipynb": ["05_consumption_weather.png", "05_heat_density.png"],
}  # fmt: skip

# What each notebook prints about its own results: (pattern, check of the groups).
PRINTED = {
    "01_catalog_and_layers.ipynb": [
        (r"residential roads: (\d+) = (\d+)", lambda a, b: a == b and int(a) > 0),
        (r"reprojection: ([\d.]+) mm", lambda mm: float(mm) < 20),
    ],
    "02_flood_scenarios.ipynb": [
        (r"wet: ([\d.]+) ha \(summary: ([\d.]+) ha\)", lambda a, b: a == b and float(a) > 0),
        (r"flooded buildings (\d+) -> (\d+)", lambda a, b: 0 < int(a) <= int(b)),
    ],
    "03_dig_request.ipynb": [
        (r"(\d+) assets in the answer", lambda n: int(n) > 0),
        (r"^400 the polygon is not valid", lambda: True),
    ],
    "04_waste.ipynb": [
        (r"(\d+) routes, (\d+) bins", lambda r, b: int(r) > 0 and int(b) > 0),
        (r"(\d+) homes without a station", lambda n: int(n) > 0),
    ],
    "05_energy.ipynb": [
        (r"(\d+) cells with a known demand", lambda n: int(n) > 0),
        (r"([\d,]+) hours, 2020-01-01", lambda n: int(n.replace(",", "")) == 26_304),
    ],
}


def _notebooks() -> list[Path]:
    return sorted(NOTEBOOKS.glob("*.ipynb"))


def test_every_notebook_is_run_by_this_module():
    assert [p.name for p in _notebooks()] == sorted(FIGURES) == sorted(PRINTED)


@pytest.mark.parametrize("path", _notebooks(), ids=lambda p: p.stem)
def test_outputs_are_stripped(path: Path):
    notebook = nbformat.read(path, as_version=4)
    nbformat.validate(notebook)
    assert "widgets" not in notebook.metadata, f"{path.name}: widget state is committed"
    for index, cell in enumerate(notebook.cells):
        where = f"{path.name} cell {index}"
        assert "execution" not in cell.metadata, f"{where}: execution timings are committed"
        if cell.cell_type == "code":
            assert cell.outputs == [], f"{where}: outputs are committed"
            assert cell.execution_count is None, f"{where}: an execution count is committed"


def _printed(notebook: nbformat.NotebookNode) -> str:
    return "".join(
        output.get("text", "")
        for cell in notebook.cells if cell.cell_type == "code"
        for output in cell.outputs if output.output_type == "stream"
    )  # fmt: skip


@pytest.mark.parametrize("name", sorted(FIGURES))
def test_notebook_runs_against_the_platform(
    name: str, base_url: str, tokens: dict[str, str], tmp_path: Path, monkeypatch
):
    figures = tmp_path / "figures"
    monkeypatch.setenv("GEOBY_URL", base_url)
    monkeypatch.setenv("GEOBY_FIGURES", str(figures))
    monkeypatch.setenv("GEOBY_TOKEN_PLANNER", tokens["planner"])
    monkeypatch.setenv("GEOBY_TOKEN_CONTRACTOR", tokens["contractor"])
    notebook = nbformat.read(NOTEBOOKS / name, as_version=4)
    client = NotebookClient(notebook, timeout=CELL_TIMEOUT_S, kernel_name="python3",
                            resources={"metadata": {"path": str(NOTEBOOKS)}})  # fmt: skip
    client.execute()  # raises CellExecutionError, with the cell and traceback, on failure
    assert sorted(p.name for p in figures.iterdir()) == FIGURES[name]
    for png in figures.iterdir():
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", png.name
        assert png.stat().st_size > 10_000, f"{png.name} is nearly empty"
    printed = _printed(notebook)
    for pattern, check in PRINTED[name]:
        found = re.search(pattern, printed, re.MULTILINE)
        assert found, f"{name} did not print {pattern!r}; it printed:\n{printed}"
        assert check(*found.groups()), f"{name}: {found.group(0)!r} fails its check"
