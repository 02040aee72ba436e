"""Loopback helpers for the client SDK tests: a scripted stand-in for a sick gateway, and a TCP
switch that lets one URL lose its gateway and get it back."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Answer = tuple[int, dict[str, str], Any]
SICK: Answer = (503, {}, {"error": {"message": "the gateway is sick", "type": "service_unavailable", "code": "sick"}})


@dataclass
class Seen:
    at: float  # time.monotonic()
    method: str
    path: str
    body: Any


@dataclass
class StandIn:
    """A tiny HTTP server playing the gateway: every request is recorded; answers come from a
    per-path queue (one-shot), else the per-path default, else `default` (503: a sick gateway)."""

    default: tuple[int, dict[str, str], Any] = SICK
    delay_s: float = 0.0
    seen: list[Seen] = field(default_factory=list)
    queues: dict[str, deque[tuple[int, dict[str, str], Any]]] = field(default_factory=dict)
    answers: dict[str, tuple[int, dict[str, str], Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _answer(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                raw = self.rfile.read(length) if length else b""
                path = self.path.split("?")[0]
                status, headers, body = stand_in._next(self.command, path, raw)
                if stand_in.delay_s:
                    time.sleep(stand_in.delay_s)
                payload = body if isinstance(body, bytes) else json.dumps(body).encode()
                self.send_response(status)
                for name, value in {"content-type": "application/json", **headers}.items():
                    self.send_header(name, value)
                self.send_header("content-length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = _answer

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)
        self._thread.start()

    def _next(self, method: str, path: str, raw: bytes) -> tuple[int, dict[str, str], Any]:
        with self._lock:
            self.seen.append(Seen(time.monotonic(), method, path, json.loads(raw) if raw else None))
            queue = self.queues.get(path)
            if queue:
                return queue.popleft()
            return self.answers.get(path, self.default)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def enqueue(self, path: str, *answers: tuple[int, dict[str, str], Any]) -> None:
        with self._lock:
            self.queues.setdefault(path, deque()).extend(answers)

    def hits(self, path: str) -> list[Seen]:
        with self._lock:
            return [s for s in self.seen if s.path == path]

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


class SleepRecorder(list[float]):
    """An injected `sleep`: records the delays, sleeps nothing."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)

    async def async_sleep(self, seconds: float) -> None:
        self.append(seconds)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def free_port() -> int:
    """A loopback port nothing listens on (connections to it are refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Switch:
    """A loopback TCP forwarder on a fixed port: `off()` refuses connections (and cuts open ones),
    `on(port)` forwards again, to the same or another backend. One client URL, gateway down and back."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = free_port()
        self._listener: socket.socket | None = None
        self._open: set[socket.socket] = set()
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def on(self, target_port: int | None = None) -> Switch:
        if target_port is not None:
            self.target_port = target_port
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        listener.settimeout(0.05)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()
        return self

    def off(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            listener.close()
        with self._lock:
            sockets, self._open = self._open, set()
        for sock in sockets:
            _close(sock)

    def _accept(self, listener: socket.socket) -> None:
        while self._listener is listener:
            try:
                client, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            client.settimeout(None)
            try:
                backend = socket.create_connection(("127.0.0.1", self.target_port), timeout=2)
                backend.settimeout(None)
            except OSError:
                _close(client)
                continue
            with self._lock:
                self._open.update((client, backend))
            for src, dst in ((client, backend), (backend, client)):
                threading.Thread(target=self._pump, args=(src, dst), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (src, dst):
                _close(sock)
                with self._lock:
                    self._open.discard(sock)


def _close(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    with contextlib.suppress(OSError):
        sock.close()


def ask(text: str) -> str:
    """A user message that makes the fake upstreams (gateway tiers and Ollama alike) answer `text`."""
    return f'Please answer. [[fake:{{"text": "{text}"}}]]'
