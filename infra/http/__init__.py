"""The HTTP API (FastAPI): generic command routes, queries, bearer-token auth, one error format."""

from infra.http.app import create_app

__all__ = ["create_app"]
