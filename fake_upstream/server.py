"""``FakeUpstream``: the fake app served by uvicorn on a free loopback port, in a thread.

Tests and the bench use it as a context manager::

    with FakeUpstream() as fake:
        fake.set_behaviour("gpt-x", {"status": 429, "retry_after": 2})
        client = openai.OpenAI(base_url=fake.url + "/v1", api_key="x", max_retries=0)
        ...
        assert fake.requests[-1].model == "gpt-x"

The scripting methods act on the same :class:`~fake_upstream.state.FakeState` the server
thread reads (it is lock-protected), so no HTTP round trip is needed to script the fake.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import threading
import time
from types import TracebackType
from typing import Any

import uvicorn

from fake_upstream.app import create_app
from fake_upstream.behaviour import Behaviour
from fake_upstream.state import FakeState, RecordedRequest

HTTP_IMPL = "httptools" if importlib.util.find_spec("httptools") else "h11"


def _as_behaviour(behaviour: dict[str, Any] | Behaviour | None) -> Behaviour:
    return behaviour if isinstance(behaviour, Behaviour) else Behaviour.from_dict(behaviour or {})


class FakeUpstream:
    """A running fake upstream server (``start()``/``stop()`` or ``with``)."""

    def __init__(
        self,
        script: dict[str, Any] | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        default_latency_ms: float = 0.0,
    ) -> None:
        self.app = create_app(script, default_latency_ms=default_latency_ms)
        self.state: FakeState = self.app.state.fake
        self.host = host
        self._port = port
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    # --- lifecycle ---------------------------------------------------------------------------

    def start(self, timeout: float = 10.0) -> FakeUpstream:
        if self._thread is not None:
            return self
        config = uvicorn.Config(
            self.app,
            host=self.host,
            port=self._port,
            loop="asyncio",
            http=HTTP_IMPL,
            lifespan="off",
            log_level="warning",
            log_config=None,  # leave the test process's logging configuration alone
            access_log=False,
            timeout_graceful_shutdown=1,
        )
        server = uvicorn.Server(config)
        loop = asyncio.new_event_loop()
        thread = threading.Thread(target=self._serve, args=(server, loop), name="fake-upstream", daemon=True)
        thread.start()
        deadline = time.monotonic() + timeout
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                server.should_exit = True
                raise RuntimeError(f"fake upstream failed to start on {self.host}:{self._port}")
            time.sleep(0.005)
        self._port = server.servers[0].sockets[0].getsockname()[1]
        self._server, self._thread, self._loop = server, thread, loop
        return self

    @staticmethod
    def _serve(server: uvicorn.Server, loop: asyncio.AbstractEventLoop) -> None:
        try:
            loop.run_until_complete(server.serve())
        finally:
            loop.close()

    def stop(self, timeout: float = 5.0) -> None:
        if self._server is None or self._thread is None:
            return
        server, thread = self._server, self._thread
        server.should_exit = True  # uvicorn closes idle connections and waits for busy ones
        thread.join(0.3)
        if thread.is_alive() and self._loop is not None:
            # Stalled streams and slow answers would hold the shutdown: cut their connections,
            # so their handlers end as for a client disconnect (no cancelled-task tracebacks).
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                self._loop.call_soon_threadsafe(self._abort_connections, server)
            thread.join(timeout)
        if thread.is_alive():
            server.force_exit = True
            thread.join(timeout)
        self._server = self._thread = self._loop = None

    @staticmethod
    def _abort_connections(server: uvicorn.Server) -> None:
        for connection in list(server.server_state.connections):
            transport = getattr(connection, "transport", None)
            if transport is not None:
                transport.abort()

    def __enter__(self) -> FakeUpstream:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("fake upstream is not running")
        return self._port

    @property
    def url(self) -> str:
        """Base URL without a path, e.g. ``http://127.0.0.1:43211``."""
        return f"http://{self.host}:{self.port}"

    # --- scripting, mirroring the /_fake admin routes -----------------------------------------

    def set_behaviour(self, model: str, behaviour: dict[str, Any] | Behaviour | None = None, **fields: Any) -> None:
        """Behaviour for every request of ``model`` (``"*"``: any model) until changed or reset.

        ``fake.set_behaviour("m", {"status": 500})`` or ``fake.set_behaviour("m", status=500)``.
        """
        data = {**(behaviour or {}), **fields} if not isinstance(behaviour, Behaviour) else behaviour
        self.state.set_behaviour(model, _as_behaviour(data))

    def clear_behaviour(self, model: str) -> None:
        self.state.set_behaviour(model, None)

    def enqueue(self, model: str, *behaviours: dict[str, Any] | Behaviour) -> None:
        """One-shot behaviours for the next requests of ``model``, consumed in order."""
        self.state.enqueue(model, [_as_behaviour(b) for b in behaviours])

    @property
    def requests(self) -> list[RecordedRequest]:
        """All recorded API requests, oldest first."""
        return self.state.requests()

    def requests_to(self, path: str | None = None, model: str | None = None) -> list[RecordedRequest]:
        """Recorded requests whose path contains ``path`` and/or whose model is ``model``."""
        return self.state.requests(path, model)

    def clear_requests(self) -> None:
        self.state.clear_requests()

    def reset(self) -> None:
        """Back to the script: runtime behaviours, queues, counters and the log are dropped."""
        self.state.reset()
