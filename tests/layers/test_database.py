"""Connection pools keep their sessions: a burst of requests does not reconnect each time."""

from __future__ import annotations

from contextlib import ExitStack

from layers.database import Database


def _pid(conn) -> int:
    with conn.cursor() as cur:
        cur.execute("SELECT pg_backend_pid()")
        return cur.fetchone()[0]


def test_idle_connections_are_kept_up_to_the_pool_size(settings):
    db_settings = settings.database.model_copy(update={"pool_min": 1, "pool_max": 4})
    database = Database(settings.model_copy(update={"database": db_settings}))
    try:
        with ExitStack() as stack:  # three at once, as three concurrent requests
            first = {_pid(stack.enter_context(database.connection("read"))) for _ in range(3)}
        with ExitStack() as stack:
            again = {_pid(stack.enter_context(database.connection("read"))) for _ in range(3)}
        assert len(first) == 3
        assert again == first  # the same sessions, not three new ones
    finally:
        database.close()
