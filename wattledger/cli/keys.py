"""``wattledger keys``: create, list and revoke the API keys ingest accepts."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError, OperationalError

from wattledger.cli._common import (
    CONTEXT_SETTINGS,
    emit_json,
    err_console,
    existing_warehouse,
    json_option,
    state,
)
from wattledger.errors import DatabaseError, WattledgerError
from wattledger.migrations import runner
from wattledger.models import explain_connection_error, make_engine

keys_app = typer.Typer(
    help="Create, list and revoke ingest API keys (stored hashed).",
    context_settings=CONTEXT_SETTINGS,
    no_args_is_help=True,
)


def _engine(ctx: typer.Context) -> Engine:
    url = existing_warehouse(state(ctx).settings().url)
    rev = runner.status(url)
    if rev.current is None:
        raise DatabaseError(
            "The warehouse has no tables yet.", hint="Run `wattledger db upgrade` first."
        )
    return make_engine(url)


def _run(ctx: typer.Context, fn: Any, *args: Any) -> Any:
    engine = _engine(ctx)
    try:
        return fn(engine, *args)
    except (OperationalError, DBAPIError) as e:
        raise explain_connection_error(engine.url.render_as_string(), e) from e
    finally:
        engine.dispose()


def _public(row: dict[str, Any]) -> dict[str, Any]:
    return {k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in row.items()}


@keys_app.command()
def create(
    ctx: typer.Context,
    tenant: Annotated[
        str, typer.Option("--tenant", "-t", help="Tenant stamped on every row sent with this key.")
    ],
    label: Annotated[
        str | None,
        typer.Option("--label", help="A note, e.g. the service or cluster using the key."),
    ] = None,
    as_json: bool = json_option(),
) -> None:
    """Create an API key for TENANT and print it once. Only a hash is stored.

    \b
    Example:
      wattledger keys create --tenant acme --label prod-collector
      export OTEL_EXPORTER_OTLP_HEADERS="Authorization=Bearer $(wattledger keys create -t acme)"
    """
    from wattledger.ingest.auth import create_key

    try:
        new = _run(ctx, create_key, tenant, label)
    except ValueError as e:
        raise WattledgerError(str(e), hint="Pick a name like acme or team-a.") from e
    if as_json:
        emit_json(
            {
                "key": new.key,
                "key_id": new.key_id,
                "tenant": new.tenant,
                "label": new.label,
                "created_at": new.created_at.isoformat(),
            }
        )
    else:
        typer.echo(new.key)
    err_console.print(
        f"Created key [bold]{new.key_id}[/bold] for tenant [bold]{new.tenant}[/bold]. "
        "Store it now: it cannot be shown again.",
        highlight=False,
    )


@keys_app.command("list")
def list_(
    ctx: typer.Context,
    tenant: Annotated[
        str | None, typer.Option("--tenant", "-t", help="Only this tenant's keys.")
    ] = None,
    as_json: bool = json_option(),
) -> None:
    """List API keys: id, tenant, label, when created, last used and revoked. Never secrets.

    \b
    Example:
      wattledger keys list
      wattledger keys list --tenant acme --json
    """
    from wattledger.ingest.auth import list_keys

    rows = [_public(r) for r in _run(ctx, list_keys, tenant)]
    if as_json:
        emit_json(rows)
        return
    if not rows:
        err_console.print("No keys yet. Create one with `wattledger keys create --tenant NAME`.")
        return
    cols = ("key_id", "tenant", "label", "created_at", "last_used_at", "revoked_at")
    widths = {c: max(len(c), *(len(str(r[c] or "-")) for r in rows)) for c in cols}
    typer.echo("  ".join(c.ljust(widths[c]) for c in cols).rstrip())
    for r in rows:
        typer.echo("  ".join(str(r[c] or "-").ljust(widths[c]) for c in cols).rstrip())


@keys_app.command()
def revoke(
    ctx: typer.Context,
    key_id: Annotated[str, typer.Argument(help="The key id shown by `keys list` (or the key).")],
    as_json: bool = json_option(),
) -> None:
    """Revoke a key: requests sent with it get 401 (within ingest.auth_cache_ttl_s seconds).

    \b
    Example:
      wattledger keys revoke 3f9c0a1b2c4d
    """
    from wattledger.ingest.auth import AuthError, revoke_key

    try:
        row = _run(ctx, revoke_key, key_id)
    except AuthError as e:
        raise WattledgerError(
            f"{key_id!r} is not a key id or key.", hint="Find the id with `wattledger keys list`."
        ) from e
    if row is None:
        raise WattledgerError(
            f"No key with id {key_id!r}.", hint="Find the id with `wattledger keys list`."
        )
    if as_json:
        emit_json(_public(row))
    else:
        err_console.print(
            f"Key [bold]{row['key_id']}[/bold] of tenant {row['tenant']} is "
            f"revoked (since {row['revoked_at']}).",
            highlight=False,
        )


def register(app: typer.Typer) -> None:
    """Add the ``keys`` group to the root app."""
    app.add_typer(keys_app, name="keys")
