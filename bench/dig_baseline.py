"""The naive peer of ``bench/bench_dig.py``: a shapely STRtree over every segment, one process.

It reads the whole line table of a benchmark database into memory (the
attributes as numpy columns, the geometries as shapely objects), builds an
STRtree, and answers each request as the dig coordinator would, but without
storing anything: the segments within the answer buffer (STRtree candidates
of the area buffered by 5 m, then the exact distance), nearest first, each
clipped to the area plus buffer, the precaution rules of the database
applied with :func:`dig_coordination.rules.apply`, the properties of
:class:`dig_coordination.model.Conflict`, geometries in CRS84 and the
FeatureCollection written with ``json.dumps``.

Run by the benchmark as a subprocess, so that its peak memory is its own::

    python bench/dig_baseline.py DATABASE REQUESTS.json OUT.json

``REQUESTS.json`` holds ``{"squares": [[minx, miny, maxx, maxy], ...],
"work_types": [...]}``; ``OUT.json`` gets the read and build times, the
seconds per answer, the fids of each answer, the peak resident memory and the
resident memory before the network was read.
"""

from __future__ import annotations

import json
import resource
import sys
import time
from pathlib import Path

import numpy as np
import shapely
from shapely.geometry import mapping

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from dig_coordination import rules  # noqa: E402
from dig_coordination.conflicts import CLIP_MARGIN_M  # noqa: E402
from dig_coordination.model import Conflict  # noqa: E402
from layers.crs import STORAGE_EPSG, reproject  # noqa: E402
from layers.database import Database, connect  # noqa: E402
from layers.settings import DatabaseSettings, Settings  # noqa: E402

BUFFER_M = 5.0
TEXT = ("asset_id", "owner", "utility_type", "subtype", "asset_kind", "hazard_class", "status",
        "depth_reference", "accuracy_class")  # fmt: skip
NUMBERS = ("depth_m", "diameter_mm", "voltage_kv", "pressure_bar")
BATCH = 100_000


class Network:
    """Every segment in memory: columns and an STRtree."""

    def __init__(self, database: str) -> None:
        settings = Settings(
            database=DatabaseSettings(name=database, cluster_dir=ROOT / "var" / "pg")
        )
        conn = connect(Database(settings).dsn("owner"))
        started = time.perf_counter()
        fids, geoms = [], []
        text: dict[str, list] = {name: [] for name in TEXT}
        numbers: dict[str, list] = {name: [] for name in NUMBERS}
        interned: dict[str, str] = {}
        with conn.cursor(name="network") as cur:
            cur.itersize = BATCH
            cur.execute(
                f"SELECT fid, {', '.join(TEXT + NUMBERS)}, ST_AsBinary(geom)"  # noqa: S608
                " FROM restricted.utilities_lines"
            )
            while batch := cur.fetchmany(BATCH):
                columns = list(zip(*batch, strict=True))
                fids.append(np.array(columns[0], dtype=np.int64))
                for i, name in enumerate(TEXT, start=1):
                    values = columns[i] if name == "asset_id" else \
                        [interned.setdefault(v, v) if v is not None else None for v in columns[i]]  # fmt: skip
                    text[name].append(np.array(values, dtype=object))
                for i, name in enumerate(NUMBERS, start=1 + len(TEXT)):
                    numbers[name].append(np.array(columns[i], dtype=float))
                geoms.append(
                    shapely.from_wkb(np.array([bytes(b) for b in columns[-1]], dtype=object))
                )
        conn.close()
        self.fid = np.concatenate(fids)
        self.text = {k: np.concatenate(v) for k, v in text.items()}
        self.numbers = {k: np.concatenate(v) for k, v in numbers.items()}
        self.geoms = np.concatenate(geoms)
        self.read_s = time.perf_counter() - started
        started = time.perf_counter()
        self.tree = shapely.STRtree(self.geoms)
        self.tree.query(shapely.box(0, 0, 1, 1))  # the tree is built on its first query
        self.build_s = time.perf_counter() - started
        conn = connect(Database(settings).dsn("owner"))
        self.rules = rules.load(conn, None)
        conn.close()

    def answer(self, area: shapely.Polygon, work_types: list[str]) -> tuple[str, list[int]]:
        """The answer's GeoJSON text and its fids, nearest first."""
        candidates = self.tree.query(area.buffer(BUFFER_M))
        distance = shapely.distance(self.geoms[candidates], area)
        near = distance <= BUFFER_M
        found, distance = candidates[near], distance[near]
        order = np.lexsort((self.fid[found], distance))
        found, distance = found[order], distance[order]
        clip = area.buffer(BUFFER_M + CLIP_MARGIN_M, quad_segs=16)
        clipped = shapely.intersection(self.geoms[found], clip)
        features = []
        for i, d, geom in zip(found.tolist(), distance.tolist(), clipped, strict=True):
            asset = {name: values[i] for name, values in self.text.items()}
            asset |= {name: None if v != v else v for name, v in
                      ((name, values[i]) for name, values in self.numbers.items())}  # fmt: skip
            actions = rules.apply(self.rules, asset, work_types, d)
            conflict = Conflict(layer="utilities_lines", asset_fid=int(self.fid[i]),
                                distance_m=d, geometry=geom, actions=actions, **asset)  # fmt: skip
            lonlat = shapely.set_precision(reproject(geom, STORAGE_EPSG, 0), 1e-7)
            features.append({"type": "Feature", "id": f"utilities_lines.{conflict.asset_fid}",
                             "geometry": mapping(lonlat), "properties": conflict.properties()})  # fmt: skip
        doc = {"type": "FeatureCollection", "numberReturned": len(features),
               "ready_to_dig": not any(f["properties"]["blocks_ready_to_dig"] for f in features),
               "features": features}  # fmt: skip
        return json.dumps(doc, separators=(",", ":")), [int(self.fid[i]) for i in found]


def resident_mib() -> float:
    """The process's resident memory now (Linux ``VmRSS``)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def main(argv: list[str]) -> None:
    database, requests, out = argv
    spec = json.loads(Path(requests).read_text())
    base_mib = resident_mib()
    network = Network(database)
    times, answers, sizes = [], [], []
    for box in spec["squares"]:
        started = time.perf_counter()
        text, fids = network.answer(shapely.box(*box), spec["work_types"])
        times.append(time.perf_counter() - started)
        answers.append(fids)
        sizes.append(len(text))
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    Path(out).write_text(json.dumps({
        "segments": len(network.fid), "read_s": network.read_s, "build_s": network.build_s,
        "seconds": times, "fids": answers, "bytes": sizes, "peak_mib": peak_kib / 1024,
        "base_mib": base_mib,
    }))  # fmt: skip


if __name__ == "__main__":
    main(sys.argv[1:])
