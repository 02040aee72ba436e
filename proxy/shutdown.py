"""Graceful shutdown: readiness off first, then drain, and open streams end with an error event.

On the first SIGTERM (or SIGINT) a served gateway process:

1. at once answers 503 on `/health/ready` (`Gateway.ready = False`), so a load balancer stops
   sending it new calls; everything keeps being served for `drain_delay_s` (`serve --drain-delay`);
2. then runs uvicorn's own shutdown: the listening socket closes, idle keep-alive connections
   close, and in-flight requests get `timeout_graceful_shutdown` seconds (`serve --shutdown-grace`)
   to finish;
3. `STREAM_MARGIN_S` before that bound, every stream still open ends with one final error event
   (`data: {"error": {"code": "shutting_down", ...}}`, never a silent `[DONE]`): when the bound
   passes uvicorn cancels what is left without a word to the client;
4. the lifespan shutdown runs `Gateway.stop()`, which flushes the audit queue (database or spool).

A second Ctrl+C (SIGINT) skips the wait, a third forces exit (uvicorn's behaviour); a repeated
SIGTERM is ignored while draining (the parent of `--workers N` forwards one to each worker).
The whole stop takes at most `drain_delay_s + shutdown_grace + audit flush`: the systemd unit's
`TimeoutStopSec` is above that.

How the pieces meet: `create_app` builds one `Drain` per app (`app.state.drain`), attaches the
`Gateway` to it in the lifespan and adds `DrainScope`, which makes the drain visible to the stream
generators of a request (a context variable). Stream framers iterate `until_shutdown(chunks)`:
it ends the stream by raising `ShuttingDown` (a `GatewayError`, so the framer's usual "one final
error event" path renders it in the route's own format). `GracefulServer` (one process) or
`adopt_running_server` (each worker of `--workers N`) turns the signal into the steps above.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import signal
import threading
from collections.abc import AsyncIterator, Callable
from types import FrameType
from typing import Any, TypeVar

import uvicorn
from starlette.types import ASGIApp, Receive, Scope, Send

from core.errors import GatewayError

log = logging.getLogger("gateway")

SHUTTING_DOWN = "shutting_down"
DEFAULT_DRAIN_DELAY_S = 2.0
DEFAULT_GRACE_S = 20
STREAM_MARGIN_S = 1.0

T = TypeVar("T")
SignalHandler = Callable[[int, FrameType | None], None]

_current: contextvars.ContextVar[Drain | None] = contextvars.ContextVar("llm_gateway_drain", default=None)


class ShuttingDown(GatewayError):
    """The gateway is stopping: an open stream ends with this error (503, code `shutting_down`)."""

    status_code = 503
    error_type = "service_unavailable"
    code = SHUTTING_DOWN


class _Guard:
    """One open stream: its task, and whether it is waiting on the next chunk right now."""

    __slots__ = ("cancelled", "task", "waiting")

    def __init__(self, task: asyncio.Task[Any] | None) -> None:
        self.task = task
        self.waiting = False
        self.cancelled = False

    def cut(self) -> None:
        # Only a stream suspended on its next chunk is cancelled (the CancelledError lands in that
        # wait, where `until_shutdown` turns it into ShuttingDown); one busy sending stops before
        # its next wait, so a cancellation never lands in the middle of writing a chunk.
        if self.waiting and self.task is not None and not self.cancelled:
            self.cancelled = True
            self.task.cancel(msg=SHUTTING_DOWN)

    def absorb(self) -> bool:
        """True, with the cancellation undone, when the task's cancellation was this cut."""
        if not self.cancelled:
            return False
        self.cancelled = False
        if self.task is not None and self.task.cancelling():
            self.task.uncancel()
        return True


class Drain:
    """One app's shutdown state: draining (readiness off), then cutting (streams end)."""

    def __init__(self) -> None:
        self.draining = False
        self.cutting = False
        self.gateway: Any = None
        self._guards: set[_Guard] = set()

    def attach(self, gateway: Any) -> None:
        """The lifespan's gateway, once started (a signal during startup still wins)."""
        self.gateway = gateway
        if self.draining:
            gateway.ready = False
            gateway.stopping = True

    def begin(self) -> None:
        if self.draining:
            return
        self.draining = True
        if self.gateway is not None:
            self.gateway.ready = False
            self.gateway.stopping = True
        log.warning("shutdown requested: readiness is off, draining in-flight requests")

    def cut_streams(self) -> None:
        self.cutting = True
        if self._guards:
            log.warning("shutdown bound near: ending %d open stream(s) with a shutting_down event", len(self._guards))
        for guard in list(self._guards):
            guard.cut()

    @property
    def open_streams(self) -> int:
        return len(self._guards)


def shutting_down() -> ShuttingDown:
    return ShuttingDown("the gateway is shutting down; retry the request (another instance will answer)")


