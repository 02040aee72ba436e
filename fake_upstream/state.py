"""The fake upstream's mutable state, shared by the server thread and the test thread.

Everything goes through one ``threading.Lock``: the critical sections are a few dict/deque
operations, so holding a thread lock inside the event loop is cheaper than anything fancier
and keeps ``FakeUpstream.set_behaviour`` (test thread) and request handling (server thread)
consistent.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import asdict, dataclass
from typing import Any

from fake_upstream.behaviour import Behaviour, Script

MAX_RECORDED = 10_000  # a bench run must not grow memory without bound


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    """One API request as the fake saw it (admin routes and /health are not recorded)."""

    method: str
    path: str
    model: str | None
    body: Any  # the parsed JSON body (None when absent or not JSON)
    headers: dict[str, str]
    received_at: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class FakeState:
    """Behaviours (per model, queued), request counters and the request log."""

    def __init__(self, script: Script | None = None, *, default_latency_ms: float = 0.0) -> None:
        self.script = script or Script()
        self.default_latency_ms = default_latency_ms
        self._lock = threading.Lock()
        self._models: dict[str, Behaviour] = dict(self.script.models)
        self._queues: dict[str, deque[Behaviour]] = {}
        self._counters: dict[str, int] = {}
        self._requests: deque[RecordedRequest] = deque(maxlen=MAX_RECORDED)
        self._seen_models: set[str] = set()

    # --- per request -------------------------------------------------------------------------

    def choose(self, model: str, directive: Behaviour | None) -> tuple[Behaviour, int]:
        """Pick the behaviour for one request of ``model``; return it and the model's counter."""
        with self._lock:
            n = self._counters.get(model, 0) + 1
            self._counters[model] = n
            self._seen_models.add(model)
            if directive is not None:
                return directive, n
            for key in (model, "*"):
                queue = self._queues.get(key)
                if queue:
                    return queue.popleft(), n
            behaviour = self._models.get(model) or self._models.get("*") or self.script.default
            return behaviour, n

    def record(self, request: RecordedRequest) -> None:
        with self._lock:
            self._requests.append(request)

    def latency_s(self, behaviour: Behaviour) -> float:
        ms = behaviour.latency_ms if behaviour.latency_ms is not None else self.default_latency_ms
        return ms / 1000.0

    # --- scripting (admin API and FakeUpstream) ----------------------------------------------

    def set_behaviour(self, model: str, behaviour: Behaviour | None) -> None:
        """Set (or with ``None`` remove) the behaviour of ``model`` (``"*"``: any model)."""
        with self._lock:
            if behaviour is None:
                self._models.pop(model, None)
            else:
                self._models[model] = behaviour

    def enqueue(self, model: str, behaviours: list[Behaviour]) -> None:
        with self._lock:
            self._queues.setdefault(model, deque()).extend(behaviours)

    def requests(self, path: str | None = None, model: str | None = None) -> list[RecordedRequest]:
        with self._lock:
            items = list(self._requests)
        return [r for r in items if (path is None or path in r.path) and (model is None or r.model == model)]

    def clear_requests(self) -> int:
        with self._lock:
            n = len(self._requests)
            self._requests.clear()
            return n

    def reset(self) -> None:
        """Back to the script: runtime behaviours, queues, counters and the log are dropped."""
        with self._lock:
            self._models = dict(self.script.models)
            self._queues.clear()
            self._counters.clear()
            self._requests.clear()
            self._seen_models.clear()

    def model_names(self) -> list[str]:
        """Models to list on /v1/models and /api/tags: scripted ones plus the ones seen."""
        with self._lock:
            names = {m for m in self._models if m != "*"} | self._seen_models
        return sorted(names) or ["fake-model"]
