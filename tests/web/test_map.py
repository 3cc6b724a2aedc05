"""The web map end to end in headless Chromium, against the sample town on loopback.

The tests run in file order on one browser: the shell and the base map, the
keyboard, the contractor's dig request, the planner's cloudburst, the waste
view, accessibility on every view (desktop and phone), and last the requests
the page made, all of which must have stayed on loopback.
"""

from __future__ import annotations

import threading
import time

import httpx
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys

from tests.web.browser import (
    axe_violations,
    map_idle,
    off_loopback,
    page_requests,
    screenshot,
    wait_for,
    wait_text,
)

SEEN: list[str] = []  # every URL the page requested, for the last test
VIEWS = ("layers", "contractor", "planner", "waste", "status")


def record(browser) -> list[str]:
    found = page_requests(browser)
    SEEN.extend(found)
    return found


def open_view(browser, name: str, base_url: str) -> None:
    """Show a view, loading the application first when this browser has not (a test run
    on its own starts from a blank page)."""
    if not browser.execute_script("return document.body && document.body.dataset.ready"):
        browser.get(base_url + "/")
        wait_for(browser, "document.body.dataset.ready", timeout=60)
    browser.find_element(By.ID, f"tab-{name}").click()
    wait_for(browser, f"!document.getElementById('view-{name}').hidden")


def asset_point(database) -> tuple[float, float]:
    """A point on a buried cable or pipe of the sample town (CRS84)."""
    with database.connection("admin") as conn, conn.cursor() as cur:
        cur.execute("SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_Transform(ST_LineInterpolatePoint("
                    "ST_GeometryN(geom, 1), 0.5), 4326) AS p FROM restricted.utilities_lines"
                    " ORDER BY fid LIMIT 1 OFFSET 40) s")  # fmt: skip
        return cur.fetchone()


def test_the_map_draws_the_base_from_geoby_tiles(browser, base_url):
    browser.get(base_url + "/")
    wait_for(browser, "document.body.dataset.ready", timeout=60)
    assert browser.execute_script("return document.body.dataset.ready") == "true"
    map_idle(browser, timeout=60)
    counts = browser.execute_script(
        "const m = window.geobyMap; return Object.fromEntries(['water_roads', 'energy_buildings',"
        " 'water_lakes'].map(id => [id, m.querySourceFeatures('base-' + id, {sourceLayer: id}).length]));"
    )
    found = record(browser)
    screenshot(browser, "layers")
    assert all(n > 0 for n in counts.values()), counts
    assert any("/api/raster-tiles/terrain_dtm/" in u for u in found)
    assert browser.find_element(By.ID, "toggle-water_roads").is_selected()


def test_a_layer_toggles_and_answers_a_click_with_its_attributes(browser, base_url):
    browser.find_element(By.ID, "toggle-waste_bins").click()
    map_idle(browser)
    point = wait_for(browser, "(() => { const f = window.geobyMap.queryRenderedFeatures("
                     "{layers: ['layer-waste_bins']}); return f.length &&"
                     " window.geobyMap.project(f[0].geometry.coordinates); })()")  # fmt: skip
    canvas = browser.find_element(By.CSS_SELECTOR, "#map canvas")
    size = canvas.size
    ActionChains(browser).move_to_element_with_offset(
        canvas, point["x"] - size["width"] / 2, point["y"] - size["height"] / 2
    ).click().perform()
    info = wait_text(browser, "#feature-info dl")
    assert "bin_id" in info
    browser.find_element(By.ID, "toggle-waste_bins").click()  # off again
    assert not browser.execute_script("return !!window.geobyMap.getLayer('layer-waste_bins')")
    record(browser)


def test_the_views_are_keyboard_operable(browser, base_url):
    open_view(browser, "layers", base_url)
    tab = browser.find_element(By.ID, "tab-layers")
    tab.send_keys(Keys.ARROW_RIGHT)
    active = browser.switch_to.active_element
    assert active.get_attribute("id") == "tab-contractor"
    assert active.get_attribute("aria-selected") == "true"
    assert browser.find_element(By.ID, "view-contractor").is_displayed()
    active.send_keys(Keys.END)
    assert browser.switch_to.active_element.get_attribute("id") == "tab-status"
    browser.switch_to.active_element.send_keys(Keys.HOME)
    assert browser.find_element(By.ID, "view-layers").is_displayed()


