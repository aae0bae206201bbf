"""``driftline worker`` and ``driftline models …``: run the stream, manage registered models."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from driftline.errors import ConfigurationError


def add_parsers(commands: Any) -> None:
    worker = commands.add_parser("worker", help="run a stream worker (Faust) until SIGTERM")
    worker.add_argument("--config", help="TOML or JSON file of worker settings (DRIFTLINE_* wins)")
    worker.set_defaults(handler=_worker)

    models = commands.add_parser("models", help="register models and attach references")
    actions = models.add_subparsers(dest="action", required=True)
    register = actions.add_parser("register", help="register or update a model")
    register.add_argument("--config", required=True, help="model configuration (JSON file)")
    register.add_argument("--reference", help="reference data (.csv or .parquet)")
    register.add_argument("--database-url", help="SQLAlchemy URL (default: DRIFTLINE_DATABASE_URL)")
    register.set_defaults(handler=_register)
    listing = actions.add_parser("list", help="list registered models")
    listing.add_argument("--database-url", help="SQLAlchemy URL (default: DRIFTLINE_DATABASE_URL)")
    listing.set_defaults(handler=_list)


def _worker(args: argparse.Namespace) -> int:
    from stream_app.settings import load_settings
    from stream_app.worker import run_worker

    run_worker(load_settings(args.config))
    return 0


def _sessions(database_url: str | None) -> Any:
    from storage.db import make_engine, session_factory
    from storage.migrate import upgrade
    from stream_app.settings import load_settings

    url = database_url or load_settings().database_url
    engine = make_engine(url)
    upgrade(engine)
    return session_factory(engine)


def _register(args: argparse.Namespace) -> int:
    from pathlib import Path

    from driftline.registration import register_model
    from schemas.model_config import ModelConfig

    path = Path(args.config)
    if not path.exists():
        raise ConfigurationError(f"model configuration {path} does not exist")
    config = ModelConfig.from_json(path.read_text())
    with _sessions(args.database_url).begin() as session:
        profile = register_model(session, config, args.reference)
    detail = (
        f"reference profile {profile.fingerprint} ({profile.n_rows:,} rows, "
        f"{len(profile.features)} features, outputs: {', '.join(profile.output_columns) or 'none'})"
        if profile
        else "no reference yet: attach one with --reference before streaming"
    )
    sys.stdout.write(f"registered model {config.model_id}: {detail}\n")
    return 0


def _list(args: argparse.Namespace) -> int:
    from storage import catalog

    with _sessions(args.database_url)() as session:
        for record in catalog.list_models(session):
            sys.stdout.write(
                json.dumps({"model_id": record.model_id, "reference": record.current_fingerprint})
                + "\n"
            )
    return 0
