"""``python -m driftline``: the command-line entry point."""

from driftline.cli import main

raise SystemExit(main())
