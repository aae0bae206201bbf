"""``driftline windows | drift | metrics | triggers | alerts``: results from the command line.

They read the results database through ``storage``, as the HTTP API does, and print a table
(``--json`` or ``--csv`` for scripts; ``driftline.result_output``). A model that is not
registered, or a time that cannot be read, is a usage error (exit status 2) naming the
problem; a model with no results in the range prints its header and says so on stderr.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict
from typing import Any

from driftline.errors import ConfigurationError
from driftline.pipeline_commands import moment, open_sessions
from driftline.result_output import add_format_options, write_rows
from storage.drift_pages import DriftPoint

WINDOW_COLUMNS = (
    "window_start",
    "window_end",
    "n_rows",
    "n_late",
    "n_drifted",
    "share_drifted",
    "dataset_drift",
    "output_drift",
    "n_labeled",
    "label_coverage",
    "final",
)
# The API's CSV columns too (api/routes/drift.py): a drift point as storage reads it.
DRIFT_COLUMNS = DriftPoint._fields
METRIC_COLUMNS = (
    "window_start",
    "metric",
    "value",
    "n_labeled",
    "label_coverage",
    "revision",
    "lower",
    "upper",
    "anomaly",
)
TRIGGER_COLUMNS = (
    "created_at",
    "trigger_id",
    "model_version",
    "window_start",
    "window_end",
    "reason",
    "published_at",
)
ALERT_COLUMNS = (
    "starts_at",
    "model_id",
    "rule",
    "subject",
    "severity",
    "status",
    "summary",
    "resolved_at",
)
DRIFT_PAGE = 5000


def add_parsers(commands: Any) -> None:
    def results_parser(name: str, help_text: str, *, model: bool = True) -> Any:
        parser = commands.add_parser(name, help=help_text, description=help_text + ".")
        if model:
            parser.add_argument("model_id", metavar="MODEL", help="the model's id")
        parser.add_argument(
            "--database-url", help="SQLAlchemy URL (default: DRIFTLINE_DATABASE_URL)"
        )
        add_format_options(parser)
        return parser

    def time_range(parser: Any) -> None:
        parser.add_argument(
            "--since", type=moment, metavar="TIME", help="windows starting at or after it"
        )
        parser.add_argument(
            "--until", type=moment, metavar="TIME", help="windows starting before it"
        )

    windows = results_parser("windows", "a model's windows: rows, drift and label coverage")
    time_range(windows)
    windows.set_defaults(handler=_windows)

    drift = results_parser("drift", "a model's drift history: per window, feature and method")
    drift.add_argument(
        "--feature", action="append", default=[], help="only this feature (repeatable)"
    )
    drift.add_argument("--method", help="only this method (psi, ks, chi2, ...)")
    drift.add_argument(
        "--status", choices=("ok", "warning", "drift", "no data"), help="only this verdict"
    )
    time_range(drift)
    drift.set_defaults(handler=_drift)

    metrics = results_parser(
        "metrics", "a model's quality metrics per window, with their 3-sigma limits"
    )
    metrics.add_argument("--metric", help="only this metric (accuracy, f1, rmse, ...)")
    time_range(metrics)
    metrics.set_defaults(handler=_metrics)

    triggers = results_parser("triggers", "a model's retraining triggers, oldest first")
    triggers.set_defaults(handler=_triggers)

    alerts = results_parser("alerts", "alerts as they stand, oldest first", model=False)
    alerts.add_argument("--model", dest="model_id", help="only this model's")
    alerts.add_argument("--status", choices=("firing", "resolved"), help="only these")
    alerts.set_defaults(handler=_alerts)


def _print(
    args: argparse.Namespace, rows: Sequence[dict[str, Any]], columns: Sequence[str], what: str
) -> int:
    write_rows(rows, columns, args.output, sys.stdout, title=what)
    if not rows:
        sys.stderr.write(f"driftline {args.command}: no {what} found\n")
    return 0


def _reading(
    args: argparse.Namespace, read: Callable[[Any], list[dict[str, Any]]]
) -> list[dict[str, Any]]:
    """``read(session)`` on the results database, once the model (if any) is known there."""
    from storage import catalog

    with open_sessions(args.database_url)() as session:
        model_id = getattr(args, "model_id", None)
        if model_id is not None and catalog.get_model(session, model_id) is None:
            known = [m.model_id for m in catalog.list_models(session, include_deleted=True)]
            raise ConfigurationError(
                f"no model {model_id!r} in the results database; registered: "
                f"{', '.join(known) or 'none'} (driftline models list)"
            )
        return read(session)


def _windows(args: argparse.Namespace) -> int:
    from storage import history

    def read(session: Any) -> list[dict[str, Any]]:
        found = history.window_history(session, args.model_id, args.since, args.until)
        return [{**asdict(w), "final": w.finalized_at is not None} for w in found]

    return _print(args, _reading(args, read), WINDOW_COLUMNS, f"windows of {args.model_id}")


def _drift_points(session: Any, args: argparse.Namespace) -> Iterator[dict[str, Any]]:
    from storage.drift_pages import drift_page

    after = None
    while True:
        page = drift_page(
            session,
            args.model_id,
            features=args.feature,
            method=args.method,
            status=args.status,
            start=args.since,
            end=args.until,
            after=after,
            limit=DRIFT_PAGE,
        )
        yield from (point._asdict() for point in page)
        if len(page) < DRIFT_PAGE:
            return
        after = (page[-1].window_start, page[-1].feature, page[-1].method)


def _drift(args: argparse.Namespace) -> int:
    rows = _reading(args, lambda session: list(_drift_points(session, args)))
    return _print(args, rows, DRIFT_COLUMNS, f"drift results of {args.model_id}")


def _metrics(args: argparse.Namespace) -> int:
    from storage import history

    def read(session: Any) -> list[dict[str, Any]]:
        found = history.metrics_history(
            session, args.model_id, args.since, args.until, metric=args.metric
        )
        limits = {
            (a.window_start, a.series): a
            for a in history.anomaly_history(session, args.model_id, args.since, args.until)
            if a.series.startswith("metric:")
        }
        rows = []
        for record in found:
            verdict = limits.get((record.window_start, f"metric:{record.metric}"))
            band = {
                "lower": verdict.lower if verdict else None,
                "upper": verdict.upper if verdict else None,
                "anomaly": verdict.anomaly if verdict else None,
            }
            rows.append({**asdict(record), **band})
        return rows

    return _print(args, _reading(args, read), METRIC_COLUMNS, f"quality metrics of {args.model_id}")


def _triggers(args: argparse.Namespace) -> int:
    from storage import triggers

    def read(session: Any) -> list[dict[str, Any]]:
        return [asdict(t) for t in triggers.triggers(session, args.model_id)]

    return _print(
        args, _reading(args, read), TRIGGER_COLUMNS, f"retraining triggers of {args.model_id}"
    )


def _alerts(args: argparse.Namespace) -> int:
    from storage import alerts

    def read(session: Any) -> list[dict[str, Any]]:
        found = alerts.list_alerts(session, model_id=args.model_id, status=args.status)
        return [asdict(a) for a in found]

    return _print(args, _reading(args, read), ALERT_COLUMNS, "alerts")
