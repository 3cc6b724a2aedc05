"""Synthetic buried networks for ``bench/bench_dig.py``, generated with numpy and COPYed.

A network of ``rows`` segments lives in its own database of geoby's private
cluster (``geoby_bench_dig_100k``, ``_1m``, ``_10m``: the dig coordinator
reads fixed table names, so each size needs a database), migrated with
:func:`layers.migrate.migrate` and reused by later runs: the line table's
comment records the layout and is written last, so a load that was cut off
is redone.

The tables are those the utilities loader makes (:mod:`ingest.utilities.model`):
``restricted.utilities_lines`` with ``fid``, the asset columns, a
``MultiLineString`` geometry in EPSG:25832, ``_source``, ``_record`` and
``_loaded_at``, the GiST, ``_source``, unique ``(owner, asset_id)`` and
``utility_type`` indexes; ``utilities_points`` and ``utilities_areas`` empty
(the answer query still visits them, as it would in production); and
``utilities_interest_areas`` as ``ingest.utilities.interest.ensure_table``
makes it. They are created by the cluster's superuser, handed to
``geoby_ingest`` and granted to ``geoby_admin`` as the loader's default
privileges would.

Decisions (where the issue is silent):

* **Density**: 3,000 segments per km2, so that a 1 ha (100 x 100 m) request
  with the 5 m answer buffer meets about 45 segments (the Minkowski sum of
  the 110 m square and a 27 m segment covers about 1.6 ha). 100,000
  segments cover a 5.8 km square, 1,000,000 an 18.3 km one, 10,000,000 a
  57.7 km one, centred on E 720,000 N 6,170,000 (EPSG:25832).
* **Segments**: 5-50 m long, 2-6 vertices with bends of about 20 degrees,
  coordinates in millimetres.
* **A town's networks**: seven owners; telecom 32 %, electricity 28 % (2 %
  high voltage, very dangerous), water 12 %, sewer 10 %, district heating
  10 % (east half only), gas 8 % (west half only, one in eight high
  pressure); hazard classes as :func:`ingest.utilities.model.derive_hazard`
  gives them. Accuracy classes 0.25 / 0.5 / 1 / 2 / >2 / unknown at
  10 / 30 / 30 / 15 / 5 / 10 %; depth unknown for 40 %; 90 % in service.
* **Interest areas**: one polygon per owner, utility type and 500 m grid
  cell where that network runs (``origin`` ``uploaded``), instead of the
  derived dissolve of every asset's buffer, which would take hours at
  10 M segments and give the same owners for requests inside the data.
* Deterministic: chunk ``k`` of 200,000 rows always comes from the same
  seed, so a network is the same whichever run made it.
"""

from __future__ import annotations

import io
import math
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import shapely
from psycopg2 import sql

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ingest.utilities import model  # noqa: E402
from layers.crs import STORAGE_EPSG  # noqa: E402
from layers.database import Database, cluster_for, connect  # noqa: E402
from layers.errors import MigrationError  # noqa: E402
from layers.migrate import migrate  # noqa: E402
from layers.settings import DatabaseSettings, Settings  # noqa: E402

LAYOUT = "geoby bench_dig network v1"
CENTRE = (720_000.0, 6_170_000.0)
DENSITY_PER_KM2 = 3_000
CHUNK = 200_000
SEED = 5
CELL_M = 500.0
SOURCE = "bench_dig"
NULL = "\\N"  # COPY text's NULL


@dataclass(frozen=True)
class AssetClass:
    """One kind of segment of one owner, and its share of the network."""

    owner: str
    utility_type: str
    subtype: str | None
    asset_kind: str
    hazard_class: str
    share: float
    materials: tuple[str, ...]
    diameters_mm: tuple[int, ...] = ()
    voltage_kv: float | None = None
    pressure_bar: float | None = None
    region: str = "all"  # all, west, east


