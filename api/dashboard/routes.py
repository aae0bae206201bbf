"""The dashboard: HTML pages served by the API process, under ``/dashboard``.

Pages are rendered on the server with their data embedded as JSON; the charts are drawn
by plotly.js, served from the ``plotly`` wheel installed with Driftline (nothing comes
from a CDN). A browser cannot send an ``X-API-Key`` header, so unless the dashboard is
open (``DRIFTLINE_API_OPEN_DASHBOARD``) it asks for HTTP Basic credentials: any user
name, a read or admin API key as the password. The paths are the ones alert messages
link to (``<dashboard_url>/models/<model>/windows/<start>``).
"""

from __future__ import annotations

import base64
import binascii
import importlib.resources
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, HTTPException, Query, Request
from fastapi.responses import FileResponse, HTMLResponse, Response
from fastapi.templating import Jinja2Templates

from api.dashboard import views
from api.deps import SessionDep, SettingsDep
from api.params import utc
from storage import catalog
from storage.api_keys import find_key

HERE = Path(__file__).parent
STATIC = HERE / "static"
templates = Jinja2Templates(directory=HERE / "templates")
router = APIRouter(prefix="/dashboard", include_in_schema=False)

# Assets change only with the installed version: let browsers keep them for an hour.
ASSET_HEADERS = {"Cache-Control": "public, max-age=3600"}
CHALLENGE = {"WWW-Authenticate": 'Basic realm="Driftline dashboard", charset="UTF-8"'}


def _basic_password(authorization: str) -> str | None:
    try:
        decoded = base64.b64decode(authorization[6:].strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    _, _, password = decoded.partition(":")
    return password or None


def dashboard_access(
    session: SessionDep,
    settings: SettingsDep,
    authorization: Annotated[str | None, Header()] = None,
    x_api_key: Annotated[str | None, Header()] = None,
) -> None:
    """Open, or a read key as a Basic password, a bearer token or an X-API-Key header."""
    if settings.api_open_dashboard:
        return
    presented = x_api_key
    if authorization and authorization.lower().startswith("basic "):
        presented = _basic_password(authorization)
    elif authorization and authorization.lower().startswith("bearer "):
        presented = authorization[7:].strip()
    if not presented:
        raise HTTPException(401, "the dashboard needs an API key (as the password)", CHALLENGE)
    if find_key(session, presented.strip()) is None:
        raise HTTPException(401, "unknown or revoked API key", CHALLENGE)


Access = Annotated[None, Depends(dashboard_access)]


def _render(request: Request, template: str, title: str, data: Any) -> HTMLResponse:
    return templates.TemplateResponse(
        request, template, {"title": title, "data": data}, headers={"Cache-Control": "no-store"}
    )


@router.get("/", response_class=HTMLResponse)
def models_page(request: Request, session: SessionDep, access: Access) -> HTMLResponse:
    return _render(request, "models.html", "Models", views.models_overview(session))


@router.get("/models/{model_id}", response_class=HTMLResponse)
def model_page(
    request: Request,
    model_id: str,
    session: SessionDep,
    access: Access,
    before: Annotated[datetime | None, Query(description="windows starting before")] = None,
    columns: Annotated[int, Query(ge=1, le=views.MAX_COLUMNS)] = 200,
    features_page: Annotated[int, Query(ge=0, le=10_000)] = 0,
) -> HTMLResponse:
    if catalog.get_model(session, model_id) is None:
        raise HTTPException(404, f"model {model_id!r} is not registered")
    data = views.model_page(
        session,
        model_id,
        before=utc("before", before),
        columns=columns,
        features_page=features_page,
    )
    return _render(request, "model.html", model_id, data)


@router.get("/models/{model_id}/windows/{window_start}", response_class=HTMLResponse)
def window_page(
    request: Request, model_id: str, window_start: datetime, session: SessionDep, access: Access
) -> HTMLResponse:
    at = utc("window_start", window_start)
    assert at is not None
    data = views.window_page(session, model_id, at)
    if data is None:
        raise HTTPException(404, f"model {model_id!r} has no window starting {at.isoformat()}")
    return _render(request, "window.html", f"{model_id} · {at:%Y-%m-%d %H:%M} UTC", data)


@router.get("/static/plotly.min.js")
def plotly_bundle() -> Response:
    bundle = importlib.resources.files("plotly") / "package_data" / "plotly.min.js"
    with importlib.resources.as_file(bundle) as path:
        return FileResponse(path, media_type="text/javascript", headers=ASSET_HEADERS)


@router.get("/static/{name}")
def asset(name: str) -> Response:
    path = STATIC / name
    if name.startswith(".") or "/" in name or not path.is_file():
        raise HTTPException(404, f"no dashboard asset {name!r}")
    media = "text/css" if name.endswith(".css") else "text/javascript"
    return FileResponse(path, media_type=media, headers=ASSET_HEADERS)
