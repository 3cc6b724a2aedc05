"""Owners' interest areas: derived from their assets, or uploaded by them.

A dig request that touches an owner's interest area notifies that owner, so
the areas must cover every asset with room for where it may really lie.

Derived areas (:func:`derive_interest_areas`, run for every owner a load
touched): each line and point buffered by the width its position accuracy
class calls for, each area (precaution zone, station outline) by 1 m, and
the buffers dissolved per owner and utility type (one multipolygon each,
``area_id`` ``derived:<utility type>``, ``origin`` ``derived``):

=================  ===========
accuracy class     buffer
=================  ===========
0.25, 0.5          1 m
1                  2 m (1 m + the class)
2                  3 m (1 m + the class)
>2, unknown        5 m
=================  ===========

They replace the owner's previous derived areas. Abandoned assets are
included: they are still in the ground.

Uploaded areas (a polygon file flagged as interest areas, see
:mod:`ingest.utilities.tabular`) replace every other area of the owners they
name, derived or uploaded before; while an owner has uploaded areas, loads of
its assets do not derive new ones (the owner has said where its interests
are). The replacement runs right after the upload's own transaction; should
it fail, the old and the new areas both remain, which notifies too many
rather than too few.
"""

from __future__ import annotations

import logging
from importlib import resources

from psycopg2 import sql
from psycopg2.extensions import connection as Connection

from ingest.utilities import model
from layers import catalog
from layers.crs import STORAGE_EPSG
from layers.database import Database

log = logging.getLogger(__name__)

BUFFERS_M = {"0.25": 1.0, "0.5": 1.0, "1": 2.0, "2": 3.0}
UNKNOWN_BUFFER_M = 5.0
AREA_BUFFER_M = 1.0
RULE = ("buffer 1 m for accuracy 0.25 and 0.5, 2 m for 1, 3 m for 2, 5 m for >2 or unknown, "
        "1 m around areas; dissolved per utility type")  # fmt: skip
TABLE = sql.Identifier(model.SCHEMA, model.INTEREST.id)


def _exists(conn: Connection, layer: model.LayerDef) -> bool:
    with conn.cursor() as cur:
        cur.execute("SELECT to_regclass(%s)", (f"{model.SCHEMA}.{layer.id}",))
        return cur.fetchone()[0] is not None


def ensure_table(conn: Connection) -> None:
    """Create the interest-area table as the loader would (same columns, keys, indexes)."""
    if _exists(conn, model.INTEREST):
        return
    columns = [sql.SQL("fid bigserial PRIMARY KEY")]
    columns += [sql.SQL("{} {}").format(sql.Identifier(name), sql.SQL(pg_type))
                for name, pg_type in model.INTEREST.columns.items()]  # fmt: skip
    columns += [sql.SQL("geom geometry(MultiPolygon, {})").format(sql.Literal(STORAGE_EPSG)),
                sql.SQL("_source text NOT NULL"), sql.SQL("_record text NOT NULL"),
                sql.SQL("_loaded_at timestamptz NOT NULL DEFAULT now()")]  # fmt: skip
    key = sql.SQL(", ").join(map(sql.Identifier, model.INTEREST.key))
    with conn.cursor() as cur:
        cur.execute(sql.SQL("CREATE TABLE {} ({})").format(TABLE, sql.SQL(", ").join(columns)))
        cur.execute(sql.SQL("CREATE INDEX ON {} USING gist (geom)").format(TABLE))
        cur.execute(sql.SQL("CREATE INDEX ON {} (_source)").format(TABLE))
        cur.execute(sql.SQL("CREATE UNIQUE INDEX ON {} ({})").format(TABLE, key))


