"""``geoby users add|list|revoke``: organisations, users and their tokens."""

from __future__ import annotations

import click

from dig_coordination import users as accounts
from dig_coordination.model import ROLES
from layers.database import Database
from layers.settings import get_settings


@click.group()
def users() -> None:
    """Manage users, their organisations and bearer tokens."""


@users.command("add")
@click.option("--org", required=True, help="Organisation (a utility: exactly its assets' owner).")
@click.option("--role", required=True, type=click.Choice(ROLES), help="What the user may do.")
@click.option("--name", help="User name (default: ROLE@ORG).")
@click.option("--email", help="The user's email address.")
@click.option("--org-email", help="Where the organisation's notifications go.")
@click.option("--webhook-url", help="Where the organisation's signed webhooks go.")
@click.option("--webhook-secret", help="HMAC key for the webhooks (default: generated).")
@click.option(
    "--manual-answers",
    is_flag=True,
    default=None,
    help="The organisation answers dig requests by hand (deadline clock).",
)
@click.option("--expires-days", type=int, help="The token expires after this many days.")
def add(org: str, role: str, name: str | None, email: str | None, org_email: str | None,
        webhook_url: str | None, webhook_secret: str | None, manual_answers: bool | None,
        expires_days: int | None) -> None:  # fmt: skip
    """Add a user (and its organisation when new) and print a new token, once."""
    database = Database(get_settings())
    try:
        with database.connection("admin") as conn:
            accounts.ensure_organisation(
                conn, org, email=org_email, webhook_url=webhook_url,
                webhook_secret=webhook_secret, answers_manually=manual_answers,
            )  # fmt: skip
            principal, token = accounts.add_user(
                conn, org=org, role=role, name=name, email=email, expires_days=expires_days
            )
    finally:
        database.close()
    click.echo(token)
    click.echo(
        f"user {principal.user_name!r} ({role}) of {principal.org_name!r}: token printed above; "
        "it is shown only now",
        err=True,
    )


@users.command("list")
def list_() -> None:
    """List users with their role and live tokens' prefixes."""
    database = Database(get_settings())
    try:
        with database.connection("admin") as conn:
            found = accounts.list_users(conn)
    finally:
        database.close()
    for u in found:
        state = "disabled" if u["disabled_at"] else ", ".join(u["tokens"] or []) or "no token"
        click.echo(f"{u['organisation']:<28} {u['name']:<28} {u['role']:<10} {state}")
    click.echo(f"{len(found)} users")


@users.command("revoke")
@click.argument("token_or_prefix")
def revoke(token_or_prefix: str) -> None:
    """Revoke a token given whole or by its prefix (8+ characters, see `users list`)."""
    database = Database(get_settings())
    try:
        with database.connection("admin") as conn:
            n = accounts.revoke(conn, token_or_prefix)
    finally:
        database.close()
    click.echo(f"{n} token(s) revoked")
