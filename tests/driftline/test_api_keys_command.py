"""``driftline api-keys``: a key is shown once, listed without its secret, and revoked."""

from __future__ import annotations

from pathlib import Path

import pytest

from driftline.cli import main
from storage.api_keys import find_key
from storage.db import make_engine, session_factory


def test_create_list_revoke(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"sqlite+pysqlite:///{tmp_path / 'd.db'}"
    assert (
        main(["api-keys", "create", "--name", "ci", "--scope", "admin", "--database-url", url]) == 0
    )
    out = capsys.readouterr().out
    key = out.splitlines()[1]
    key_id = out.split()[1]
    with session_factory(make_engine(url))() as session:
        found = find_key(session, key)
    assert found is not None and found.scope == "admin" and found.id == key_id
    assert main(["api-keys", "list", "--database-url", url]) == 0
    listed = capsys.readouterr().out
    assert key_id in listed and key not in listed
    assert main(["api-keys", "revoke", key_id, "--database-url", url]) == 0
    with session_factory(make_engine(url))() as session:
        assert find_key(session, key) is None
    assert main(["api-keys", "revoke", key_id, "--database-url", url]) == 2