CLASSES = (
    AssetClass("Kystby Vand", "water", "distribution", "pipe", "not_dangerous", 0.12,
               ("PE", "PVC", "cast iron"), (63, 90, 110, 160, 200, 315)),
    AssetClass("Kystby Vand", "sewer", "foul", "pipe", "not_dangerous", 0.05,
               ("PVC", "concrete"), (160, 200, 250, 315, 400)),
    AssetClass("Kystby Vand", "sewer", "storm", "pipe", "not_dangerous", 0.03,
               ("PVC", "concrete"), (200, 315, 400, 600)),
    AssetClass("Kystby Vand", "sewer", "combined", "pipe", "not_dangerous", 0.02,
               ("concrete",), (300, 400, 600, 800)),
    AssetClass("NordEl", "electricity", "low_voltage", "cable", "dangerous", 0.20,
               ("Al", "Cu"), voltage_kv=0.4),
    AssetClass("NordEl", "electricity", "medium_voltage", "cable", "dangerous", 0.04,
               ("Al", "Cu"), voltage_kv=10.0),
    AssetClass("NordEl", "electricity", "street_lighting", "cable", "dangerous", 0.02,
               ("Cu",), voltage_kv=0.23),
    AssetClass("Stamnet El", "electricity", "high_voltage", "cable", "very_dangerous", 0.02,
               ("Al",), voltage_kv=132.0),
    AssetClass("Gasnet Kyst", "gas", "low_pressure", "pipe", "dangerous", 0.07,
               ("PE", "steel"), (63, 90, 110, 160), pressure_bar=4.0, region="west"),
    AssetClass("Gasnet Kyst", "gas", "high_pressure", "pipe", "very_dangerous", 0.01,
               ("steel",), (200, 300, 400), pressure_bar=19.0, region="west"),
    AssetClass("Kystby Varme", "district_heating", "distribution", "pipe", "dangerous", 0.10,
               ("steel/PUR",), (40, 65, 100, 150, 250), region="east"),
    AssetClass("Fiberby", "telecom", "fibre", "cable", "not_dangerous", 0.16, ("fibre",)),
    AssetClass("Fiberby", "telecom", "fibre", "duct", "not_dangerous", 0.04,
               ("PE",), (32, 40, 50)),
    AssetClass("TeleNord", "telecom", "copper", "cable", "not_dangerous", 0.08, ("Cu",)),
    AssetClass("TeleNord", "telecom", "fibre", "cable", "not_dangerous", 0.04, ("fibre",)),
)  # fmt: skip
OWNERS = tuple(dict.fromkeys(c.owner for c in CLASSES))
ACCURACY = (("0.25", 0.10), ("0.5", 0.30), ("1", 0.30), ("2", 0.15), (">2", 0.05), (None, 0.10))
STATUS = (("in_service", 0.90), ("planned", 0.03), ("out_of_service", 0.03), ("abandoned", 0.04))
DEPTH_UNKNOWN = 0.40
LINE_COLUMNS = ("fid", "asset_id", "owner", "utility_type", "subtype", "asset_kind",
                "hazard_class", "hazard_source", "depth_m", "depth_reference", "accuracy_class",
                "status", "vertical_position", "diameter_mm", "material", "voltage_kv",
                "pressure_bar", "installed_year", "source_format", "attributes", "geom",
                "_source", "_record")  # fmt: skip


def label(rows: int) -> str:
    """``100k``, ``1m``, ``10m``."""
    return f"{rows // 1_000_000}m" if rows >= 1_000_000 else f"{rows // 1000}k"


def database_name(rows: int) -> str:
    """The benchmark database of a network of ``rows`` segments."""
    return f"geoby_bench_dig_{label(rows)}"


def side_m(rows: int) -> float:
    """Side of the square that holds ``rows`` segments at the benchmark density."""
    return math.sqrt(rows / DENSITY_PER_KM2) * 1000


def extent(rows: int) -> tuple[float, float, float, float]:
    """The square (EPSG:25832) in which the segments start."""
    half = side_m(rows) / 2
    return (CENTRE[0] - half, CENTRE[1] - half, CENTRE[0] + half, CENTRE[1] + half)


def bench_settings(rows: int) -> Settings:
    """Settings of the network's database, migrated (rebuilt if a migration changed)."""
    name = database_name(rows)
    settings = Settings(database=DatabaseSettings(name=name, cluster_dir=ROOT / "var" / "pg"))
    cluster_for(settings).up()
    try:
        migrate(settings)
    except MigrationError as exc:
        print(f"rebuilding {name}: {exc}", file=sys.stderr)
        conn = connect(cluster_for(settings).superuser_dsn("postgres"))
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))
        conn.close()
        migrate(settings)
    return settings


# -- generation -------------------------------------------------------------------------------


