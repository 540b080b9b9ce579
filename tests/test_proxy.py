"""HTTP CONNECT proxies: the pure parts, then all three adapters through a small
CONNECT proxy on loopback started by the tests (asyncio streams in a thread)."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import socket
import ssl
import struct
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from dgproto import Config, LiveOptions, Results
from dgproto.emulator import EmulatorConfig, synthesize
from dgproto.transports._proxy import (
    FROM_ENV,
    ConnectTunnel,
    Proxy,
    ProxyError,
    parse_proxy,
    select_proxy,
)
from dgproto.transports.server import ThreadedEmulatorServer, serve_in_thread

from .adapter_drivers import DRIVERS, Driver
from .test_adapters import TlsProxy, certificate  # noqa: F401 (a fixture)

USER, PASSWORD = "alice", "pr0xy-s3cret-do-not-log"
TEXT = "through the proxy"
AUDIO = synthesize(TEXT)
OPTIONS = LiveOptions(model="nova-3", encoding="linear16", sample_rate=16000)
FAST = Config(keepalive_interval=0.2, open_timeout=2.0, close_timeout=3.0)

# --------------------------------------------------------------------------- pure


def test_parse_proxy_keeps_credentials_out_of_repr_and_errors() -> None:
    proxy = parse_proxy(f"http://{USER}:{PASSWORD}@proxy.example:3128")
    assert (proxy.host, proxy.port, proxy.address) == ("proxy.example", 3128, "proxy.example:3128")
    token = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    assert proxy.authorization == f"Basic {token}"
    assert PASSWORD not in repr(proxy)
    assert token not in repr(proxy)
    assert parse_proxy("proxy.example").port == 80
    assert parse_proxy("http://[::1]:8080").address == "[::1]:8080"
    for bad, match in [
        (f"socks5://{USER}:{PASSWORD}@h:1", "scheme must be http"),
        (f"http://{USER}:{PASSWORD}@:1", "no host"),
        (f"http://{USER}:{PASSWORD}@h:99999", "invalid port"),
    ]:
        with pytest.raises(ValueError, match=match) as info:
            parse_proxy(bad)
        assert PASSWORD not in str(info.value)
    with pytest.raises(ValueError, match="must be a str"):
        parse_proxy(3128)  # type: ignore[arg-type]


def test_select_proxy_follows_the_environment_unless_told_not_to() -> None:
    env = {"HTTPS_PROXY": "http://secure:1", "http_proxy": "http://plain:2", "NO_PROXY": ""}
    assert select_proxy(FROM_ENV, host="api.deepgram.com", tls=True, environ=env) == Proxy(
        host="secure", port=1
    )
    assert select_proxy(FROM_ENV, host="h", tls=False, environ=env) == Proxy(host="plain", port=2)
    assert select_proxy(None, host="h", tls=True, environ=env) is None
    assert select_proxy("http://x:9", host="h", tls=True, environ={}) == Proxy(host="x", port=9)
    assert select_proxy(FROM_ENV, host="h", tls=True, environ={}) is None
    for no_proxy, host, bypassed in [
        ("deepgram.com", "api.deepgram.com", True),
        (".deepgram.com", "api.deepgram.com", True),
        ("localhost, 127.0.0.1:8080", "127.0.0.1", True),
        ("*", "anything", True),
        ("[::1]", "::1", True),
        ("other.com,,", "api.deepgram.com", False),
        ("gram.com", "api.deepgram.com", False),
    ]:
        env = {"https_proxy": "http://p:1", "no_proxy": no_proxy}
        chosen = select_proxy(FROM_ENV, host=host, tls=True, environ=env)
        assert (chosen is None) == bypassed, (no_proxy, host)


def test_connect_tunnel_request_and_replies() -> None:
    proxy = parse_proxy(f"http://{USER}:{PASSWORD}@p:1")
    tunnel = ConnectTunnel(proxy, "api.deepgram.com", 443)
    assert tunnel.request.startswith(b"CONNECT api.deepgram.com:443 HTTP/1.1\r\n")
    assert b"Proxy-Authorization: Basic " in tunnel.request
    assert ConnectTunnel(Proxy(host="p", port=1), "::1", 80).request.startswith(
        b"CONNECT [::1]:80 HTTP/1.1\r\nHost: [::1]:80\r\n\r\n"
    )
    reply = b"HTTP/1.1 200 Connection established\r\n\r\n"
    assert [tunnel.feed(reply[i : i + 1]) for i in range(len(reply))][-2:] == [False, True]
    refused = ConnectTunnel(proxy, "h", 1)
    with pytest.raises(ProxyError) as info:
        refused.feed(b"HTTP/1.1 407 Proxy Authentication Required\r\n\r\n")
    assert info.value.status_code == 407
    assert not info.value.retryable
    assert "407 Proxy Authentication Required" in str(info.value)
    assert PASSWORD not in str(info.value)
    assert ProxyError(503, "", "p:1").retryable
    with pytest.raises(ConnectionError, match="invalid reply"):
        ConnectTunnel(proxy, "h", 1).feed(b"SSH-2.0\r\n\r\n")
    with pytest.raises(ConnectionError, match="closed the connection"):
        ConnectTunnel(proxy, "h", 1).feed(b"")
    with pytest.raises(ConnectionError, match="oversized"):
        ConnectTunnel(proxy, "h", 1).feed(b"x" * 20000)


# --------------------------------------------------------------------------- loopback proxy


class ConnectProxy(TlsProxy):
    """A CONNECT proxy on loopback: optional Basic auth, or ``silent`` (never answers)."""

    def __init__(
        self,
        *,
        credentials: tuple[str, str] | None = None,
        silent: bool = False,
        reset_after: int | None = None,
    ):
        self.credentials = credentials
        self.silent = silent
        #: Reset (RST) the first client connection after this many bytes from the server.
        self.reset_after = reset_after
        self.requests: list[str] = []
        self._context = None  # plain TCP: TlsProxy's server, minus the TLS
        self._ready = threading.Event()
        self._thread = threading.Thread(target=asyncio.run, args=(self._main(),))
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self.port = 0

    @property
    def url(self) -> str:  # type: ignore[override]
        if self.credentials is None:
            return f"http://127.0.0.1:{self.port}"
        return f"http://{self.credentials[0]}:{self.credentials[1]}@127.0.0.1:{self.port}"

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
        self.requests.append(head)
        assert self._stop is not None
        if self.silent:
            await self._stop.wait()
            writer.close()
            return
        headers = dict(line.split(": ", 1) for line in head.split("\r\n")[1:] if ": " in line)
        if self.credentials is not None:
            token = base64.b64encode(":".join(self.credentials).encode()).decode()
            if headers.get("Proxy-Authorization") != f"Basic {token}":
                writer.write(b"HTTP/1.1 407 Proxy Authentication Required\r\n\r\n")
                writer.close()
                return
        host, port = head.split(" ")[1].rsplit(":", 1)
        up_reader, up_writer = await asyncio.open_connection(host.strip("[]"), int(port))
        writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
        if self.reset_after is None:
            down = self._pipe(up_reader, writer)
        else:
            limit, self.reset_after = self.reset_after, None
            down = self._pipe_then_reset(up_reader, writer, limit)
        await asyncio.gather(self._pipe(reader, up_writer), down)

    async def _pipe_then_reset(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, limit: int
    ) -> None:
        """Forward ``limit`` bytes, then reset the client's connection (RST, not FIN)."""
        with contextlib.suppress(OSError):
            while limit > 0 and (data := await reader.read(min(limit, 65536))):
                writer.write(data)
                await writer.drain()
                limit -= len(data)
            sock = writer.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        writer.transport.abort()

    def __enter__(self) -> ConnectProxy:
        super().__enter__()
        return self


