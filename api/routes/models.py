"""Models: list them, read one (with its configuration)."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException

from api.deps import ReadKey, SessionDep
from api.errors import ERROR_RESPONSES
from api.schemas import ModelList, ModelSummary
from storage import catalog

router = APIRouter(prefix="/models", tags=["models"], responses=ERROR_RESPONSES)


@router.get("", summary="Every registered model")
def list_models(session: SessionDep, key: ReadKey) -> ModelList:
    return ModelList(models=[ModelSummary(**m.__dict__) for m in catalog.list_models(session)])


@router.get("/{model_id}", summary="One model and its configuration")
def get_model(model_id: str, session: SessionDep, key: ReadKey) -> ModelSummary:
    found = catalog.get_model(session, model_id)
    if found is None:
        raise HTTPException(404, f"no model {model_id!r}")
    return ModelSummary(**found.__dict__)