def _assets(conn: Connection) -> sql.Composable | None:
    """The union of the asset tables that exist, each row with its buffer width."""
    width = sql.SQL("CASE accuracy_class {} ELSE {} END").format(
        sql.SQL(" ").join(sql.SQL("WHEN {} THEN {}").format(sql.Literal(k), sql.Literal(v))
                          for k, v in BUFFERS_M.items()),
        sql.Literal(UNKNOWN_BUFFER_M),
    )  # fmt: skip
    selects = []
    for layer in model.ASSET_LAYERS:
        if not _exists(conn, layer):
            continue
        buffer = sql.Literal(AREA_BUFFER_M) if layer is model.AREAS else width
        selects.append(sql.SQL(
            "SELECT utility_type, _source, geom, {} AS buffer_m FROM {} WHERE owner = %(owner)s"
        ).format(buffer, sql.Identifier(model.SCHEMA, layer.id)))  # fmt: skip
    return sql.SQL(" UNION ALL ").join(selects) if selects else None


def has_uploaded(conn: Connection, owner: str) -> bool:
    """Whether the owner has uploaded its own interest areas."""
    if not _exists(conn, model.INTEREST):
        return False
    with conn.cursor() as cur:
        cur.execute(sql.SQL("SELECT EXISTS (SELECT 1 FROM {} WHERE owner = %s AND origin = 'uploaded')")
                    .format(TABLE), (owner,))  # fmt: skip
        return bool(cur.fetchone()[0])


def derive_interest_areas(conn: Connection, owner: str) -> int:
    """Replace an owner's derived interest areas by new ones from its assets.

    Parameters
    ----------
    conn
        A connection as ``ingest``; the caller commits.
    owner
        The owning organisation, as in the asset tables.

    Returns
    -------
    int
        Areas written (one per utility type); 0 where the owner has uploaded
        areas of its own (they are kept) or has no assets.
    """
    if has_uploaded(conn, owner):
        log.info("%s has uploaded interest areas; not deriving", owner)
        return 0
    assets = _assets(conn)
    ensure_table(conn)
    with conn.cursor() as cur:
        cur.execute(sql.SQL("DELETE FROM {} WHERE owner = %s AND origin = 'derived'").format(TABLE),
                    (owner,))  # fmt: skip
        if assets is None:
            return 0
        text = (resources.files("ingest") / "sql" / "utilities_interest_derive.sql").read_text()
        cur.execute(
            sql.SQL(text).format(areas=TABLE, assets=assets), {"owner": owner, "rule": RULE}
        )
        return cur.rowcount


def replace_with_uploaded(conn: Connection, label: str) -> list[str]:
    """Make an uploaded file the only interest areas of the owners it names.

    Returns
    -------
    list of str
        The owners whose areas were replaced.
    """
    with conn.cursor() as cur:
        cur.execute(sql.SQL("SELECT DISTINCT owner FROM {} WHERE _source = %s ORDER BY 1").format(TABLE),
                    (label,))  # fmt: skip
        owners = [row[0] for row in cur.fetchall()]
        cur.execute(sql.SQL("DELETE FROM {} WHERE owner = ANY(%s) AND _source <> %s").format(TABLE),
                    (owners, label))  # fmt: skip
        cur.execute(sql.SQL("UPDATE {} SET area_m2 = ST_Area(geom) WHERE _source = %s").format(TABLE),
                    (label,))  # fmt: skip
    return owners


def register(conn: Connection, *, licence: str | None = None) -> None:
    """Register (or refresh) the interest-area layer in the catalog."""
    spec = model.INTEREST.spec(licence=licence)
    layer = spec.layer.model_copy(update={"geometry_type": spec.geometry_type,
                                          "storage_srid": STORAGE_EPSG,
                                          "properties": {"derivation": RULE}})  # fmt: skip
    catalog.register(conn, layer)
    catalog.refresh_statistics(conn, layer.id)


def refresh(database: Database, owners: set[str]) -> dict[str, int]:
    """Derive the interest areas of ``owners`` in one transaction; areas written per owner."""
    written: dict[str, int] = {}
    if not owners:
        return written
    with database.connection("ingest") as conn:
        for owner in sorted(owners):
            written[owner] = derive_interest_areas(conn, owner)
        if _exists(conn, model.INTEREST):
            register(conn)
    log.info("interest areas derived: %s", written)
    return written
