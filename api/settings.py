"""API settings: ``DRIFTLINE_*`` environment variables over defaults, read when the app is
built (never at import)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class ApiSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="DRIFTLINE_", extra="ignore")

    database_url: str = Field(
        default="sqlite+pysqlite:///var/driftline.db", description="The results database"
    )
    api_host: str = Field(default="127.0.0.1", description="Address uvicorn listens on")
    api_port: int = Field(default=8000, ge=1, le=65535)
    api_cors_origins: list[str] = Field(
        default_factory=list, description="Origins allowed to call the API from a browser"
    )
    api_open_health: bool = Field(default=True, description="Health endpoints answer without a key")
    api_open_metrics: bool = Field(
        default=True, description="GET /metrics answers without a key (else a read key)"
    )
    api_open_dashboard: bool = Field(
        default=False,
        description="The dashboard (/dashboard) answers without a key (else a read key as the "
        "HTTP Basic password)",
    )
    api_check_broker: str | None = Field(
        default=None, description="host:port of a Kafka broker /readyz checks (none: no check)"
    )
    api_page_limit: int = Field(default=1000, ge=1, le=100_000, description="Most rows per page")
    api_max_upload_bytes: int = Field(
        default=100 * 1024 * 1024,
        ge=1,
        description="Largest reference file accepted by POST …/references (100 MiB); larger: 413",
    )
