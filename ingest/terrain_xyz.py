"""XYZ height files (``x y z`` per line) read as a regular grid.

Danish and Dutch agencies publish terrain as XYZ text: one cell centre per
line, separated by blanks, tabs or commas, an optional header line. The
points must lie on a regular grid (rows and columns at one spacing each;
missing points become nodata); a point off the grid, a repeated point or a
line that is not three numbers is refused with its line number. XYZ carries
no CRS: a sibling ``.prj`` is read where there is one, else ``--crs`` is
needed. The whole file is read into memory (about 50 bytes a point).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import rasterio
from rasterio.crs import CRS
from rasterio.transform import from_origin

from ingest.terrain_cog import NODATA, Tile, file_crs, open_tile
from layers.errors import InvalidInput

_ON_GRID = 1e-3  # largest offset from a grid node, in cells
_MAX_EMPTY = 4  # a grid with more nodes than this many times the points is not regular


def read_xyz(path: Path, dst: Path, *, assumed_crs: str | None = None) -> Tile:
    """Convert an XYZ file to a float32 GeoTIFF at ``dst`` and open it as a tile.

    Raises
    ------
    InvalidInput
        A line that is not three numbers, a point off the regular grid, or a
        repeated point (the error names the line).
    CRSMismatch
        No ``.prj`` and no ``--crs``, or they disagree.
    """
    name = path.name
    prj = path.with_suffix(".prj")
    declared = CRS.from_wkt(prj.read_text()) if prj.is_file() else None
    crs = file_crs(name, declared, assumed_crs)
    frame, first_line = _read_points(path)
    x, y, z = (frame[c].to_numpy(np.float64) for c in ("x", "y", "z"))
    cols, x0, dx = _axis(x, name, "x", first_line)
    rows, y1, dy = _axis(y, name, "y", first_line, descending=True)
    width, height = int(cols.max()) + 1, int(rows.max()) + 1
    if width * height > _MAX_EMPTY * len(x):
        raise InvalidInput(
            f"{name} is not a regular grid: {len(x):,} points would fill only "
            f"{len(x) / (width * height):.0%} of a {width} x {height} grid at {dx:g} x {dy:g}",
            record=name, field="x",
        )  # fmt: skip
    index = rows * width + cols
    order = np.argsort(index, kind="stable")
    repeated = np.flatnonzero(np.diff(index[order]) == 0)
    if repeated.size:
        i = int(order[repeated[0] + 1])
        raise InvalidInput(f"{name} line {i + first_line}: point ({x[i]}, {y[i]}) is repeated",
                           record=f"line {i + first_line}", field="x")  # fmt: skip
    grid = np.full((height, width), NODATA, dtype=np.float32)
    grid[rows, cols] = z
    profile = {
        "driver": "GTiff", "dtype": "float32", "count": 1, "width": width, "height": height,
        "crs": crs, "transform": from_origin(x0 - dx / 2, y1 + dy / 2, dx, dy),
        "nodata": NODATA, "tiled": True, "blockxsize": 256, "blockysize": 256,
        "compress": "deflate", "predictor": 3,
    }  # fmt: skip
    with rasterio.open(dst, "w", **profile) as out:
        out.write(grid, 1)
    return open_tile(dst, name=name, assumed_crs=None)


def _read_points(path: Path) -> tuple[pd.DataFrame, int]:
    """The points as floats, and the line number of the first data row."""
    with open(path, encoding="utf-8", errors="replace") as fh:
        head = fh.readline()
    sep = "," if "," in head else r"\s+"
    skip = 0 if _is_point(head, sep) else 1
    try:
        frame = pd.read_csv(path, sep=sep, header=None, names=["x", "y", "z"], usecols=[0, 1, 2],
                            skiprows=skip, dtype=str, skip_blank_lines=False)  # fmt: skip
    except (pd.errors.ParserError, ValueError) as exc:
        raise InvalidInput(f"{path.name} is not an x y z file: {exc}", record=path.name) from exc
    numbers = frame.apply(pd.to_numeric, errors="coerce")
    bad = numbers.isna().any(axis=1).to_numpy()
    if bad.any():
        i = int(np.argmax(bad))
        field = next(c for c in ("x", "y", "z") if pd.isna(numbers[c].iat[i]))
        raise InvalidInput(
            f"{path.name} line {i + skip + 1}: {field} is not a number "
            f"({frame[field].iat[i]!r}); XYZ lines are three numbers",
            record=f"line {i + skip + 1}", field=field,
        )  # fmt: skip
    if numbers.empty:
        raise InvalidInput(f"{path.name} holds no points", record=path.name)
    return numbers, skip + 1


def _is_point(line: str, sep: str) -> bool:
    parts = line.strip().split(",") if sep == "," else line.split()
    try:
        [float(p) for p in parts[:3]]
    except ValueError:
        return False
    return len(parts) >= 3


def _axis(values: np.ndarray, name: str, field: str, first_line: int, *, descending=False):
    """Grid index of each value, the first node and the spacing along one axis.

    Rows count from the top, so ``y`` is indexed from its largest value down.
    """
    sign = -1.0 if descending else 1.0
    values = sign * values
    nodes = np.unique(values)
    if nodes.size < 2:
        raise InvalidInput(f"{name}: all points share one {field}; a grid needs two or more",
                           record=name, field=field)  # fmt: skip
    # The spacing is the commonest gap: one point off the grid makes two odd gaps.
    gaps, counts = np.unique(np.round(np.diff(nodes), 6), return_counts=True)
    step = float(gaps[np.argmax(counts)])  # ties: the narrowest
    where = (values - nodes[0]) / step
    index = np.rint(where)
    off = np.flatnonzero(np.abs(where - index) > _ON_GRID)
    if off.size:
        i = int(off[0])
        raise InvalidInput(
            f"{name} line {i + first_line}: {field} = {sign * values[i]} is not on the regular "
            f"grid (spacing {step:g} from {sign * nodes[0]}); XYZ must be a regular grid",
            record=f"line {i + first_line}", field=field,
        )  # fmt: skip
    return index.astype(np.int64), sign * float(nodes[0]), step
