"""The app factory: ``create_app(settings)`` builds the FastAPI app; nothing at import time.

``driftline api`` serves it with uvicorn. Routes live under ``/api/v1`` (health at the
root too, for probes); every route reads and writes through ``storage`` only.
"""

from __future__ import annotations

from fastapi import APIRouter, FastAPI
from fastapi.middleware.cors import CORSMiddleware
from sqlalchemy.orm import Session, sessionmaker

from api import errors, metrics, openapi_examples
from api.dashboard import routes as dashboard
from api.routes import alerts, drift, health, models, quality, references
from api.settings import ApiSettings
from storage.db import make_engine, session_factory

PREFIX = "/api/v1"


def create_app(
    settings: ApiSettings | None = None, sessions: sessionmaker[Session] | None = None
) -> FastAPI:
    settings = settings or ApiSettings()
    app = FastAPI(
        title="Driftline",
        version="1",
        summary="Drift, quality, anomalies, alerts and triggers of models in production",
        openapi_url=f"{PREFIX}/openapi.json",
        docs_url=f"{PREFIX}/docs",
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.sessions = sessions or session_factory(make_engine(settings.database_url))
    if settings.api_cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.api_cors_origins,
            allow_methods=["GET", "POST", "PUT", "DELETE"],
            allow_headers=["Authorization", "X-API-Key", "Content-Type"],
        )
    errors.install(app)
    metrics.install(app)  # the /metrics registry and the HTTP middleware (outermost)
    app.include_router(health.router)
    app.include_router(metrics.router)
    v1 = APIRouter(prefix=PREFIX)
    v1.include_router(health.router)
    v1.include_router(models.router)
    v1.include_router(references.router)
    v1.include_router(drift.router)
    v1.include_router(quality.router)
    v1.include_router(alerts.router)
    app.include_router(v1)
    app.include_router(dashboard.router)
    openapi_examples.install(app)
    return app
