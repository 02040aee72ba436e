"""Admin routes under ``/_fake``: script the fake and read its request log over HTTP.

The in-process :class:`fake_upstream.server.FakeUpstream` offers the same operations as
methods; these routes are for a fake started from the command line (the bench, humans).
"""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from fake_upstream.behaviour import Behaviour
from fake_upstream.common import json_response
from fake_upstream.state import FakeState


def _state(request: Request) -> FakeState:
    state: FakeState = request.app.state.fake
    return state


def _bad(message: str) -> Response:
    return json_response(
        {"error": {"message": message, "type": "invalid_request_error", "param": None, "code": None}}, 400
    )


async def _json(request: Request) -> Any:
    raw = await request.body()
    return json.loads(raw) if raw else None


async def get_requests(request: Request) -> Response:
    """``GET /_fake/requests?path=chat&model=m``: recorded requests, oldest first."""
    path = request.query_params.get("path")
    model = request.query_params.get("model")
    return json_response([r.to_dict() for r in _state(request).requests(path, model)])


async def delete_requests(request: Request) -> Response:
    return json_response({"cleared": _state(request).clear_requests()})


async def put_behaviour(request: Request) -> Response:
    """``PUT /_fake/behaviour/{model}`` with a behaviour object (``null`` removes it)."""
    model = request.path_params["model"]
    try:
        data = await _json(request)
        behaviour = None if data is None else Behaviour.from_dict(data)
    except (ValueError, TypeError) as exc:
        return _bad(f"bad behaviour: {exc}")
    _state(request).set_behaviour(model, behaviour)
    return json_response({"ok": True, "model": model})


async def delete_behaviour(request: Request) -> Response:
    _state(request).set_behaviour(request.path_params["model"], None)
    return json_response({"ok": True})


async def enqueue(request: Request) -> Response:
    """``POST /_fake/enqueue/{model}`` with a behaviour object or a list of them (FIFO)."""
    model = request.path_params["model"]
    try:
        data = await _json(request)
        items = data if isinstance(data, list) else [data]
        behaviours = [Behaviour.from_dict(d) for d in items]
    except (ValueError, TypeError) as exc:
        return _bad(f"bad behaviour: {exc}")
    _state(request).enqueue(model, behaviours)
    return json_response({"ok": True, "model": model, "queued": len(behaviours)})


async def reset(request: Request) -> Response:
    _state(request).reset()
    return json_response({"ok": True})


async def health(request: Request) -> Response:
    return json_response({"status": "ok"})
