"""A model's reference profiles: list them, upload a new one (admin).

The upload's body is the reference file itself (CSV or Parquet, as ``driftline models
register --reference`` reads it). It is streamed to a temporary file, never held in memory,
and refused with 413 past ``api_max_upload_bytes``; then profiled and checked against the
model's configuration in a worker thread (not on the event loop), and stored as the model's
current reference. Windows that start from then on are judged against it
(docs/architecture.md, "Binding a window to its reference"); workers load it within their
registry refresh (``registry_refresh_seconds``).

No transaction is open while the body arrives or the profile is built: on SQLite a
transaction holds the database's write lock, which the worker needs.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Query, Request, Response
from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect

from api.deps import AdminKeyAlone, ReadKey, SessionDep, SessionsDep, SettingsDep
from api.errors import ERROR_RESPONSES, ErrorBody
from api.params import require_model
from api.schemas import ReferenceFeature, ReferenceInfo, ReferenceList, ReferenceSummary, rows_as
from detectors import ReferenceProfile
from registration.models import profile_for_model, store_profile
from schemas.model_config import ModelConfig
from storage import catalog
from storage.rows import ReferenceProfileInfo

router = APIRouter(
    prefix="/models/{model_id}/references", tags=["models"], responses=ERROR_RESPONSES
)

MEDIA_TYPES = {"text/csv": "csv", "application/vnd.apache.parquet": "parquet"}
GENERIC = "application/octet-stream"
WRITE_BYTES = 1 << 20  # the body is written to the file in pieces of about this size

_EXAMPLE = {
    "model_id": "churn",
    "fingerprint": "3f9c2a1b7d4e8a60",
    "n_rows": 50000,
    "source": "upload (csv, 4,718,592 bytes, key ci)",
    "created_at": "2026-11-30T09:15:00Z",
    "is_current": True,
    "created": True,
    "features": [
        {"name": "age", "kind": "numeric", "is_output": False},
        {"name": "plan", "kind": "categorical", "is_output": False},
        {"name": "score", "kind": "numeric", "is_output": True},
    ],
}
_FILE = {"schema": {"type": "string", "format": "binary"}}
_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "description": "The reference file: one column per feature and optionally the model's "
        "outputs on those rows (prediction, score); label, id and timestamp columns are left out",
        "content": {
            "text/csv": {
                "schema": {"type": "string"},
                "example": "age,plan,score\n34,basic,0.12\n51,pro,0.87\n",
            },
            "application/vnd.apache.parquet": _FILE,
            GENERIC: _FILE,
        },
    }
}


@router.get("", summary="The model's reference profiles, oldest first")
def list_references(model_id: str, session: SessionDep, key: ReadKey) -> ReferenceList:
    require_model(session, model_id)
    stored = catalog.list_reference_profiles(session, model_id)
    return ReferenceList(model_id=model_id, references=rows_as(ReferenceInfo, stored))


@router.post(
    "",
    summary="Upload a reference (CSV or Parquet) and make it the model's current one (admin)",
    status_code=201,
    responses={
        201: {"description": "Stored", "content": {"application/json": {"example": _EXAMPLE}}},
        200: {"model": ReferenceSummary, "description": "Stored before: made current again"},
        409: {"model": ErrorBody, "description": "The model was deleted"},
        413: {"model": ErrorBody, "description": "Larger than DRIFTLINE_API_MAX_UPLOAD_BYTES"},
        415: {"model": ErrorBody, "description": "Not a CSV or Parquet Content-Type"},
        422: {"model": ErrorBody, "description": "Not readable, or not usable for the model"},
    },
    openapi_extra=_BODY,
)
async def upload_reference(
    model_id: str,
    request: Request,
    response: Response,
    key: AdminKeyAlone,
    sessions: SessionsDep,
    settings: SettingsDep,
    format: Annotated[
        Literal["csv", "parquet"] | None,
        Query(description="The file's format, for Content-Type: application/octet-stream"),
    ] = None,
    source: Annotated[
        str | None,
        Query(min_length=1, max_length=500, description="Where the file came from, for people"),
    ] = None,
) -> ReferenceSummary:
    kind = _format(request.headers.get("content-type"), format)
    config = await run_in_threadpool(_live_config, sessions, model_id)
    limit = settings.api_max_upload_bytes
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise _too_large(limit)
    with tempfile.TemporaryDirectory(prefix="driftline-upload-") as folder:
        path = Path(folder) / f"reference.{kind}"
        size = await _receive(request, path, limit)
        profile = await run_in_threadpool(_profile, config, path)
    name = source or f"upload ({kind}, {size:,} bytes, key {key.name})"
    created, stored = await run_in_threadpool(_store, sessions, config, profile, name)
    if not created:
        response.status_code = 200
    return ReferenceSummary(
        model_id=model_id,
        fingerprint=stored.fingerprint,
        n_rows=stored.n_rows,
        source=stored.source,
        created_at=stored.created_at,
        is_current=stored.is_current,
        created=created,
        features=[
            ReferenceFeature(name=column, kind=of, is_output=column in profile.output_columns)
            for column, of in profile.kinds().items()
        ],
    )


def _format(content_type: str | None, asked: str | None) -> str:
    """``csv`` or ``parquet``, from the Content-Type (``?format=`` for a generic one)."""
    media = (content_type or "").split(";")[0].strip().lower()
    known = MEDIA_TYPES.get(media)
    if known is not None:
        if asked is not None and asked != known:
            raise HTTPException(400, f"format={asked} contradicts Content-Type {media}")
        return known
    if media == GENERIC:
        if asked is None:
            raise HTTPException(400, f"Content-Type {GENERIC} needs ?format=csv or ?format=parquet")
        return asked
    raise HTTPException(
        415,
        f"Content-Type {media or '(none)'} is not a reference file: send text/csv, "
        f"application/vnd.apache.parquet, or {GENERIC} with ?format=csv|parquet",
    )


def _config_of(session: Session, model_id: str) -> ModelConfig:
    """The model's configuration; 404 if it is unknown, 409 if it was deleted."""
    record = catalog.get_model(session, model_id)
    if record is None:
        raise HTTPException(404, f"no model {model_id!r}")
    if record.deleted_at is not None:
        raise HTTPException(
            409,
            f"model {model_id!r} was deleted at {record.deleted_at.isoformat()}: restore it "
            f"with PUT /api/v1/models/{model_id} first",
        )
    return ModelConfig.model_validate(record.config)


