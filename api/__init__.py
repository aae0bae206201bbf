"""FastAPI app: query endpoints, model/reference management, dashboard, health, metrics.

Empty until the HTTP API lands; importable so the layout in docs/architecture.md exists.
"""
