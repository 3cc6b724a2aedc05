"""``geoby dig check|worker|rules``: the dig coordinator from the command line.

``check`` answers "what is buried here?" for a GeoJSON polygon (or line with
``--width``) without filing a request: it reads the restricted layers with the
database credentials of whoever runs it, and is meant for operators and
owners on the server. Contractors file requests over HTTP.
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import click

from dig_coordination import conflicts, notify, rules
from dig_coordination.model import WORK_TYPES
from dig_coordination.validate import DigRequestIn, check
from dig_coordination.workdays import WorkingCalendar
from layers.database import Database
from layers.errors import InvalidInput
from layers.settings import get_settings


@click.group()
def dig() -> None:
    """Dig requests: check an area, run the notification worker, list rules."""


def _geometry(path: Path) -> dict:
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise InvalidInput(
            f"{path}: not a readable GeoJSON file ({exc})", record=str(path)
        ) from exc
    if doc.get("type") == "FeatureCollection":
        if len(doc.get("features", [])) != 1:
            raise InvalidInput(f"{path}: give exactly one feature (the dig area)", record=str(path))
        doc = doc["features"][0]
    return doc.get("geometry", doc) if doc.get("type") == "Feature" else doc


@dig.command("check")
@click.argument("area", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--width", type=float, help="Width of the dig (m) when AREA is a line.")
@click.option("--crs", default=None, help="CRS of AREA (default CRS84 lon/lat).")
@click.option("--work-type", "work_types", multiple=True, type=click.Choice(WORK_TYPES),
              default=("machine_excavation",), show_default=True)  # fmt: skip
@click.option("--json", "as_json", is_flag=True, help="Print the assets as JSON lines.")
def check_(area: Path, width: float | None, crs: str | None, work_types: tuple[str, ...],
           as_json: bool) -> None:  # fmt: skip
    """List the buried assets within AREA plus the answer buffer, with precautions."""
    settings = get_settings()
    today = datetime.now(UTC).date()
    body = DigRequestIn(
        geometry=_geometry(area), line_width_m=width, start_date=today, end_date=today,
        work_types=list(work_types), contact={"name": "geoby dig check", "phone": "-"},
        **({"crs": crs} if crs else {}),
    )  # fmt: skip
    valid = check(body, settings.dig, WorkingCalendar(settings.dig), today)
    database = Database(settings)
    try:
        with database.connection("admin") as conn:
            found = conflicts.find(conn, valid.area, settings.dig.answer_buffer_m)
            applicable = rules.load(conn, sorted({a["owner"] for a in found}))
    finally:
        database.close()
    blocking = 0
    for asset in found:
        actions = rules.apply(applicable, asset, valid.work_types, asset["distance_m"])
        blocking += any(a.blocks for a in actions)
        if as_json:
            doc = {k: v for k, v in asset.items() if k not in ("geometry",)}
            doc["required_actions"] = [a.action for a in actions]
            click.echo(json.dumps(doc, default=str))
    owners = Counter(a["owner"] for a in found)
    summary = ", ".join(f"{o} {n}" for o, n in sorted(owners.items())) or "none"
    click.echo(f"{len(found)} assets within {settings.dig.answer_buffer_m:g} m of "
               f"{valid.area.area:,.0f} m2 ({blocking} need a blocking precaution); "
               f"owners: {summary}")  # fmt: skip


@dig.command("worker")
@click.option("--once", is_flag=True, help="Deliver what is due and send reminders, then stop.")
@click.option("--interval", default=2.0, show_default=True, help="Seconds between passes.")
def worker(once: bool, interval: float) -> None:
    """Deliver notifications (webhooks, email) and deadline reminders."""
    settings = get_settings()
    database = Database(settings)
    try:
        if once:
            reminded = notify.due_reminders(database, settings)
            report = notify.deliver_due(database, settings)
            click.echo(f"{reminded} reminders queued; {report}")
            return
        stop = threading.Event()
        click.echo("notification worker running; Ctrl-C stops it", err=True)
        try:
            notify.run_worker(database, settings, stop=stop, interval_s=interval)
        except KeyboardInterrupt:
            stop.set()
            click.echo("notification worker stopped")
    finally:
        database.close()


@dig.command("rules")
@click.option("--owner", help="Also the rules of this owner.")
def rules_(owner: str | None) -> None:
    """List the precaution rules (defaults and an owner's)."""
    database = Database(get_settings())
    try:
        with database.connection("admin") as conn:
            found = rules.load(conn, [owner] if owner else [])
    finally:
        database.close()
    for r in found:
        scope = " ".join(str(v) for v in (r.utility_type or "any", r.subtype or "",
                                            r.hazard_class or "") if v)  # fmt: skip
        work = ",".join(r.work_types) if r.work_types else "any work"
        click.echo(f"{r.id:>4} {r.owner or 'default':<20} {scope:<34} {work:<40} "
                   f"[{r.min_distance_m:g}, {r.max_distance_m:g}) m {r.action}"
                   f"{' BLOCKS' if r.blocks else ''}")  # fmt: skip
    click.echo(f"{len(found)} rules")