def _choice(rng: np.random.Generator, table: tuple, n: int) -> np.ndarray:
    values = [v for v, _ in table]
    p = np.array([w for _, w in table], dtype=float)
    return np.array(values, dtype=object)[rng.choice(len(values), size=n, p=p / p.sum())]


def segments(rows: int, chunk: int) -> dict[str, np.ndarray]:
    """Chunk ``chunk`` of a network of ``rows`` segments, as columns (geometry: shapely)."""
    start = chunk * CHUNK
    n = min(CHUNK, rows - start)
    rng = np.random.default_rng([SEED, chunk])
    x0, y0, x1, y1 = extent(rows)
    shares = np.array([c.share for c in CLASSES])
    cls = rng.choice(len(CLASSES), size=n, p=shares / shares.sum())
    x = rng.uniform(x0, x1, n)
    west = np.array([c.region == "west" for c in CLASSES])[cls]
    east = np.array([c.region == "east" for c in CLASSES])[cls]
    x[west] = x0 + (x[west] - x0) / 2
    x[east] = CENTRE[0] + (x[east] - x0) / 2
    y = rng.uniform(y0, y1, n)
    vertices = rng.integers(2, 7, n)
    length = rng.uniform(5.0, 50.0, n)
    turns = rng.normal(0.0, 0.35, (n, 5))
    turns[:, 0] = rng.uniform(0, 2 * math.pi, n)
    angle = np.cumsum(turns, axis=1)
    step = (length / (vertices - 1))[:, None] * (np.arange(5)[None, :] < (vertices - 1)[:, None])
    dx = np.concatenate([np.zeros((n, 1)), np.cumsum(step * np.cos(angle), axis=1)], axis=1)
    dy = np.concatenate([np.zeros((n, 1)), np.cumsum(step * np.sin(angle), axis=1)], axis=1)
    keep = np.arange(6)[None, :] < vertices[:, None]
    coords = np.round(np.stack([x[:, None] + dx, y[:, None] + dy], axis=2)[keep], 3)
    lines = shapely.linestrings(coords, indices=np.repeat(np.arange(n), vertices))
    geoms = shapely.set_srid(shapely.multilinestrings(lines, indices=np.arange(n)), STORAGE_EPSG)
    depth = np.round(rng.uniform(0.4, 2.0, n), 2)
    depth[rng.random(n) < DEPTH_UNKNOWN] = np.nan
    return {
        "fid": np.arange(start + 1, start + n + 1),
        "class": cls,
        "depth_m": depth,
        "accuracy_class": _choice(rng, ACCURACY, n),
        "status": _choice(rng, STATUS, n),
        "pick": rng.integers(0, 1 << 30, n),
        "installed_year": rng.integers(1950, 2025, n),
        "geometry": geoms,
    }


def _class_text(c: AssetClass) -> tuple[str, str]:
    """The constant COPY fields of a class: (owner .. hazard_source, voltage and pressure)."""
    head = "\t".join([c.owner, c.utility_type, c.subtype or NULL, c.asset_kind, c.hazard_class,
                      "rule"])  # fmt: skip
    tail = "\t".join(NULL if v is None else f"{v:g}" for v in (c.voltage_kv, c.pressure_bar))
    return head, tail


def copy_text(rows: int, chunk: int) -> bytes:
    """Chunk ``chunk`` as COPY text in the order of :data:`LINE_COLUMNS`."""
    cols = segments(rows, chunk)
    heads = [_class_text(c) for c in CLASSES]
    hexes = shapely.to_wkb(cols["geometry"], hex=True, include_srid=True)
    out = []
    for fid, k, depth, acc, status, pick, year, geom in zip(
        cols["fid"].tolist(), cols["class"].tolist(), cols["depth_m"].tolist(),
        cols["accuracy_class"], cols["status"], cols["pick"].tolist(),
        cols["installed_year"].tolist(), hexes, strict=True,
    ):  # fmt: skip
        c = CLASSES[k]
        head, tail = heads[k]
        known = depth == depth  # NaN is unknown
        diameter = c.diameters_mm[pick % len(c.diameters_mm)] if c.diameters_mm else NULL
        out.append(
            f"{fid}\tL{fid}\t{head}\t{depth if known else NULL}\t"
            f"{'ground_level' if known else NULL}\t{acc or NULL}\t{status}\tunderground\t"
            f"{diameter}\t{c.materials[pick % len(c.materials)]}\t{tail}\t{year}\tLER2\t{{}}\t"
            f"{geom}\t{SOURCE}\t{fid}\n"
        )
    return "".join(out).encode()