def test_a_contractor_draws_a_dig_sees_the_conflicts_and_downloads_the_pdf(
    browser, base_url, tokens, web_town, downloads
):
    open_view(browser, "contractor", base_url)
    browser.find_element(By.ID, "dig-token").send_keys(tokens["contractor"])
    browser.find_element(By.ID, "dig-contact").send_keys("Site lead")
    browser.find_element(By.ID, "dig-phone").send_keys("+45 12 34 56 78")
    lon, lat = asset_point(web_town)
    browser.execute_script("window.geobyMap.jumpTo({center: arguments[0], zoom: 18})", [lon, lat])
    browser.find_element(By.ID, "dig-draw").click()
    canvas = browser.find_element(By.CSS_SELECTOR, "#map canvas")
    for dx, dy in ((-60, -60), (60, -60), (60, 60), (-60, 60)):
        ActionChains(browser).move_to_element_with_offset(canvas, dx, dy).click().perform()
    assert browser.find_element(By.ID, "dig-vertices").text == "4 points drawn."
    browser.find_element(By.ID, "dig-finish").click()
    browser.find_element(By.ID, "dig-submit").click()
    text = wait_text(browser, "#dig-conflicts")
    shown = int(text.split()[0])
    listed = httpx.get(f"{base_url}/api/dig-requests",
                       headers={"Authorization": f"Bearer {tokens['contractor']}"}).json()  # fmt: skip
    request = listed["requests"][0]
    answer = httpx.get(f"{base_url}/api/dig-requests/{request['id']}/answer?f=geojson",
                       headers={"Authorization": f"Bearer {tokens['contractor']}"}).json()  # fmt: skip
    assert shown == answer["numberReturned"] > 0  # the drawn square lies on a cable
    ring = answer["request"]["geometry"]["coordinates"][0]
    assert len(ring) == 5 and min(p[0] for p in ring) < lon < max(p[0] for p in ring)
    owners = browser.find_elements(By.CSS_SELECTOR, "#dig-owners section.owner")
    assert sorted(o.get_attribute("aria-label") for o in owners) == sorted(
        o["owner"] for o in answer["owners"])  # fmt: skip
    drawn = browser.execute_script(
        "return window.geobyMap.querySourceFeatures('dig-answer').length")  # fmt: skip
    assert drawn > 0
    wait_text(browser, "#dig-mine table")
    map_idle(browser)
    screenshot(browser, "contractor")

    browser.find_element(By.CSS_SELECTOR, "#dig-downloads [data-format='pdf']").click()
    pdf = downloads / f"{request['reference']}.pdf"
    wait_for(browser, "document.querySelector('#dig-message').textContent.includes('.pdf')")
    pause, deadline = threading.Event(), time.monotonic() + 30
    while not pdf.exists() and time.monotonic() < deadline:
        pause.wait(0.1)
    assert pdf.read_bytes().startswith(b"%PDF-")
    record(browser)


def test_a_planner_runs_a_cloudburst_and_sees_the_exposed_buildings(browser, base_url, tokens):
    open_view(browser, "planner", base_url)
    browser.find_element(By.ID, "flood-token").send_keys(tokens["planner"])
    browser.find_element(By.ID, "flood-run").click()
    shown = wait_text(browser, "section.result .exposed-buildings", timeout=150)
    runs = httpx.get(f"{base_url}/api/flood/scenarios").json()["scenarios"]
    run = httpx.get(f"{base_url}/api/flood/scenarios/{runs[0]['id']}").json()
    assert run["status"] == "successful" and run["progress"] == 100
    summary = run["summary"]
    assert run["inputs"]["return_period_years"] == 100 and run["inputs"]["drainage_mm"] == 10
    exposed = summary["exposure"]["buildings"]["count"]
    assert shown.replace(",", "") == str(exposed)
    assert exposed > 0
    sid = summary["scenario_id"]
    map_idle(browser, timeout=60)
    found = record(browser)
    assert any(f"/api/raster-tiles/flood_{sid}_depth/" in u for u in found)
    screenshot(browser, "planner")


