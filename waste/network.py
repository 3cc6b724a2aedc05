"""Driving distances and times over the road network, for routing trucks.

:class:`RoadNetwork` is a directed sparse graph (:mod:`scipy.sparse.csgraph`)
built from road centre lines in EPSG:25832: lines are noded where they cross
(as :mod:`waste.coverage` does), densified so that no edge is longer than
``max_edge_m`` (points then snap close to the road), and each piece keeps the
speed of the line it came from (``speed_kmh`` column, else the speed of its
``road_class``, else ``default_kmh``). A ``oneway`` line is driven only in its
drawing direction.

:func:`matrices` snaps each point to the nearest vertex of the largest strongly
connected part of the network (so every point reaches every other; a warning
says how many vertices were left out) and runs one Dijkstra per point on travel
time. A truck takes the fastest path: the duration matrix holds its time, the
distance matrix its length. The straight join from a point to its vertex counts
too, at ``access_kmh``.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from scipy import sparse
from scipy.sparse.csgraph import connected_components, dijkstra
from scipy.spatial import cKDTree

from layers.database import Database
from layers.errors import InvalidInput

log = logging.getLogger(__name__)

DEFAULT_KMH = 30.0
#: Speeds (km/h) by road class where a road gives none.
CLASS_KMH: dict[str, float] = {
    "motorway": 110.0, "motorway_link": 60.0, "trunk": 80.0, "primary": 60.0,
    "secondary": 50.0, "tertiary": 50.0, "residential": 30.0, "service": 15.0,
    "living_street": 10.0, "unclassified": 40.0, "track": 15.0,
}  # fmt: skip
NOT_DRIVEN = ("footway", "path", "cycleway", "pedestrian", "steps", "bridleway")


@dataclass(frozen=True)
class RoadNetwork:
    """Vertices (EPSG:25832 m) and two weightings of the same directed edges."""

    xy: np.ndarray  # (n, 2)
    length_m: sparse.csr_matrix
    time_s: sparse.csr_matrix

    @classmethod
    def from_lines(
        cls,
        roads: gpd.GeoDataFrame | gpd.GeoSeries,
        *,
        default_kmh: float = DEFAULT_KMH,
        max_edge_m: float = 25.0,
    ) -> RoadNetwork:
        """The network of road lines (optional columns ``speed_kmh``, ``road_class``,
        ``oneway``).

        Raises
        ------
        InvalidInput
            No lines, or a speed that is not positive.
        """
        frame = roads.to_frame("geometry") if isinstance(roads, gpd.GeoSeries) else roads
        if not (np.isfinite(default_kmh) and default_kmh > 0):
            raise InvalidInput(f"default speed must be positive, got {default_kmh!r}",
                               field="default_kmh")  # fmt: skip
        frame = frame[~frame.geometry.is_empty & frame.geometry.notna()]
        if "road_class" in frame:
            frame = frame[~frame["road_class"].isin(NOT_DRIVEN)]
        if frame.empty:
            raise InvalidInput("no drivable roads", field="roads")
        speed = _speeds(frame, default_kmh)
        oneway = (frame["oneway"].fillna(False).astype(bool).to_numpy() if "oneway" in frame
                  else np.zeros(len(frame), bool))  # fmt: skip
        sources = np.asarray(frame.geometry.values)
        pieces = shapely.get_parts(shapely.union_all(sources))
        pieces = shapely.segmentize(pieces, max_edge_m)
        # Each noded piece belongs to the line its middle lies on.
        tree = shapely.STRtree(sources)
        owner = tree.nearest(shapely.line_interpolate_point(pieces, 0.5, normalized=True))
        forward = _same_direction(pieces, sources[owner])
        coords, index = shapely.get_coordinates(pieces, return_index=True)
        keys = np.round(coords * 100).astype(np.int64)
        unique, node = np.unique(keys, axis=0, return_inverse=True)
        node = node.ravel()
        same = index[1:] == index[:-1]
        a, b = node[:-1][same], node[1:][same]
        piece = index[:-1][same]
        length = np.hypot(*(coords[1:] - coords[:-1])[same].T)
        keep = a != b
        a, b, piece, length = a[keep], b[keep], piece[keep], length[keep]
        one = oneway[owner[piece]]
        # A oneway piece drawn against its line is driven from b to a.
        back = one & ~forward[piece]
        a, b = np.where(back, b, a), np.where(back, a, b)
        both = ~one
        src, dst = np.concatenate([a, b[both]]), np.concatenate([b, a[both]])
        lengths = np.concatenate([length, length[both]])
        seconds = lengths / (np.concatenate([speed[owner[piece]], speed[owner[piece]][both]]) / 3.6)
        n = len(unique)
        return cls(unique / 100.0, _graph(lengths, src, dst, n), _graph(seconds, src, dst, n))


def _speeds(frame: pd.DataFrame, default_kmh: float) -> np.ndarray:
    speed = np.full(len(frame), default_kmh)
    if "road_class" in frame:
        by_class = frame["road_class"].map(CLASS_KMH).to_numpy(dtype=float)
        speed = np.where(np.isfinite(by_class), by_class, speed)
    if "speed_kmh" in frame:
        given = pd.to_numeric(frame["speed_kmh"], errors="coerce").to_numpy(dtype=float)
        if (given <= 0).any():
            row = int(np.flatnonzero(given <= 0)[0])
            raise InvalidInput(f"speed {given[row]} km/h is not positive", field="speed_kmh",
                               record=f"road {frame.index[row]}")  # fmt: skip
        speed = np.where(np.isfinite(given), given, speed)
    return speed


def _same_direction(pieces: np.ndarray, lines: np.ndarray) -> np.ndarray:
    """Whether each piece runs the way its source line is drawn."""
    start = shapely.line_locate_point(lines, shapely.get_point(pieces, 0))
    end = shapely.line_locate_point(lines, shapely.get_point(pieces, -1))
    return end >= start


def _graph(weights: np.ndarray, src: np.ndarray, dst: np.ndarray, n: int) -> sparse.csr_matrix:
    # Parallel edges keep the smallest weight (a sparse sum would add them up).
    order = np.lexsort((weights, dst, src))
    src, dst, weights = src[order], dst[order], weights[order]
    first = np.ones(len(src), bool)
    first[1:] = (src[1:] != src[:-1]) | (dst[1:] != dst[:-1])
    return sparse.csr_matrix((weights[first], (src[first], dst[first])), shape=(n, n))


def snap(net: RoadNetwork, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Nearest vertex of the largest strongly connected part to each point, and the
    straight distance to it; warns when part of the network is left out."""
    count, label = connected_components(net.time_s, directed=True, connection="strong")
    main = np.flatnonzero(label == np.argmax(np.bincount(label)))
    if count > 1:
        msg = (f"the road network has {count} strongly connected parts; points are snapped "
               f"to the largest ({len(main)} of {len(label)} vertices)")  # fmt: skip
        log.warning(msg)
        warnings.warn(msg, stacklevel=2)
    distance, k = cKDTree(net.xy[main]).query(np.asarray(points, dtype=float).reshape(-1, 2))
    return main[k], distance