def chunks(rows: int) -> Iterator[bytes]:
    """Every chunk's COPY text, made in a second process while the caller COPYs the last."""
    count = math.ceil(rows / CHUNK)
    with ProcessPoolExecutor(max_workers=1) as pool:
        ahead = [pool.submit(copy_text, rows, k) for k in range(min(2, count))]
        for k in range(count):
            text = ahead.pop(0).result()
            if k + 2 < count:
                ahead.append(pool.submit(copy_text, rows, k + 2))
            yield text


def interest_cells(rows: int) -> Iterator[tuple[str, str, str, shapely.Polygon]]:
    """(area_id, owner, utility type, cell) for every 500 m cell a network runs through."""
    x0, y0, x1, y1 = extent(rows)
    margin = 60.0  # segments reach up to 50 m past the square where they start
    xs = np.arange(x0 - margin, x1 + margin, CELL_M)
    ys = np.arange(y0 - margin, y1 + margin, CELL_M)
    networks = dict.fromkeys((c.owner, c.utility_type, c.region) for c in CLASSES)
    for owner, utility_type, region in networks:
        for i, cx in enumerate(xs):
            if (region == "west" and cx > CENTRE[0] + margin) or (
                region == "east" and cx + CELL_M < CENTRE[0] - margin
            ):
                continue
            for j, cy in enumerate(ys):
                cell = shapely.box(cx, cy, min(cx + CELL_M, x1 + margin), min(cy + CELL_M,
                                   y1 + margin))  # fmt: skip
                yield f"grid:{utility_type}:{i}:{j}", owner, utility_type, cell


# -- loading ----------------------------------------------------------------------------------


def _create(cur, layer: model.LayerDef) -> sql.Composable:  # noqa: ANN001 - psycopg2 cursor
    """The layer's table as the loader creates it (no indexes yet)."""
    table = sql.Identifier(model.SCHEMA, layer.id)
    cols = [sql.SQL("fid bigserial PRIMARY KEY")]
    cols += [sql.SQL("{} {}").format(sql.Identifier(c), sql.SQL(t))
             for c, t in layer.columns.items()]  # fmt: skip
    cols += [
        sql.SQL("geom geometry({}, {})").format(sql.SQL(layer.geometry_type),
                                                sql.Literal(STORAGE_EPSG)),
        sql.SQL("_source text NOT NULL"), sql.SQL("_record text NOT NULL"),
        sql.SQL("_loaded_at timestamptz NOT NULL DEFAULT now()"),
    ]  # fmt: skip
    cur.execute(sql.SQL("DROP TABLE IF EXISTS {} CASCADE").format(table))
    cur.execute(sql.SQL("CREATE TABLE {} ({})").format(table, sql.SQL(", ").join(cols)))
    return table


def _finish(cur, layer: model.LayerDef) -> None:  # noqa: ANN001 - psycopg2 cursor
    """Indexes, owner and grants as the loader leaves them; statistics."""
    table = sql.Identifier(model.SCHEMA, layer.id)
    cur.execute(sql.SQL("CREATE INDEX ON {} USING gist (geom)").format(table))
    cur.execute(sql.SQL("CREATE INDEX ON {} (_source)").format(table))
    key = sql.SQL(", ").join(map(sql.Identifier, layer.key))
    cur.execute(sql.SQL("CREATE UNIQUE INDEX ON {} ({})").format(table, key))
    if "utility_type" in layer.columns:
        cur.execute(sql.SQL("CREATE INDEX ON {} (utility_type)").format(table))
    cur.execute(sql.SQL("ALTER TABLE {} OWNER TO geoby_ingest").format(table))
    cur.execute(sql.SQL("GRANT SELECT ON {} TO geoby_admin").format(table))
    cur.execute(sql.SQL("VACUUM ANALYZE {}").format(table))


def _tag(rows: int) -> str:
    return f"{LAYOUT}, {rows} rows, {DENSITY_PER_KM2}/km2"


