"""HTTP CONNECT proxies, without I/O: which proxy to use, the request, the reply.

``connect(..., proxy="http://[user:pass@]host:port")`` tunnels through the proxy with
``CONNECT host:port``; TLS to the real host then runs inside the tunnel, verified as
without a proxy. When ``proxy`` is not given, ``HTTPS_PROXY`` (for ``wss://``) or
``HTTP_PROXY`` (for ``ws://``) is used unless ``NO_PROXY`` lists the host, as curl,
websockets and aiohttp (``trust_env``) do; ``proxy=None`` ignores the environment.

The proxy's credentials go only into the ``Proxy-Authorization`` header of the CONNECT
request: never into a repr, a log line or an exception message.
"""

from __future__ import annotations

import base64
import enum
import os
import urllib.parse
from collections.abc import Mapping

import attrs

from dgproto._errors import HandshakeError
from dgproto._events import HandshakeRejected

__all__ = [
    "FROM_ENV",
    "ConnectTunnel",
    "FromEnv",
    "Proxy",
    "ProxyError",
    "parse_proxy",
    "select_proxy",
]

#: Largest CONNECT reply head accepted from a proxy.
_MAX_REPLY = 16 * 1024


class FromEnv(enum.Enum):
    """The type of ``FROM_ENV``: ``connect``'s default ``proxy``."""

    FROM_ENV = "from the environment"


#: ``proxy=`` not given: take it from ``HTTPS_PROXY``/``HTTP_PROXY``/``NO_PROXY``.
FROM_ENV = FromEnv.FROM_ENV


class ProxyError(HandshakeError):
    """The proxy refused the CONNECT (``status_code`` is the proxy's status).

    A ``HandshakeError``, so ``should_reconnect`` and the reconnect policy treat it like
    a refused upgrade: 407 and other 4xx end at once, 502/503/504 are retried.
    """

    def __init__(self, status_code: int, reason: str, proxy: str) -> None:
        super().__init__(HandshakeRejected(status_code=status_code))
        self.args = (f"proxy {proxy} refused CONNECT with HTTP {status_code} {reason}".rstrip(),)


@attrs.frozen(kw_only=True)
class Proxy:
    """An HTTP proxy: where it is, and the header that authenticates to it (hidden)."""

    host: str
    port: int
    authorization: str | None = attrs.field(default=None, repr=False)

    @property
    def address(self) -> str:
        """``host:port``, for messages (never the credentials)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


def parse_proxy(url: str) -> Proxy:
    """Read ``http://[user:pass@]host[:port]``; errors never echo the URL (it may hold a
    password)."""
    if not isinstance(url, str):
        raise ValueError(f"proxy must be a str or None, got {type(url).__name__}")
    if "://" not in url:
        url = "http://" + url  # HTTPS_PROXY=host:port is common
    parts = urllib.parse.urlsplit(url)
    if parts.scheme.lower() != "http":
        raise ValueError(
            f"proxy scheme must be http (a CONNECT proxy), got {parts.scheme.lower()!r}"
        )
    if not parts.hostname:
        raise ValueError("proxy url has no host")
    try:
        port = parts.port or 80
    except ValueError:
        raise ValueError("proxy url has an invalid port") from None
    authorization = None
    if parts.username is not None:
        user = urllib.parse.unquote(parts.username)
        password = urllib.parse.unquote(parts.password or "")
        token = base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
        authorization = f"Basic {token}"
    return Proxy(host=parts.hostname, port=port, authorization=authorization)


def _bypassed(host: str, no_proxy: str) -> bool:
    """Whether ``NO_PROXY`` (comma-separated hosts, ``.suffix`` or ``*``) lists ``host``."""
    host = host.lower().strip("[]")
    for entry in no_proxy.split(","):
        entry = entry.strip().lower()
        if not entry:
            continue
        if entry == "*":
            return True
        entry = entry.rsplit(":", 1)[0] if entry.count(":") == 1 else entry
        entry = entry.lstrip(".").strip("[]")
        if host == entry or host.endswith("." + entry):
            return True
    return False


def _env(environ: Mapping[str, str], name: str) -> str:
    return environ.get(name.lower()) or environ.get(name.upper()) or ""


def select_proxy(
    proxy: str | FromEnv | None,
    *,
    host: str,
    tls: bool,
    environ: Mapping[str, str] | None = None,
) -> Proxy | None:
    """The proxy for a connection to ``host``: the argument, or the environment's."""
    if proxy is None:
        return None
    if not isinstance(proxy, FromEnv):
        return parse_proxy(proxy)
    env = os.environ if environ is None else environ
    url = _env(env, "https_proxy" if tls else "http_proxy")
    if not url or _bypassed(host, _env(env, "no_proxy")):
        return None
    return parse_proxy(url)


class ConnectTunnel:
    """The CONNECT exchange: send ``request``, then ``feed`` the reply a byte at a time.

    Byte by byte because whatever follows the reply's blank line belongs to the tunnel
    (the proxy may pass the server's first bytes right after it); the reply is short.
    """

    def __init__(self, proxy: Proxy, host: str, port: int) -> None:
        self.proxy = proxy
        target = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        lines = [f"CONNECT {target} HTTP/1.1", f"Host: {target}"]
        if proxy.authorization is not None:
            lines.append(f"Proxy-Authorization: {proxy.authorization}")
        self.request = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        self._reply = bytearray()

    def feed(self, data: bytes) -> bool:
        """Take reply bytes; True once the tunnel is open. Raises ``ProxyError`` when the
        proxy refused, ``ConnectionError`` when it hung up or sent garbage."""
        if not data:
            raise ConnectionError(f"proxy {self.proxy.address} closed the connection")
        self._reply += data
        if not self._reply.endswith(b"\r\n\r\n"):
            if len(self._reply) > _MAX_REPLY:
                raise ConnectionError(f"proxy {self.proxy.address} sent an oversized reply")
            return False
        status_line = bytes(self._reply).split(b"\r\n", 1)[0].decode("latin-1")
        parts = status_line.split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].isdigit():
            raise ConnectionError(f"proxy {self.proxy.address} sent an invalid reply")
        status = int(parts[1])
        if not 200 <= status < 300:
            reason = parts[2] if len(parts) > 2 else ""
            raise ProxyError(status, reason[:100], self.proxy.address)
        return True
