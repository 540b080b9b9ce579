"""Open WebSocket client/server pairs in memory (no sockets) for the micro-benchmarks.

Each helper returns the client already past the HTTP upgrade, plus the server side so
a benchmark can make server frames for the client to receive.
"""

from __future__ import annotations

from typing import Any

from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, Request, TextMessage

from dgproto import Config, Connected, ListenConnection, LiveOptions
from dgproto._options import Auth

OPTIONS = LiveOptions(model="nova-3", encoding="linear16", sample_rate=16000, interim_results=True)


def open_dgproto(config: Config | None = None) -> tuple[ListenConnection, WSConnection]:
    """A ``ListenConnection`` in state OPEN, and the wsproto server it talks to."""
    conn = ListenConnection(
        options=OPTIONS, auth=Auth.token("bench-key"), host="127.0.0.1", config=config
    )
    server = WSConnection(ConnectionType.SERVER)
    conn.connect(now=0.0)
    server.receive_data(conn.data_to_send())
    request = next(server.events())
    assert isinstance(request, Request)
    conn.receive_data(server.send(AcceptConnection()), now=0.0)
    assert isinstance(conn.next_event(), Connected)
    return conn, server


def open_wsproto() -> tuple[WSConnection, WSConnection]:
    """A wsproto client in state OPEN, and its wsproto server."""
    client = WSConnection(ConnectionType.CLIENT)
    server = WSConnection(ConnectionType.SERVER)
    server.receive_data(client.send(Request(host="127.0.0.1", target="/v1/listen")))
    assert isinstance(next(server.events()), Request)
    client.receive_data(server.send(AcceptConnection()))
    list(client.events())
    return client, server


def open_websockets() -> tuple[Any, Any] | None:
    """A websockets sans-I/O ``ClientProtocol`` in state OPEN and its ``ServerProtocol``,
    or None when websockets is not installed."""
    try:
        from websockets.client import ClientProtocol
        from websockets.server import ServerProtocol
        from websockets.uri import parse_uri
    except ImportError:
        return None
    client = ClientProtocol(parse_uri("ws://127.0.0.1/v1/listen"))
    client.send_request(client.connect())
    server = ServerProtocol()
    server.receive_data(b"".join(client.data_to_send()))
    request = server.events_received()[0]
    server.send_response(server.accept(request))  # type: ignore[arg-type]
    client.receive_data(b"".join(server.data_to_send()))
    client.events_received()
    return client, server


def server_text_frame(text: str) -> bytes:
    """The bytes of one unmasked text frame from a server, as a client receives it."""
    _, server = open_wsproto()
    return server.send(TextMessage(data=text))
