"""``driftline api`` (serve the HTTP API) and ``driftline api-keys`` (create, list, revoke)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from driftline.errors import ConfigurationError
from driftline.pipeline_commands import open_sessions


def add_parsers(commands: Any) -> None:
    serve = commands.add_parser("api", help="serve the HTTP API with uvicorn until SIGTERM")
    serve.add_argument("--host", help="address to listen on (default: DRIFTLINE_API_HOST)")
    serve.add_argument("--port", type=int, help="port (default: DRIFTLINE_API_PORT, 8000)")
    serve.set_defaults(handler=_serve)

    keys = commands.add_parser("api-keys", help="API keys: create, list, revoke")
    actions = keys.add_subparsers(dest="action", required=True)
    create = actions.add_parser("create", help="a new key (shown once; only its hash is kept)")
    create.add_argument("--name", required=True, help="who or what uses it")
    create.add_argument("--scope", choices=["read", "admin"], default="read")
    create.add_argument("--database-url", help="SQLAlchemy URL (default: DRIFTLINE_DATABASE_URL)")
    create.set_defaults(handler=_create)
    listing = actions.add_parser("list", help="every key (never the secret)")
    listing.add_argument("--database-url", help="SQLAlchemy URL (default: DRIFTLINE_DATABASE_URL)")
    listing.set_defaults(handler=_list)
    revoke = actions.add_parser("revoke", help="revoke a key by id")
    revoke.add_argument("id")
    revoke.add_argument("--database-url", help="SQLAlchemy URL (default: DRIFTLINE_DATABASE_URL)")
    revoke.set_defaults(handler=_revoke)


def _serve(args: argparse.Namespace) -> int:
    import gc

    import uvicorn

    from api.main import create_app
    from api.settings import ApiSettings
    from storage.db import make_engine
    from storage.migrate import upgrade

    settings = ApiSettings()
    upgrade(make_engine(settings.database_url))
    app = create_app(settings)
    # What start-up built (modules, the app and its routes) lives as long as the process:
    # out of the collector's reach, full collections have far less to walk, and the
    # latency tail loses their pauses (docs/benchmarks.md).
    gc.collect()
    gc.freeze()
    uvicorn.run(app, host=args.host or settings.api_host, port=args.port or settings.api_port)
    return 0


def _create(args: argparse.Namespace) -> int:
    from storage.api_keys import create_key

    with open_sessions(args.database_url).begin() as session:
        record, key = create_key(session, args.name, args.scope)
    sys.stdout.write(
        f"key {record.id} ({record.scope}) for {record.name}:\n{key}\n"
        "Store it now: only its hash is kept. Use it as: Authorization: Bearer <key>\n"
    )
    return 0


def _list(args: argparse.Namespace) -> int:
    from storage.api_keys import list_keys

    with open_sessions(args.database_url)() as session:
        found = list_keys(session)
    for record in found:
        state = f"revoked {record.revoked_at:%Y-%m-%d}" if record.revoked_at else "live"
        sys.stdout.write(
            f"{record.id}  {record.scope:5}  {state:18}  {record.name}  "
            f"(created {record.created_at:%Y-%m-%d %H:%M} UTC)\n"
        )
    if not found:
        sys.stdout.write("no API keys; create one with: driftline api-keys create --name …\n")
    return 0


def _revoke(args: argparse.Namespace) -> int:
    from storage.api_keys import revoke_key

    with open_sessions(args.database_url).begin() as session:
        revoked = revoke_key(session, args.id)
    if not revoked:
        raise ConfigurationError(f"no live API key {args.id!r}; see `driftline api-keys list`")
    sys.stdout.write(f"API key {args.id} revoked\n")
    return 0
