"""``geoby waste subscribe|alerts|coverage``: live readings, alerts and station coverage."""

from __future__ import annotations

import json
import threading

import click

from layers.database import Database
from layers.settings import get_settings


@click.command()
@click.option("--report-every", default=10.0, show_default=True, help="Seconds between counts.")
def subscribe(report_every: float) -> None:
    """Store bin readings from the MQTT broker until interrupted (Ctrl-C)."""
    from waste.mqtt import Subscriber, broker_address

    settings = get_settings()
    database = Database(settings)
    host, port = broker_address(settings)
    subscriber = Subscriber(database, settings, client_id="geoby-waste-cli").start()
    click.echo(f"subscribed to {settings.broker.topic} on {host}:{port} (Ctrl-C to stop)")
    stop = threading.Event()
    try:
        while not stop.wait(report_every):
            click.echo(json.dumps(subscriber.counters.as_dict()))
    except KeyboardInterrupt:
        pass
    finally:
        subscriber.stop()
        database.close()
        click.echo(json.dumps(subscriber.counters.as_dict()))


@click.command()
@click.option("--check-dead", is_flag=True, help="First raise dead-sensor alerts.")
@click.option("--all", "everything", is_flag=True, help="Resolved alerts too.")
def alerts(check_dead: bool, everything: bool) -> None:
    """Open alerts, newest first: overflow, fire, temperature, tilt, battery, dead sensor."""
    from waste.readings import check_dead_sensors

    settings = get_settings()
    database = Database(settings)
    try:
        if check_dead:
            click.echo(
                f"{check_dead_sensors(database, settings.waste)} dead-sensor alert(s) raised"
            )
        with database.connection("read") as conn, conn.cursor() as cur:
            cur.execute("SELECT bin_id, kind, time, message, resolved_at FROM geoby.waste_alerts"
                        " WHERE %s OR resolved_at IS NULL ORDER BY raised_at DESC, id DESC",
                        (everything,))  # fmt: skip
            rows = cur.fetchall()
    finally:
        database.close()
    for bin_id, kind, time, message, resolved in rows:
        state = f"resolved {resolved:%Y-%m-%d %H:%M}" if resolved else "open"
        click.echo(f"{bin_id}\t{kind}\t{time:%Y-%m-%d %H:%M}\t{state}\t{message}")
    click.echo(f"{len(rows)} alert(s)")


@click.command()
@click.option("--walk-m", default=400.0, show_default=True, help="Walking distance (m).")
@click.option("--propose", type=click.IntRange(min=1), help="Site this many new stations.")
def coverage(walk_m: float, propose: int | None) -> None:
    """Homes with a recycling station within walking distance, by fraction."""
    from waste import coverage as cov

    database = Database(get_settings())
    try:
        net, homes, stations = cov.walkways(database), cov.homes(database), cov.stations(database)
        summary, _ = cov.coverage(net, homes, stations, walk_m=walk_m)
        for row in summary.itertuples():
            click.echo(f"{row.fraction}\t{row.stations} stations\t{row.covered:,} of "
                       f"{row.homes:,} homes\t{row.share:.1%}")  # fmt: skip
        if propose:
            found = cov.propose_stations(net, homes, stations, propose, walk_m=walk_m)
            for site in found["sites"]:
                click.echo(f"new station at ({site['x']:.1f}, {site['y']:.1f}) EPSG:25832: "
                           f"+{site['newly_covered']} homes")  # fmt: skip
            click.echo(f"{found['covered_before']:,} -> {found['covered_after']:,} of "
                       f"{found['homes']:,} homes within {walk_m:g} m of a station")  # fmt: skip
    finally:
        database.close()


COMMANDS = (subscribe, alerts, coverage)