def loaded(settings: Settings, rows: int) -> bool:
    """Whether the network is there, complete, in this layout."""
    conn = connect(Database(settings).dsn("owner"))
    with conn.cursor() as cur:
        cur.execute("SELECT obj_description(to_regclass('restricted.utilities_lines'), 'pg_class')")
        tagged = cur.fetchone()[0] == _tag(rows)
    conn.close()
    return tagged


def ensure_network(settings: Settings, rows: int) -> float | None:
    """Generate and load the network unless it is there; the load's seconds, or None."""
    if loaded(settings, rows):
        return None
    print(f"generating and loading {rows:,} segments into {settings.database.name} ...",
          file=sys.stderr)  # fmt: skip
    started = time.perf_counter()
    conn = connect(Database(settings).dsn("owner"))
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("SET maintenance_work_mem = '1GB'")
        table = _create(cur, model.LINES)
        copy = sql.SQL("COPY {} ({}) FROM STDIN").format(
            table, sql.SQL(", ").join(map(sql.Identifier, LINE_COLUMNS))
        )
        for text in chunks(rows):
            cur.copy_expert(copy, io.BytesIO(text))
        cur.execute(
            sql.SQL("SELECT setval(pg_get_serial_sequence({}, 'fid'), %s)").format(
                sql.Literal(f"{model.SCHEMA}.{model.LINES.id}")
            ),
            (rows,),
        )
        copied = time.perf_counter()
        _finish(cur, model.LINES)
        for layer in (model.POINTS, model.AREAS):
            _create(cur, layer)
            _finish(cur, layer)
        _load_interest(cur, rows)
        cur.execute(sql.SQL("COMMENT ON TABLE {} IS {}").format(table, sql.Literal(_tag(rows))))
    conn.close()
    took = time.perf_counter() - started
    print(f"  done in {took:.0f} s (COPY {copied - started:.0f} s, indexes and the rest "
          f"{took - (copied - started):.0f} s)", file=sys.stderr)  # fmt: skip
    return took


def _load_interest(cur, rows: int) -> None:  # noqa: ANN001 - psycopg2 cursor
    table = _create(cur, model.INTEREST)
    lines = []
    for area_id, owner, utility_type, cell in interest_cells(rows):
        geom = shapely.to_wkb(shapely.set_srid(shapely.multipolygons([cell]), STORAGE_EPSG),
                              hex=True, include_srid=True)  # fmt: skip
        lines.append(f"{area_id}\t{owner}\t{utility_type}\tuploaded\t500 m grid cell\t\\N\t"
                     f"{cell.area:.1f}\t{{}}\t{geom}\t{SOURCE}\t{area_id}\n")  # fmt: skip
    columns = ("area_id", "owner", "utility_type", "origin", "buffer_rule", "asset_count",
               "area_m2", "attributes", "geom", "_source", "_record")  # fmt: skip
    cur.copy_expert(
        sql.SQL("COPY {} ({}) FROM STDIN").format(
            table, sql.SQL(", ").join(map(sql.Identifier, columns))
        ),
        io.BytesIO("".join(lines).encode()),
    )
    _finish(cur, model.INTEREST)


def prewarm(settings: Settings) -> None:
    """Read the line table and its GiST index into memory, so no request pays for a cold cache."""
    conn = connect(Database(settings).dsn("owner"))
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("CREATE EXTENSION IF NOT EXISTS pg_prewarm")
        cur.execute(
            "SELECT pg_prewarm(c.oid::regclass, 'read') FROM pg_class c"
            " JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname = 'restricted' AND c.relname LIKE 'utilities_%%'"
            " AND c.relkind IN ('r', 'i') AND (c.relkind = 'r' OR c.relname LIKE '%%geom%%')"
        )
    conn.close()


# -- requests ---------------------------------------------------------------------------------


def squares(rows: int, count: int, seed: int, side: float = 100.0) -> list[shapely.Polygon]:
    """``count`` random ``side`` m squares (EPSG:25832) inside the network, 100 m from its edge."""
    rng = np.random.default_rng(seed)
    x0, y0, x1, y1 = extent(rows)
    xs = rng.uniform(x0 + 100, x1 - 100 - side, count)
    ys = rng.uniform(y0 + 100, y1 - 100 - side, count)
    return [shapely.box(round(x, 2), round(y, 2), round(x + side, 2), round(y + side, 2))
            for x, y in zip(xs, ys, strict=True)]  # fmt: skip
