"""Rows of results on the terminal: a rich table for people, ``--json`` or ``--csv`` for scripts.

Every results command (``driftline windows``, ``drift``, ``metrics``, ``triggers``, ``alerts``)
hands its rows here as dicts with the same keys, in its column order. Times are written as
ISO 8601 in UTC with a ``Z``; a float keeps its full precision in JSON and CSV and is
rounded for the table only.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Literal, TextIO

Format = Literal["table", "json", "csv"]


def add_format_options(parser: Any) -> None:
    """``--json`` and ``--csv`` (default: a table), mutually exclusive."""
    group = parser.add_mutually_exclusive_group()
    group.add_argument(
        "--json",
        dest="output",
        action="store_const",
        const="json",
        help="a JSON array of objects, one per row (for scripts)",
    )
    group.add_argument(
        "--csv", dest="output", action="store_const", const="csv", help="CSV with a header row"
    )
    parser.set_defaults(output="table")


def scalar(value: Any) -> Any:
    """A cell as JSON and CSV carry it: datetimes in ISO 8601 UTC, the rest unchanged.

    >>> scalar(datetime(2026, 1, 1, 0, 5, tzinfo=UTC))
    '2026-01-01T00:05:00Z'
    """
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
    return value


def _cell(value: Any) -> str:
    """A cell as the table shows it."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, Mapping | list):
        return json.dumps(value, sort_keys=True)
    return str(value)


def write_rows(
    rows: Sequence[Mapping[str, Any]],
    columns: Sequence[str],
    output: Format,
    out: TextIO,
    *,
    title: str,
) -> None:
    """``rows`` (each with every key of ``columns``) in the format asked for."""
    if output == "json":
        data = [{c: scalar(row[c]) for c in columns} for row in rows]
        out.write(json.dumps(data, indent=1) + "\n")
        return
    if output == "csv":
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(columns)
        writer.writerows([scalar(row[c]) for c in columns] for row in rows)
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title, title_justify="left", header_style="bold")
    for column in columns:
        table.add_column(column.replace("_", " "), overflow="fold")
    for row in rows:
        table.add_row(*(_cell(row[c]) for c in columns))
    # Wide enough for a results table in a pipe too; a terminal keeps its own width.
    console = Console(file=out, width=None if out.isatty() else 200)
    console.print(table)
