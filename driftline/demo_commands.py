"""``driftline demo``: the end-to-end demo (``--offline``: the statistics alone, in process)."""

from __future__ import annotations

import argparse
import sys
from typing import Any


def add_parsers(commands: Any) -> None:
    demo = commands.add_parser(
        "demo",
        help="run the end-to-end demo on a generated stream with drift",
        description="Start a local broker, a worker, the API and the alert sinks, stream "
        "generated predictions and labels with drift through them, and print what was "
        "detected and delivered.",
    )
    demo.add_argument("--seed", type=int, default=7, help="random seed of the generated stream")
    demo.add_argument(
        "--offline", action="store_true", help="only the statistics, in-process (no broker)"
    )
    demo.add_argument(
        "--no-serve",
        action="store_true",
        help="end when the stream is done (default: then serve the API and dashboard until Ctrl-C)",
    )
    demo.set_defaults(handler=_demo)


def _demo(args: argparse.Namespace) -> int:
    if args.offline:
        from driftline.demo import run

        run(sys.stdout, seed=args.seed)
    else:
        from driftline import stream_demo

        result = stream_demo.run(sys.stdout, seed=args.seed)
        if not args.no_serve:
            _serve(result.database_url, stream_demo.MODEL_ID)
    return 0


def _serve(database_url: str, model_id: str) -> None:
    """The API and dashboard on the demo's results, in the foreground until Ctrl-C."""
    import uvicorn

    from api.main import create_app
    from api.settings import ApiSettings
    from driftline.demo_api import free_port
    from storage.api_keys import create_key
    from storage.db import make_engine, session_factory

    settings = ApiSettings(database_url=database_url, api_open_dashboard=True)
    with session_factory(make_engine(database_url)).begin() as session:
        _, key = create_key(session, "demo-serve", "read")
    base = f"http://127.0.0.1:{free_port()}"
    sys.stdout.write(
        f"\nDashboard: {base}/dashboard/models/{model_id}\n"
        f"API:       {base}/api/v1/models/{model_id}/drift (Authorization: Bearer {key})\n"
        "Serving the demo's results until Ctrl-C (driftline demo --no-serve ends here).\n"
    )
    sys.stdout.flush()
    uvicorn.run(
        create_app(settings),
        host="127.0.0.1",
        port=int(base.rsplit(":", 1)[1]),
        log_level="warning",
    )