async def until_shutdown(chunks: AsyncIterator[T]) -> AsyncIterator[T]:
    """`chunks`, ended by `ShuttingDown` when this request's app cuts its streams.

    Outside a served app (no `DrainScope` above) it passes the chunks through unchanged.
    """
    drain = _current.get()
    if drain is None:
        async for chunk in chunks:
            yield chunk
        return
    guard = _Guard(asyncio.current_task())
    drain._guards.add(guard)
    iterator = chunks.__aiter__()
    try:
        while True:
            if drain.cutting:
                raise await _stop(iterator)
            guard.waiting = True
            try:
                chunk = await iterator.__anext__()
            except StopAsyncIteration:
                return
            except asyncio.CancelledError:
                if not guard.absorb():
                    raise
                raise shutting_down() from None
            finally:
                guard.waiting = False
            if guard.absorb():  # something below swallowed the cut's cancellation
                raise await _stop(iterator)
            yield chunk
    finally:
        drain._guards.discard(guard)


async def _stop(iterator: AsyncIterator[Any]) -> ShuttingDown:
    """End the inner stream with the shutdown error (so its finalizers see why), and return it."""
    error = shutting_down()
    athrow = getattr(iterator, "athrow", None)
    if athrow is not None:
        with contextlib.suppress(Exception):  # it re-raises the error (or ended already)
            await athrow(error)
    return error


class DrainScope:
    """Pure ASGI middleware: the app's `Drain` is visible to the request's stream generators."""

    def __init__(self, app: ASGIApp, drain: Drain) -> None:
        self.app = app
        self.drain = drain

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        token = _current.set(self.drain)
        try:
            await self.app(scope, receive, send)
        finally:
            _current.reset(token)


class SignalDrain:
    """The signal handler: drain first, then hand the signal to uvicorn's own `handle_exit`."""

    def __init__(self, drain: Drain, drain_delay_s: float, grace_s: float | None, delegate: SignalHandler,
                 loop: asyncio.AbstractEventLoop) -> None:
        self.drain = drain
        self.drain_delay_s = max(0.0, drain_delay_s)
        self.grace_s = grace_s
        self.delegate = delegate
        self.loop = loop
        self.started = False

    def __call__(self, sig: int, frame: FrameType | None) -> None:
        # Runs in the main thread between two bytecodes of whatever the loop was doing: it only
        # schedules work on the loop (call_soon_threadsafe is the signal-safe way in).
        if self.started:
            if sig == signal.SIGINT:
                self.delegate(sig, frame)  # Ctrl+C again: stop waiting (and a third time: force)
            return
        self.started = True
        self.loop.call_soon_threadsafe(self._start, sig, frame)

    def _start(self, sig: int, frame: FrameType | None) -> None:
        self.drain.begin()
        log.warning("%s: closing the listener in %.1f s, then up to %s s for in-flight requests",
                    signal.Signals(sig).name, self.drain_delay_s,
                    "unbounded" if self.grace_s is None else f"{self.grace_s:g}")
        self.loop.call_later(self.drain_delay_s, self.delegate, sig, frame)
        if self.grace_s is not None:
            self.loop.call_later(self.drain_delay_s + max(self.grace_s - STREAM_MARGIN_S, 0.0), self.drain.cut_streams)


class GracefulServer(uvicorn.Server):
    """`uvicorn.Server` whose exit signal drains first (see the module docstring)."""

    def __init__(self, config: uvicorn.Config, drain: Drain, drain_delay_s: float = DEFAULT_DRAIN_DELAY_S) -> None:
        super().__init__(config)
        self.drain = drain
        self.drain_delay_s = drain_delay_s
        self._signal_drain: SignalDrain | None = None

    async def serve(self, sockets: Any = None) -> None:
        grace = self.config.timeout_graceful_shutdown
        self._signal_drain = SignalDrain(self.drain, self.drain_delay_s, None if grace is None else float(grace),
                                         super().handle_exit, asyncio.get_running_loop())
        await super().serve(sockets)

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if self._signal_drain is None:  # not serving yet
            super().handle_exit(sig, frame)
        else:
            self._signal_drain(sig, frame)


def serve(app: Any, *, host: str, port: int, drain_delay_s: float = DEFAULT_DRAIN_DELAY_S,
          grace_s: int = DEFAULT_GRACE_S, log_level: str = "warning") -> int:
    """Serve `app` (one process) with the graceful shutdown; 0 after a clean stop, 3 if it never started."""
    config = uvicorn.Config(app, host=host, port=port, log_level=log_level, timeout_graceful_shutdown=grace_s)
    server = GracefulServer(config, app.state.drain, drain_delay_s)
    with contextlib.suppress(KeyboardInterrupt):
        server.run()
    return 0 if server.started else 3


def adopt_running_server(drain: Drain, drain_delay_s: float = DEFAULT_DRAIN_DELAY_S) -> bool:
    """In a `--workers N` worker: put the drain in front of the worker's uvicorn signal handlers.

    uvicorn builds each worker's `Server` itself (no subclass can be passed), but it installs the
    worker's signal handlers before loading the app: called from the app factory, this finds that
    server's `handle_exit` and wraps it. Returns False (nothing done) anywhere else.
    """
    if threading.current_thread() is not threading.main_thread():
        return False
    handler = signal.getsignal(signal.SIGTERM)
    server = getattr(handler, "__self__", None)
    if not isinstance(server, uvicorn.Server):
        return False
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return False
    grace = server.config.timeout_graceful_shutdown
    signal_drain = SignalDrain(drain, drain_delay_s, None if grace is None else float(grace), server.handle_exit,
                               loop)
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, signal_drain)
    return True
