"""The import contracts of pyproject.toml (``[tool.importlinter]``) hold: the packages' layering
(docs/architecture.md, "Packages and their direction"), checked on the code as it is now.

``make lint`` runs the same contracts (``lint-imports``); this keeps them in the unit suite
too, so ``make test-unit`` catches an import that crosses a layer.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from importlinter.cli import lint_imports

ROOT = Path(__file__).resolve().parents[1]


def test_every_import_contract_is_kept(capsys: pytest.CaptureFixture[str]) -> None:
    status = lint_imports(config_filename=str(ROOT / "pyproject.toml"), no_logo=True, no_cache=True)
    output = capsys.readouterr().out
    assert status == 0, output
    assert "3 kept, 0 broken" in output, output
