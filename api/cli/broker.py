"""``geoby broker up|down|status``: the private MQTT broker bin sensors publish to."""

from __future__ import annotations

import click

from layers.broker import LocalBroker
from layers.errors import ClusterError
from layers.settings import get_settings


@click.group()
def broker() -> None:
    """Start, stop and inspect the private MQTT broker (Mosquitto under ./var/mqtt)."""


def _local() -> LocalBroker:
    settings = get_settings()
    if settings.broker.host:
        raise ClusterError(f"GEOBY_BROKER_HOST is set ({settings.broker.host}): that broker is "
                           "not geoby's to start or stop")  # fmt: skip
    return LocalBroker(settings.broker.directory)


@broker.command()
@click.option("--no-install", is_flag=True, help="Never install OS packages; fail instead.")
def up(no_install: bool) -> None:
    """Start the broker on a free loopback port (installing Mosquitto if needed)."""
    port = _local().up(allow_install=not no_install)
    click.echo(f"MQTT broker ready at 127.0.0.1:{port} (topic {get_settings().broker.topic})")


@broker.command()
def down() -> None:
    """Stop the private broker."""
    click.echo("MQTT broker stopped" if _local().down() else "MQTT broker was not running")


@broker.command()
def status() -> None:
    """Say whether the broker runs; exit 1 when it does not."""
    local = _local()
    if not local.running():
        click.echo("MQTT broker is not running")
        raise SystemExit(1)
    click.echo(f"MQTT broker running at 127.0.0.1:{local.port}")
