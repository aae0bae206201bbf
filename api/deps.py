"""Dependencies of the routes: a database session, and the caller's API key with its scope.

``ReadKey`` accepts a read or an admin key; ``AdminKey`` only an admin key (every mutation);
``AdminKeyAlone`` is ``AdminKey`` without a session that lasts the request (uploads).
Keys come in ``Authorization: Bearer <key>`` or ``X-API-Key: <key>``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Annotated

from fastapi import Depends, Header, HTTPException, Request
from sqlalchemy.orm import Session, sessionmaker

from api.settings import ApiSettings
from storage.api_keys import ApiKeyRecord, find_key


def get_sessions(request: Request) -> sessionmaker[Session]:
    sessions: sessionmaker[Session] = request.app.state.sessions
    return sessions


def get_settings(request: Request) -> ApiSettings:
    settings: ApiSettings = request.app.state.settings
    return settings


SessionsDep = Annotated[sessionmaker[Session], Depends(get_sessions)]


def get_session(sessions: SessionsDep) -> Iterator[Session]:
    with sessions.begin() as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session)]
SettingsDep = Annotated[ApiSettings, Depends(get_settings)]


def _presented(authorization: str | None, x_api_key: str | None) -> str | None:
    if x_api_key:
        return x_api_key.strip()
    if authorization and authorization.lower().startswith("bearer "):
        return authorization[7:].strip()
    return None


def _key(
    session: SessionDep,
    authorization: Annotated[str | None, Header()] = None,
    x_api_key: Annotated[str | None, Header()] = None,
) -> ApiKeyRecord:
    presented = _presented(authorization, x_api_key)
    if not presented:
        raise HTTPException(401, "an API key is required: Authorization: Bearer <key>")
    record = find_key(session, presented)
    if record is None:
        raise HTTPException(401, "unknown or revoked API key")
    return record


def read_key(key: Annotated[ApiKeyRecord, Depends(_key)]) -> ApiKeyRecord:
    return key


def admin_key(key: Annotated[ApiKeyRecord, Depends(_key)]) -> ApiKeyRecord:
    if key.scope != "admin":
        raise HTTPException(403, f"key {key.id!r} has scope {key.scope}; this needs an admin key")
    return key


ReadKey = Annotated[ApiKeyRecord, Depends(read_key)]
AdminKey = Annotated[ApiKeyRecord, Depends(admin_key)]


def admin_key_alone(
    request: Request,
    authorization: Annotated[str | None, Header()] = None,
    x_api_key: Annotated[str | None, Header()] = None,
) -> ApiKeyRecord:
    """``AdminKey`` checked in a transaction of its own, over before the route runs."""
    with get_sessions(request).begin() as session:
        return admin_key(_key(session, authorization, x_api_key))


# For a route that reads a long body (an upload): ``SessionDep`` would hold its transaction,
# on SQLite the database's write lock (BEGIN IMMEDIATE), for as long as the client sends.
AdminKeyAlone = Annotated[ApiKeyRecord, Depends(admin_key_alone)]


def key_unless_open(setting: str) -> Callable[..., None]:
    """A dependency: open while the boolean setting ``setting`` is on (health checks and
    /metrics by default), else a read or admin key as ``ReadKey`` asks."""

    def check(
        request: Request,
        authorization: Annotated[str | None, Header()] = None,
        x_api_key: Annotated[str | None, Header()] = None,
    ) -> None:
        if getattr(get_settings(request), setting):
            return
        with get_sessions(request).begin() as session:
            read_key(_key(session, authorization, x_api_key))

    return check
