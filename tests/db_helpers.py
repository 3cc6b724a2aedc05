"""Small database helpers the test modules share (set-up and inspection only)."""

from __future__ import annotations

from collections.abc import Iterable

from psycopg2 import sql


def rows(conn, query, *params) -> list[tuple]:
    """All rows of a query with bound parameters."""
    with conn.cursor() as cur:
        cur.execute(query, params)
        return cur.fetchall()


def count(conn, table: str, schema: str = "data") -> int | None:
    """Rows in ``schema.table``, or ``None`` when the table does not exist."""
    if rows(conn, "SELECT to_regclass(%s)", f"{schema}.{table}")[0][0] is None:
        return None
    return rows(conn, sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(schema, table)))[0][
        0
    ]


def drop_layers(conn, layer_ids: Iterable[str], schema: str = "data") -> None:
    """Drop the layers' tables and their catalog rows, provenance and rejects."""
    with conn.cursor() as cur:
        for layer_id in layer_ids:
            cur.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier(schema, layer_id)))
            cur.execute("DELETE FROM geoby.load_rejects WHERE layer_id = %s", (layer_id,))
            cur.execute("DELETE FROM geoby.layer_sources WHERE layer_id = %s", (layer_id,))
            cur.execute("DELETE FROM geoby.layers WHERE id = %s", (layer_id,))
