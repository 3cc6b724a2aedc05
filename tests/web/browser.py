"""Headless Chromium (the Debian packages) driven by Selenium, and what the web tests check in it.

No browser or driver is downloaded: Selenium is given ``/usr/bin/chromium`` and
``/usr/bin/chromedriver``. Every request the browser would send off loopback
goes to :class:`Trap`, a recording proxy that answers 403 (Chromium sends
loopback addresses direct and everything else, workers' fetches included,
through ``--proxy-server``); the page's own requests are also read from the
performance log. axe-core is injected from ``web/node_modules``.
"""

from __future__ import annotations

import json
import re
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from selenium import webdriver
from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
AXE = ROOT / "web" / "node_modules" / "axe-core" / "axe.min.js"
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
LOCAL_SCHEMES = ("data:", "blob:", "about:", "chrome-error:")
CHROME_SERVICES = re.compile(
    r"^\S+ (https?://)?[a-z0-9.-]+\.(google\.com|googleapis\.com|gvt1\.com)[:/]"
)


class Trap:
    """A proxy that records the first line of every request it gets and refuses it."""

    def __init__(self) -> None:
        self.seen: list[str] = []
        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(16)
        self.port = self._sock.getsockname()[1]
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            with conn:
                conn.settimeout(5)
                try:
                    first = conn.recv(4096).split(b"\r\n", 1)[0].decode(errors="replace")
                except OSError:
                    first = "(unreadable request)"
                self.seen.append(first)
                conn.sendall(
                    b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                )

    def close(self) -> None:
        self._sock.close()

    @property
    def from_pages(self) -> list[str]:
        """What reached the proxy, less Chromium's own services (sign-in, component
        updates, network time), which the browser process calls whatever the page does
        and whatever the switches say; the page's policy would refuse them anyway."""
        return [r for r in self.seen if not CHROME_SERVICES.search(r)]


@contextmanager
def chromium(downloads: Path, trap: Trap) -> Iterator[webdriver.Chrome]:
    """A headless Chromium with WebGL (SwiftShader), downloads into ``downloads``."""
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.exists()]
    assert not missing, (
        f"missing {missing}: install the Debian packages chromium and chromium-driver (make tools)"
    )
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for arg in (
        "--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,900",
        "--use-angle=swiftshader", "--enable-unsafe-swiftshader", "--ignore-gpu-blocklist",
        f"--proxy-server=http://127.0.0.1:{trap.port}",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--disable-default-apps", "--no-first-run", "--disable-domain-reliability",
        "--disable-client-side-phishing-detection", "--metrics-recording-only", "--no-pings",
        "--disable-features=OptimizationHints,MediaRouter,Translate,AutofillServerCommunication,"
        "NetworkTimeServiceQuerying",
    ):  # fmt: skip
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"performance": "ALL", "browser": "ALL"})
    options.add_experimental_option("prefs", {
        "download.default_directory": str(downloads), "download.prompt_for_download": False,
        "safebrowsing.enabled": False,
    })  # fmt: skip
    driver = webdriver.Chrome(options=options, service=Service(str(CHROMEDRIVER)))
    driver.execute_cdp_cmd(
        "Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)}
    )
    try:
        yield driver
    finally:
        driver.quit()


def page_requests(driver: webdriver.Chrome) -> list[str]:
    """URLs of the requests the page sent since the last call (performance log)."""
    urls = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message.get("method") == "Network.requestWillBeSent":
            urls.append(message["params"]["request"]["url"])
    return urls


def off_loopback(urls: list[str], base_url: str) -> list[str]:
    """The URLs that are neither on ``base_url`` nor local to the browser."""
    return [u for u in urls if not (u.startswith(base_url + "/") or u.startswith(LOCAL_SCHEMES))]


def wait_for(driver: webdriver.Chrome, script: str, timeout: float = 30) -> Any:
    """Wait until a JavaScript expression is truthy; return its value."""
    return WebDriverWait(driver, timeout, poll_frequency=0.1).until(
        lambda d: d.execute_script(f"return ({script})")
    )


def wait_text(driver: webdriver.Chrome, css: str, timeout: float = 30) -> str:
    """Wait until an element is visible and has text; return the text.

    The element is looked up again at every poll: the views re-render, and an element
    found before a re-render is stale afterwards.
    """

    def shown(d: webdriver.Chrome) -> str | bool:
        try:
            element = d.find_element(By.CSS_SELECTOR, css)
            return element.is_displayed() and element.text.strip() and element.text
        except (NoSuchElementException, StaleElementReferenceException):
            return False

    return WebDriverWait(driver, timeout, poll_frequency=0.1).until(shown)


def map_idle(driver: webdriver.Chrome, timeout: float = 30) -> None:
    """Wait until the map has loaded every tile it asked for."""
    wait_for(
        driver,
        "window.geobyMap && window.geobyMap.loaded() && window.geobyMap.areTilesLoaded()",
        timeout,
    )


def axe_violations(driver: webdriver.Chrome) -> list[dict[str, Any]]:
    """axe-core's serious and critical violations of WCAG 2.1 A/AA on the page as it is."""
    if not driver.execute_script("return typeof window.axe === 'object'"):
        driver.execute_script(AXE.read_text())
    found = driver.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "axe.run(document, {runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a',"
        " 'wcag21aa', 'best-practice']}, resultTypes: ['violations']})"
        ".then(r => done(r.violations)).catch(e => done([{id: 'axe-error', impact: 'critical',"
        " help: String(e), nodes: []}]));"
    )
    return [
        {"id": v["id"], "impact": v["impact"], "help": v["help"],
         "nodes": [n["target"] for n in v["nodes"]][:5]}
        for v in found if v["impact"] in ("serious", "critical")
    ]  # fmt: skip


def screenshot(driver: webdriver.Chrome, name: str) -> Path:
    """Save a screenshot under ``tests/web/artifacts``."""
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    driver.save_screenshot(str(path))
    return path