def test_the_waste_view_shows_bins_by_fill_and_the_routes(browser, base_url, tokens):
    open_view(browser, "waste", base_url)
    text = wait_text(browser, "#waste-bin-count")
    bins = httpx.get(f"{base_url}/api/waste/bins?limit=10000").json()["bins"]
    assert text.startswith(f"{len(bins)} bins")
    map_idle(browser)
    drawn = browser.execute_script(
        "return window.geobyMap.queryRenderedFeatures({layers: ['waste-bins-circles']})"
        ".map(f => f.properties.bin_id)")  # fmt: skip
    assert sorted(set(drawn)) == sorted(b["bin_id"] for b in bins)
    paths = httpx.get(f"{base_url}/api/openapi.json").json()["paths"]
    if "/api/waste/routes" in paths:
        browser.find_element(By.ID, "waste-token").send_keys(tokens["planner"])
        browser.find_element(By.ID, "waste-routes-run").click()
        trips = wait_text(browser, "#waste-route-count", timeout=90)
        assert int(trips.split()[0]) > 0
        lines = browser.execute_script(
            "return window.geobyMap.querySourceFeatures('waste-routes').length")  # fmt: skip
        assert lines > 0
    else:  # the routing endpoint has not landed: the view says so instead of failing
        assert "Route planning is not available" in wait_text(browser, "#waste-routes p")
    map_idle(browser)
    record(browser)
    screenshot(browser, "waste")


def test_every_view_passes_axe_on_desktop_and_phone(browser, base_url):
    found = {}
    for width, height in ((1280, 900), (390, 844)):
        browser.set_window_size(width, height)
        for name in VIEWS:
            open_view(browser, name, base_url)
            if name == "status":  # rendered (the panel may be scrolled: any heading will do)
                wait_for(browser, "document.querySelectorAll('#status-body h3').length > 0")
            found[(width, name)] = axe_violations(browser)
        overflow = browser.execute_script(
            "return document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        assert overflow <= 0, f"the page scrolls sideways at {width} px"
    open_view(browser, "layers", base_url)
    screenshot(browser, "phone")
    browser.set_window_size(1280, 900)
    browser.get(base_url + "/status")
    assert browser.find_element(By.TAG_NAME, "h1").text.endswith("operating status")
    found["status page"] = axe_violations(browser)
    screenshot(browser, "status")
    record(browser)
    assert {k: v for k, v in found.items() if v} == {}


def test_no_request_left_loopback(browser, base_url, trap):
    """The page's requests (performance log) all went to the server; nothing, MapLibre's
    worker included, reached the proxy that takes every off-loopback request."""
    record(browser)
    assert len(SEEN) > 20 and any("/api/raster-tiles/" in u for u in SEEN)
    assert off_loopback(SEEN, base_url) == []
    assert trap.from_pages == [], "\n".join(trap.seen)
    logged = browser.get_log("browser")
    assert [e["message"] for e in logged if "Content Security Policy" in e["message"]] == []
    # Controls: the page's policy refuses an outside fetch before it is sent, and the
    # proxy does see a fetch from a page without that policy.
    browser.get(base_url + "/")
    wait_for(browser, "document.body.dataset.ready")
    fetch = ("const done = arguments[arguments.length - 1]; fetch(arguments[0], {mode: 'no-cors'})"
             ".then(() => done('sent'), () => done('refused'));")  # fmt: skip
    assert browser.execute_async_script(fetch, "http://geoby-probe.invalid/csp") == "refused"
    browser.get("about:blank")
    browser.execute_async_script(fetch, "http://geoby-probe.invalid/trap")
    assert trap.from_pages == ["GET http://geoby-probe.invalid/trap HTTP/1.1"]
