"""API keys: created with a random secret shown once, stored as its SHA-256, revocable.

The key has 256 bits of randomness, so a plain SHA-256 is enough to store it (a slow
password hash protects guessable secrets, which these are not) and lets a request's key be
looked up by its hash in one indexed query.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from sqlalchemy import select
from sqlalchemy.orm import Session

from driftline.errors import InvalidInputError
from storage.models import api_keys
from storage.types import utcnow

Scope = Literal["read", "admin"]
PREFIX = "dl_"


@dataclass(frozen=True, kw_only=True)
class ApiKeyRecord:
    id: str
    name: str
    scope: str
    key_hash: str
    created_at: datetime
    revoked_at: datetime | None


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def create_key(session: Session, name: str, scope: Scope) -> tuple[ApiKeyRecord, str]:
    """A new key; returns its record and the key itself (not stored: show it once)."""
    if scope not in ("read", "admin"):
        raise InvalidInputError(f"scope must be read or admin, not {scope!r}")
    if not name.strip():
        raise InvalidInputError("an API key needs a name (who or what uses it)")
    key = PREFIX + secrets.token_urlsafe(32)
    record = ApiKeyRecord(
        id=secrets.token_hex(6),
        name=name.strip(),
        scope=scope,
        key_hash=hash_key(key),
        created_at=utcnow(),
        revoked_at=None,
    )
    session.execute(api_keys.insert().values(**record.__dict__))
    return record, key


def find_key(session: Session, key: str) -> ApiKeyRecord | None:
    """The live (not revoked) key with this secret, if any."""
    row = session.execute(
        select(api_keys).where(
            api_keys.c.key_hash == hash_key(key), api_keys.c.revoked_at.is_(None)
        )
    ).first()
    return None if row is None else ApiKeyRecord(**row._mapping)


def list_keys(session: Session) -> list[ApiKeyRecord]:
    query = select(api_keys).order_by(api_keys.c.created_at)
    return [ApiKeyRecord(**row._mapping) for row in session.execute(query)]


def revoke_key(session: Session, key_id: str) -> bool:
    """Revoke a key by id; return whether a live key was revoked."""
    result = session.execute(
        api_keys.update()
        .where(api_keys.c.id == key_id, api_keys.c.revoked_at.is_(None))
        .values(revoked_at=utcnow())
        .returning(api_keys.c.id)
    )
    return result.first() is not None