def _live_config(sessions: sessionmaker[Session], model_id: str) -> ModelConfig:
    with sessions.begin() as session:
        return _config_of(session, model_id)


def _too_large(limit: int) -> HTTPException:
    return HTTPException(
        413,
        f"the reference is larger than {limit:,} bytes (DRIFTLINE_API_MAX_UPLOAD_BYTES)",
    )


async def _receive(request: Request, path: Path, limit: int) -> int:
    """Write the body to ``path``; its size. 413 as soon as it passes ``limit``."""
    size = 0
    pending: list[bytes] = []
    pending_size = 0
    with path.open("wb") as file:
        try:
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    raise _too_large(limit)
                pending.append(chunk)
                pending_size += len(chunk)
                if pending_size >= WRITE_BYTES:
                    await run_in_threadpool(file.write, b"".join(pending))
                    pending, pending_size = [], 0
        except ClientDisconnect:  # the client's doing, not a bug of ours to log
            raise HTTPException(400, "the client went away before the body was complete") from None
        if pending:
            await run_in_threadpool(file.write, b"".join(pending))
    if size == 0:
        raise HTTPException(422, "the body is empty: send the reference file as the body")
    return size


def _profile(config: ModelConfig, path: Path) -> ReferenceProfile:
    """The file's profile for the model; 422 with the reason when it cannot be one."""
    try:
        return profile_for_model(config, path)
    except (ValueError, TypeError) as exc:
        # ConfigurationError (unreadable, or unusable for this model) and ProfileError (data
        # that cannot be profiled) are ValueErrors; pandas may raise either on odd data.
        raise HTTPException(422, str(exc) or type(exc).__name__) from None


def _store(
    sessions: sessionmaker[Session], config: ModelConfig, profile: ReferenceProfile, source: str
) -> tuple[bool, ReferenceProfileInfo]:
    """Store the profile as current; whether it was new, and the stored row."""
    model_id = config.model_id
    with sessions.begin() as session:
        if _config_of(session, model_id) != config:
            raise HTTPException(
                409,
                f"the configuration of {model_id!r} changed while the reference was being "
                "profiled: upload it again",
            )
        created = store_profile(session, model_id, profile, source)
        stored = catalog.list_reference_profiles(session, model_id)
    return created, next(info for info in stored if info.fingerprint == profile.fingerprint)
