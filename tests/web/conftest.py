"""Fixtures of the web-map tests: the sample town served on loopback, a headless Chromium.

The town is loaded through the real pipelines, as the flood tests load it
(terrain, climate, roads and water, buildings, the seven owners' networks),
plus the waste bins and their sensor readings; a contractor and a planner get
tokens. One server and one browser serve the whole package.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from psycopg2 import sql
from selenium import webdriver

from dig_coordination.users import add_user, ensure_organisation
from ingest.pipelines import IngestOptions, ingest
from layers.database import Database, connect
from tests.api.live_server import serve
from tests.dig.conftest import reset
from tests.flood.conftest import load_town
from tests.web.browser import Trap, chromium


@pytest.fixture(scope="package")
def web_town(settings, database: Database, town_dir: Path) -> Database:
    """The sample town for the map: what the flood tests load, and the bins with readings."""
    conn = connect(database.dsn("owner"))
    conn.autocommit = True
    try:
        reset(conn, drop_utilities=True)
        with conn.cursor() as cur:  # an earlier package may have left other readings
            for table in ("waste_readings", "waste_collections"):
                cur.execute(
                    sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier("data", table))
                )
                cur.execute("DELETE FROM geoby.layers WHERE id = %s", (table,))
    finally:
        conn.close()
    load_town(database, town_dir)
    options = IngestOptions(show_progress=False)
    waste = town_dir / "waste"
    files = ("bins.gpkg", "fleet.csv", "sensor_readings.csv", "collections.csv")
    ingest(database, "waste", [waste / name for name in files], options)
    return database


@pytest.fixture(scope="package")
def tokens(web_town: Database) -> dict[str, str]:
    """A contractor's and a planner's bearer tokens."""
    found = {}
    with web_town.connection("admin") as conn:
        for role, org in (("contractor", "Graveholdet ApS"), ("planner", "Egevig Kommune")):
            ensure_organisation(conn, org)
            found[role] = add_user(conn, org=org, role=role)[1]
    return found


@pytest.fixture(scope="package")
def base_url(settings, web_town: Database) -> Iterator[str]:
    """The whole application served by uvicorn on a free loopback port."""
    with serve(settings) as url:
        yield url


@pytest.fixture(scope="package")
def trap() -> Iterator[Trap]:
    """The proxy every off-loopback request of the browser is sent to."""
    found = Trap()
    yield found
    found.close()


@pytest.fixture(scope="package")
def downloads(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("downloads")


@pytest.fixture(scope="package")
def browser(downloads: Path, trap: Trap) -> Iterator[webdriver.Chrome]:
    """Headless Chromium from the Debian packages."""
    with chromium(downloads, trap) as driver:
        yield driver


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    """On a failure in the browser, keep a screenshot and the page's messages as artifacts."""
    report = yield
    driver = item.funcargs.get("browser") if hasattr(item, "funcargs") else None
    if report.when == "call" and report.failed and driver is not None:
        from tests.web.browser import screenshot

        shot = screenshot(driver, f"failed-{item.name}")
        notes = driver.execute_script(
            "return [...document.querySelectorAll('[role=status], [role=alert], .message-error')]"
            ".map(e => e.id + ': ' + e.textContent).join('\\n')"
        )
        report.sections.append(("browser", f"screenshot: {shot}\n{notes}"))
    return report