def matrices(
    net: RoadNetwork, points: np.ndarray, *, access_kmh: float = 15.0
) -> tuple[np.ndarray, np.ndarray]:
    """Driving distance (m) and time (s) between every pair of points, fastest path.

    Parameters
    ----------
    net
        The road network.
    points
        (n, 2) coordinates in EPSG:25832.
    access_kmh
        Speed of the straight join between a point and its network vertex.

    Returns
    -------
    (distance_m, duration_s)
        Two (n, n) float arrays, zero on the diagonal.
    """
    vertex, access = snap(net, points)
    unique, back = np.unique(vertex, return_inverse=True)
    seconds, pred = dijkstra(net.time_s, directed=True, indices=unique, return_predecessors=True)
    metres = _path_lengths(net.length_m, pred)
    metres, seconds = metres[back][:, vertex], seconds[back][:, vertex]
    join_s = access / (access_kmh / 3.6)
    distance = access[:, None] + metres + access[None, :]
    duration = join_s[:, None] + seconds + join_s[None, :]
    np.fill_diagonal(distance, 0.0)
    np.fill_diagonal(duration, 0.0)
    return distance, duration


def _path_lengths(length: sparse.csr_matrix, pred: np.ndarray) -> np.ndarray:
    """Length of every shortest-path-tree path, by pointer doubling over predecessors."""
    rows, n = pred.shape
    parent = pred.copy()
    root = parent < 0
    parent[root] = np.broadcast_to(np.arange(n), (rows, n))[root]
    child = np.broadcast_to(np.arange(n), (rows, n))
    acc = np.where(root, 0.0, np.asarray(length[parent.ravel(), child.ravel()]).reshape(rows, n))
    while True:
        up = np.take_along_axis(parent, parent, axis=1)
        if np.array_equal(up, parent):
            return acc
        acc = acc + np.take_along_axis(acc, parent, axis=1)  # a root holds 0
        parent = up


def load_roads(database: Database) -> gpd.GeoDataFrame:
    """The road network layer ``water_roads`` (class, speed, oneway), EPSG:25832."""
    with database.connection("read") as conn, conn.cursor() as cur:
        cur.execute("SELECT road_id, road_class, speed_kmh, oneway, ST_AsBinary(geom) "
                    "FROM data.water_roads ORDER BY fid")  # fmt: skip
        rows = cur.fetchall()
    if not rows:
        raise InvalidInput("the road layer water_roads is empty", field="water_roads")
    frame = pd.DataFrame([r[:4] for r in rows],
                         columns=["road_id", "road_class", "speed_kmh", "oneway"])  # fmt: skip
    geometry = shapely.from_wkb([bytes(r[4]) for r in rows])
    return gpd.GeoDataFrame(frame, geometry=geometry, crs=25832)
