"""llm-gateway: the HTTP service (FastAPI app, settings, routes, auth, limits, upstream adapter)."""

__version__ = "0.1.0"