@pytest.fixture(params=list(DRIVERS))
def driver(request: pytest.FixtureRequest) -> Driver:
    return DRIVERS[request.param]()


@pytest.fixture(scope="module")
def server() -> Any:
    with serve_in_thread(config=EmulatorConfig(require_auth=False)) as srv:
        yield srv


async def raises(kind: type[BaseException], body: Any) -> Any:
    """Await ``body`` inside the runtime (so trio does not wrap the error in a group)."""
    with pytest.raises(kind) as info:
        await body
    return info


async def transcribe(d: Driver, url: str, **kwargs: Any) -> tuple[str, str]:
    async with d.connect(options=OPTIONS, url=url, config=FAST, **kwargs) as stream:
        await stream.send_audio(AUDIO)
        await stream.close()
        events = await d.collect(stream)
        text = " ".join(
            e.alternatives[0].transcript for e in events if isinstance(e, Results) and e.is_final
        )
        return text, repr(stream)


def test_through_an_authenticating_proxy_nothing_leaks(
    driver: Driver,
    server: ThreadedEmulatorServer,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("HTTP_PROXY", raising=False)
    monkeypatch.delenv("http_proxy", raising=False)
    caplog.set_level(logging.DEBUG)
    with ConnectProxy(credentials=(USER, PASSWORD)) as proxy:
        text, shown = driver.run(lambda d: transcribe(d, server.url, proxy=proxy.url))
        assert text == TEXT
        assert proxy.requests[0].startswith(f"CONNECT 127.0.0.1:{server.port} HTTP/1.1\r\n")
        info = driver.run(
            lambda d: raises(
                ProxyError, transcribe(d, server.url, proxy=proxy.url.replace(USER, "bob"))
            )
        )
        assert info.value.status_code == 407
    token = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    for text_seen in (caplog.text, shown, str(info.value), repr(info.value)):
        assert PASSWORD not in text_seen
        assert token not in text_seen


def test_environment_proxy_no_proxy_and_proxy_none(
    driver: Driver, server: ThreadedEmulatorServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("HTTP_PROXY", "http_proxy", "NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    with ConnectProxy() as proxy:
        monkeypatch.setenv("HTTP_PROXY", proxy.url)
        assert driver.run(lambda d: transcribe(d, server.url))[0] == TEXT
        assert len(proxy.requests) == 1
        assert driver.run(lambda d: transcribe(d, server.url, proxy=None))[0] == TEXT
        monkeypatch.setenv("NO_PROXY", "localhost,127.0.0.1")
        assert driver.run(lambda d: transcribe(d, server.url))[0] == TEXT
        assert len(proxy.requests) == 1  # neither went through the proxy


def test_open_timeout_covers_a_silent_proxy(driver: Driver, server: ThreadedEmulatorServer) -> None:
    config = Config(open_timeout=0.3)

    async def scenario(d: Driver) -> None:
        async with d.connect(options=OPTIONS, url=server.url, config=config, proxy=proxy.url):
            raise AssertionError("opened")

    with ConnectProxy(silent=True) as proxy:
        started = time.monotonic()
        driver.run(lambda d: raises(TimeoutError, scenario(d)))
        assert time.monotonic() - started < 2.0
        assert len(proxy.requests) == 1


def test_wss_through_the_proxy_still_verifies_the_server(
    driver: Driver,
    server: ThreadedEmulatorServer,
    certificate: tuple[Path, Path],  # noqa: F811
) -> None:
    cert, key = certificate
    trusted = ssl.create_default_context(cafile=str(cert))
    with TlsProxy(server, cert, key) as tls, ConnectProxy() as proxy:
        text, _ = driver.run(lambda d: transcribe(d, tls.url, proxy=proxy.url, ssl_context=trusted))
        assert text == TEXT
        driver.run(lambda d: raises(ssl.SSLError, transcribe(d, tls.url, proxy=proxy.url)))
        assert len(proxy.requests) == 2


def test_reconnect_through_the_proxy_after_a_reset(
    driver: Driver, server: ThreadedEmulatorServer
) -> None:
    """RST mid-stream (the proxy resets the client after the first messages): the
    reconnecting stream goes through the proxy again and loses no word."""
    from dgproto import Reconnected, Reconnecting, ReconnectPolicy

    words = "one two three four five six seven eight"
    audio = synthesize(words)
    policy = ReconnectPolicy(initial_delay=0.01, jitter=0.0)

    async def scenario(d: Driver) -> list[Any]:
        async with d.connect(
            options=OPTIONS, url=segmented.url, config=FAST, reconnect=policy, proxy=proxy.url
        ) as stream:
            for i in range(0, len(audio), 3200):
                await stream.send_audio(audio[i : i + 3200])
                await d.sleep(0.005)
            await stream.close()
            return await d.collect(stream)

    with (
        serve_in_thread(config=EmulatorConfig(require_auth=False, max_segment=0.5)) as segmented,
        ConnectProxy(reset_after=600) as proxy,
    ):
        events = driver.run(scenario)
    finals = [e.alternatives[0].transcript for e in events if isinstance(e, Results) and e.is_final]
    assert " ".join(t for t in finals if t) == words
    dropped = [e.closed for e in events if isinstance(e, Reconnecting)]
    assert dropped
    assert dropped[0].code == 1006
    assert dropped[0].initiator == "transport"
    assert any(isinstance(e, Reconnected) for e in events)
    assert len(proxy.requests) >= 2
