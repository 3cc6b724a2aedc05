"""``geoby waste ...``: solve a CVRPLIB/TSPLIB instance, plan a day, route it; with the
live commands of :mod:`api.cli.waste_live` (subscribe, alerts, coverage)."""

from __future__ import annotations

from pathlib import Path

import click

from api.cli.waste_live import COMMANDS
from layers.errors import GeobyError

ENGINES = ("pyvrp", "nearest-neighbour")


@click.group()
def waste() -> None:
    """Waste collection: routes, readings, coverage."""


@waste.command()
@click.argument("instance", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--seconds", default=10.0, show_default=True, type=click.FloatRange(min=0.01),
              help="Time limit of the search.")  # fmt: skip
@click.option("--seed", default=0, show_default=True, help="Seed of the search.")
@click.option("--best-known", type=int, help="Cost to compare with (default: the .sol file).")
@click.option("--engine", type=click.Choice(ENGINES), default="pyvrp", show_default=True)
def solve(instance: Path, seconds: float, seed: int, best_known: int | None, engine: str) -> None:
    """Solve INSTANCE (.vrp) and print its cost, routes and gap to the best known."""
    from waste.engines import NearestNeighbourEngine, PyVRPEngine
    from waste.vrplib_ import solve_instance

    solver = PyVRPEngine() if engine == "pyvrp" else NearestNeighbourEngine()
    outcome = solve_instance(instance, solver, seconds=seconds, seed=seed,
                             best_known_cost=best_known)  # fmt: skip
    for violation in outcome.violations:
        click.echo(f"violation: {violation}", err=True)
    gap = "" if outcome.gap is None else f", gap {outcome.gap:+.2%} to {outcome.best_known:,}"
    click.echo(f"{outcome.instance}: cost {outcome.solution.cost:,}, "
               f"{len(outcome.solution.routes)} routes{gap} ({outcome.engine}, "
               f"{outcome.seconds:.1f} s)")  # fmt: skip
    if outcome.violations:
        raise GeobyError(f"the solution breaks {len(outcome.violations)} constraint(s)")


@waste.command()
@click.option("--day", help="YYYY-MM-DD (default: the workday after the latest reading).")
@click.option("--threshold", default=0.8, show_default=True, type=click.FloatRange(0, 1,
              min_open=True), help="Empty bins forecast over this fill before the next visit.")  # fmt: skip
@click.option("--json", "as_json", is_flag=True, help="Print the plan as JSON.")
def plan(day: str | None, threshold: float, as_json: bool) -> None:
    """The bins to empty on a day, with the reason for each."""
    import json

    from layers.database import Database
    from layers.settings import get_settings
    from waste import service

    database = Database(get_settings())
    try:
        found = service.plan(database, day, threshold)
    finally:
        database.close()
    if as_json:
        click.echo(json.dumps(found, indent=2))
        return
    for b in found["bins"]:
        click.echo(f"{b['bin_id']}\t{b['fraction']}\t{b['reason']}\tnow {b['fill_now']:.0%}\t"
                   f"next visit {b['fill_at_next_visit']:.0%}\t{b['address'] or ''}")  # fmt: skip
    click.echo(f"{found['day']}: {len(found['bins'])} of {found['bins_known']} bins to empty")


@waste.command()
@click.option("--day", help="YYYY-MM-DD (default: the workday after the latest reading).")
@click.option("--threshold", default=0.8, show_default=True, type=click.FloatRange(0, 1,
              min_open=True), help="Empty bins forecast over this fill before the next visit.")  # fmt: skip
@click.option("--seconds", default=5.0, show_default=True, type=click.FloatRange(min=0.1),
              help="Search time per disposal site.")  # fmt: skip
def routes(day: str | None, threshold: float, seconds: float) -> None:
    """Plan a day, route the trucks over the roads and store the routes as layers."""
    from layers.database import Database
    from layers.settings import get_settings
    from waste import collection, service

    database = Database(get_settings())
    try:
        found = collection.route_day(database, service.plan(database, day, threshold),
                                     seconds=seconds)  # fmt: skip
    finally:
        database.close()
    for site in found["by_site"]:
        click.echo(f"{site['site']}: {', '.join(site['fractions'])}: {site['trucks']} truck(s), "
                   f"{site['distance_km']:.1f} km")  # fmt: skip
    click.echo(f"{found['day']}: {found['routes']} routes, {found['bins']} bins, "
               f"{found['distance_km']:.1f} km, {found['duration_h']:.1f} h "
               "(layers waste_routes, waste_route_stops)")  # fmt: skip


for _command in COMMANDS:
    waste.add_command(_command)
