"""Fail the test run on any connection outside loopback.

Patches the socket layer (the one place every client library ends up): `connect`/`connect_ex`
refuse non-loopback addresses, `getaddrinfo` refuses names other than localhost. Violations are
recorded too, because a library may swallow the exception; the session fails at the end if any
were recorded. Servers under test run on the asyncio loop (not uvloop), so their outbound
connections go through these same calls.
"""

from __future__ import annotations

import ipaddress
import socket
from typing import Any

violations: list[str] = []

_LOCAL_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost", ""}
_real_connect = socket.socket.connect
_real_connect_ex = socket.socket.connect_ex
_real_getaddrinfo = socket.getaddrinfo


def _is_loopback(host: Any) -> bool:
    if host is None:
        return True
    if isinstance(host, bytes):
        host = host.decode()
    host = str(host)
    if host in _LOCAL_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        return False


class NonLoopbackConnection(OSError):
    pass


def _check(sock: socket.socket, address: Any) -> None:
    inet = sock.family in (socket.AF_INET, socket.AF_INET6) and isinstance(address, tuple)
    if inet and not _is_loopback(address[0]):
        violations.append(f"connect to {address!r}")
        raise NonLoopbackConnection(f"tests may only connect to loopback, not {address!r}")


def _connect(self: socket.socket, address: Any) -> Any:
    _check(self, address)
    return _real_connect(self, address)


def _connect_ex(self: socket.socket, address: Any) -> Any:
    _check(self, address)
    return _real_connect_ex(self, address)


def _getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
    if not _is_loopback(host):
        violations.append(f"resolve {host!r}")
        raise socket.gaierror(socket.EAI_NONAME, f"tests may only resolve loopback names, not {host!r}")
    return _real_getaddrinfo(host, *args, **kwargs)


def install() -> None:
    socket.socket.connect = _connect  # type: ignore[method-assign]
    socket.socket.connect_ex = _connect_ex  # type: ignore[method-assign]
    socket.getaddrinfo = _getaddrinfo
