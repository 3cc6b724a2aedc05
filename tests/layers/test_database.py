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


def test_a_burst_beyond_the_pool_waits_instead_of_failing(settings):
    """More concurrent users than connections queue for one (psycopg2 alone raises)."""
    import threading

    db_settings = settings.database.model_copy(update={"pool_min": 0, "pool_max": 2})
    database = Database(settings.model_copy(update={"database": db_settings}))
    errors: list[BaseException] = []
    inside = threading.Semaphore(0)

    def user() -> None:
        try:
            with database.connection("read") as conn, conn.cursor() as cur:
                cur.execute("SELECT pg_sleep(0.05)")
                inside.release()
        except BaseException as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)

    try:
        with ExitStack() as stack:  # hold both connections while 6 users ask for one
            held = [stack.enter_context(database.connection("read")) for _ in range(2)]
            threads = [threading.Thread(target=user) for _ in range(6)]
            for t in threads:
                t.start()
            assert not inside.acquire(timeout=0.3), "a user got a third connection"
            assert len(held) == 2
        for t in threads:
            t.join(timeout=30)
        assert not errors
        assert all(inside.acquire(timeout=0) for _ in range(6))
    finally:
        database.close()


def test_a_full_pool_answers_busy_after_the_wait(settings):
    import pytest

    from layers.errors import DatabaseUnavailable

    db_settings = settings.database.model_copy(update={"pool_max": 1, "pool_wait_s": 0.2})
    database = Database(settings.model_copy(update={"database": db_settings}))
    try:
        with database.connection("read"), pytest.raises(DatabaseUnavailable, match="busy"):
            with database.connection("read"):
                pass
    finally:
        database.close()
