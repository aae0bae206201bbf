"""Models: list them, read one (with its configuration), create or update one, delete one
(admin).

Deleting is soft (``storage.catalog.delete_model``): a deleted model is left out of the list
(unless ``include_deleted=true``), the worker stops monitoring it, and everything stored
about it stays readable: GET answers it with ``deleted_at`` set, and so do its history
routes. PUT restores it.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, HTTPException, Query, Response
from pydantic import ValidationError

from api.deps import AdminKey, ReadKey, SessionDep
from api.errors import ERROR_RESPONSES
from api.schemas import ModelList, ModelSummary
from schemas.model_config import ModelConfig
from schemas.validation_messages import describe_validation_error, field_path
from storage import catalog
from storage.types import utcnow

router = APIRouter(prefix="/models", tags=["models"], responses=ERROR_RESPONSES)


@router.get("", summary="Every registered model (deleted ones with include_deleted=true)")
def list_models(
    session: SessionDep,
    key: ReadKey,
    include_deleted: Annotated[
        bool, Query(description="Also the deleted models (their deleted_at is set)")
    ] = False,
) -> ModelList:
    found = catalog.list_models(session, include_deleted=include_deleted)
    return ModelList(models=[ModelSummary(**m.__dict__) for m in found])


@router.get("/{model_id}", summary="One model and its configuration (deleted ones too)")
def get_model(model_id: str, session: SessionDep, key: ReadKey) -> ModelSummary:
    found = catalog.get_model(session, model_id)
    if found is None:
        raise HTTPException(404, f"no model {model_id!r}")
    return ModelSummary(**found.__dict__)


@router.put(
    "/{model_id}",
    summary="Create or update a model's configuration; restores a deleted model (admin)",
    status_code=200,
    responses={201: {"model": ModelSummary, "description": "Created"}},
)
def put_model(
    model_id: str,
    session: SessionDep,
    key: AdminKey,
    response: Response,
    body: dict[str, Any] = Body(  # noqa: B008 - FastAPI's way to declare a body
        ...,
        examples=[
            {
                "model_id": "churn",
                "task": "binary",
                "classes": ["0", "1"],
                "window_seconds": 3600,
                "alerts": {"labels": {"team": "risk"}},
            }
        ],
    ),
) -> ModelSummary:
    if body.get("model_id", model_id) != model_id:
        raise HTTPException(
            400, f"model_id in the body ({body.get('model_id')!r}) is not {model_id!r}"
        )
    try:
        config = ModelConfig.model_validate({**body, "model_id": model_id})
    except ValidationError as error:
        details = [
            {"field": field_path(tuple(item["loc"])), "message": item["msg"]}
            for item in error.errors(include_url=False, include_input=False)
        ]
        raise _Invalid(describe_validation_error(error, limit=None), details) from None
    existed = catalog.get_model(session, model_id) is not None
    record = catalog.upsert_model(session, model_id, config.model_dump(mode="json"))
    if not existed:
        response.status_code = 201
    return ModelSummary(**record.__dict__)


@router.delete(
    "/{model_id}",
    summary="Delete a model (admin): the worker stops monitoring it, its history stays",
    status_code=204,
    responses={204: {"description": "Deleted (a model deleted before stays as it was)"}},
)
def delete_model(model_id: str, session: SessionDep, key: AdminKey) -> None:
    if not catalog.delete_model(session, model_id, utcnow()):
        raise HTTPException(404, f"no model {model_id!r}")


class _Invalid(HTTPException):
    """A configuration refused by its schema: 422 with every field path."""

    def __init__(self, message: str, details: list[dict[str, Any]]) -> None:
        super().__init__(422, message)
        self.details = details
