"""Locust users for the mixed load on a running geoby API.

Run by :mod:`tests.reliability.load.helpers` as its own process (gevent's
monkey-patching never touches the pytest process)::

    GEOBY_LOAD_CONFIG=config.json locust -f tests/reliability/load/locustfile.py \\
        --headless -u 50 -r 25 -t 15s --host http://127.0.0.1:PORT --csv PREFIX --only-summary

``config.json`` (written by the test) holds the tokens, the tiles and items of
open layers to read, ready dig-request bodies and the bin ids; ``accepted``
names the JSON-lines file where every write the API ACCEPTED is written (dig
id and description from the 201 body; reading bin and time on a 2xx that
stored it), and every write it refused, with the status, so the test can check
the database afterwards: every accepted write stored exactly once.

Each request is named by its type (``tile``, ``items``, ``item``, ``layers``,
``dig``, ``reading``) in locust's statistics; a failure is named by its status
(``status 503`` when the answer carries ``Retry-After``, ``status 503 without
Retry-After`` otherwise), so the CSV of failures gives the errors by status.
"""

from __future__ import annotations

import itertools
import json
import os
import random
from datetime import datetime, timedelta

from locust import HttpUser, between, events, task

CONFIG = json.loads(open(os.environ["GEOBY_LOAD_CONFIG"], encoding="utf-8").read())  # noqa: SIM115
TIMEOUT_S = float(CONFIG.get("timeout_s", 60))
_LOG = open(CONFIG["accepted"], "a", encoding="utf-8", buffering=1)  # noqa: SIM115 - whole run
_SERIAL = itertools.count()
_READING_BASE = datetime.fromisoformat(CONFIG["reading_base"])


def _note(kind: str, **fields: object) -> None:
    _LOG.write(json.dumps({"kind": kind, **fields}) + "\n")


@events.quitting.add_listener
def _close(environment, **kwargs) -> None:  # noqa: ANN001, ARG001 - locust's signature
    _LOG.flush()
    os.fsync(_LOG.fileno())


def _judge(response, accepted: tuple[int, ...] = (200,)) -> bool:  # noqa: ANN001
    """Mark the response ok or failed (by status); returns whether it was accepted."""
    status = response.status_code
    if status in accepted:
        response.success()
        return True
    if status == 503:
        retry = "" if response.headers.get("Retry-After") else " without Retry-After"
        response.failure(f"status 503{retry}")
    elif status == 0:
        response.failure(f"no answer: {type(response.error).__name__}")
    else:
        response.failure(f"status {status}")
    return False


class Visitor(HttpUser):
    """A client of the platform: map tiles and features mostly, some writes."""

    wait_time = between(CONFIG.get("wait_min_s", 0.05), CONFIG.get("wait_max_s", 0.3))

    @task(30)
    def tile(self) -> None:
        collection, z, x, y = random.choice(CONFIG["tiles"])
        path = f"/ogc/collections/{collection}/tiles/WebMercatorQuad/{z}/{x}/{y}"
        with self.client.get(path, name="tile", catch_response=True, timeout=TIMEOUT_S,
                             headers={"Accept": "application/vnd.mapbox-vector-tile"}) as r:  # fmt: skip
            _judge(r, (200, 204))

    @task(25)
    def items(self) -> None:
        collection, bbox = random.choice(CONFIG["bboxes"])
        params = {"bbox": ",".join(f"{v:.6f}" for v in bbox), "limit": random.choice((10, 50)),
                  "f": "json"}  # fmt: skip
        with self.client.get(f"/ogc/collections/{collection}/items", params=params, name="items",
                             catch_response=True, timeout=TIMEOUT_S) as r:  # fmt: skip
            _judge(r)

    @task(15)
    def item(self) -> None:
        collection, item_id = random.choice(CONFIG["items"])
        with self.client.get(f"/ogc/collections/{collection}/items/{item_id}?f=json",
                             name="item", catch_response=True, timeout=TIMEOUT_S) as r:  # fmt: skip
            _judge(r)

    @task(10)
    def layers(self) -> None:
        with self.client.get("/api/layers", name="layers", catch_response=True,
                             timeout=TIMEOUT_S) as r:  # fmt: skip
            _judge(r)

    @task(15)
    def reading(self) -> None:
        # A unique time per request (one locust process): each reading is stored once.
        at = (_READING_BASE + timedelta(milliseconds=next(_SERIAL))).isoformat()
        bin_id = random.choice(CONFIG["bins"])
        body = {"bin_id": bin_id, "time": at, "fill_level": round(random.uniform(0.1, 0.8), 3)}
        headers = {"Authorization": f"Bearer {CONFIG['tokens']['utility']}"}
        with self.client.post("/api/waste/readings", json=body, headers=headers, name="reading",
                              catch_response=True, timeout=TIMEOUT_S) as r:  # fmt: skip
            if _judge(r):
                doc = r.json()
                _note("reading", bin=bin_id, time=at, stored=doc.get("stored"),
                      duplicates=doc.get("duplicates"), rejected=len(doc.get("rejected", [])))  # fmt: skip
            else:
                _note("reading_refused", bin=bin_id, time=at, status=r.status_code)

    @task(5)
    def dig(self) -> None:
        description = f"{CONFIG['run']} dig {next(_SERIAL)}"
        body = {**random.choice(CONFIG["digs"]), "description": description}
        headers = {"Authorization": f"Bearer {CONFIG['tokens']['contractor']}"}
        with self.client.post("/api/dig-requests", json=body, headers=headers, name="dig",
                              catch_response=True, timeout=TIMEOUT_S) as r:  # fmt: skip
            if _judge(r, (201,)):
                doc = r.json()
                _note("dig", id=doc["id"], reference=doc.get("reference"),
                      description=description)  # fmt: skip
            else:
                _note("dig_refused", description=description, status=r.status_code)
