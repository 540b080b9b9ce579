"""The connection's receive path against wsproto's, for any server frames split anywhere.

``ListenConnection`` parses the server's frames with ``InboundParser`` once the handshake
is done. The oracle is wsproto's own parser (``test_inbound.WsprotoOracle``) with the
events the connection made from wsproto's output before: each whole text message
decoded by the endpoint's registry, each binary one a ``MalformedMessage``, the peer's
close a clean ``Closed`` from the server, a protocol error (or an oversized message) a
``Closed`` from the client with wsproto's close code and reason. Pings and pongs make no
event; every ping must be answered with its pong.

Used by ``tests/test_inbound_session.py`` (hypothesis, a few hundred streams in
``make test``) and by ``make fuzz`` (``python -m tests.fuzzing inbound``, seeded random
streams for ``FUZZ_SECONDS``). The fragment-flood rule (``_fragments``) is left out of
the generated streams: it is counted per frame by the parser and per wsproto event by
the old path, so it is checked by named tests instead (tests/test_hardening.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from wsproto import WSConnection
from wsproto.connection import Connection, ConnectionState, ConnectionType
from wsproto.events import (
    AcceptConnection,
    BytesMessage,
    CloseConnection,
    Ping,
    Pong,
    Request,
    TextMessage,
)
from wsproto.frame_protocol import FrameDecoder

from dgproto import Closed, Config, Connected, ListenConnection, LiveOptions, Utterance
from dgproto._inbound import BINARY, CLOSE, ERROR, PING, PONG, TEXT, InboundParser
from dgproto._messages import decode_binary, decode_message
from dgproto._options import Auth

Outcome = list[list[tuple[Any, ...]]]


class WsprotoOracle:
    """wsproto's parser plus ListenConnection's reassembly and size check (as of wsproto)."""

    def __init__(self, max_size: int | None) -> None:
        self.conn = Connection(ConnectionType.CLIENT)
        self.max = max_size
        self.parts: list[Any] = []
        self.size = 0
        self.done = False

    def feed(self, data: bytes) -> list[tuple[Any, ...]]:
        out: list[tuple[Any, ...]] = []
        if self.done:
            return out
        self.conn.receive_data(data)
        for event in self.conn.events():
            if isinstance(event, (TextMessage, BytesMessage)):
                self.size += len(event.data)
                if self.max is not None and self.size > self.max:
                    reason = (
                        f"message of at least {self.size} characters exceeds "
                        f"max_message_size={self.max}"
                    )
                    out.append((ERROR, 1009, reason))
                    self.done = True
                    return out
                self.parts.append(event.data)
                if event.message_finished:
                    if isinstance(event, TextMessage):
                        out.append((TEXT, "".join(self.parts)))
                    else:
                        out.append((BINARY, b"".join(bytes(p) for p in self.parts)))
                    self.parts = []
                    self.size = 0
            elif isinstance(event, Ping):
                out.append((PING, bytes(event.payload)))
            elif isinstance(event, Pong):
                out.append((PONG, bytes(event.payload)))
            else:
                assert isinstance(event, CloseConnection)
                peer_closed = self.conn.state is ConnectionState.REMOTE_CLOSING
                out.append((CLOSE if peer_closed else ERROR, int(event.code), event.reason))
                self.done = True
                return out
        return out


def run_both(chunks: list[bytes], max_size: int | None = None) -> tuple[Outcome, Outcome]:
    oracle = WsprotoOracle(max_size)
    parser = InboundParser(max_size)
    theirs: Outcome = []
    ours: Outcome = []
    for chunk in chunks:
        theirs.append(oracle.feed(chunk))
        events = []
        for kind, value in parser.feed(chunk):
            events.append((kind, *value) if kind in (CLOSE, ERROR) else (kind, value))
        ours.append(events)
        # bounded by design: at most a frame header or one control frame held back
        assert len(parser._held) <= 127
    return theirs, ours


def open_connection(max_size: int, first: bytes = b"") -> ListenConnection:
    """A connection past its handshake; ``first`` arrives in the same read as the 101."""
    conn = ListenConnection(
        options=LiveOptions(encoding="linear16", sample_rate=16000),
        auth=Auth.token("diff-key"),
        host="localhost",
        config=Config(max_message_size=max_size, ping_interval=None),
    )
    conn.connect(now=0.0)
    server = WSConnection(ConnectionType.SERVER)
    server.receive_data(conn.data_to_send())
    assert isinstance(next(server.events()), Request)
    conn.receive_data(server.send(AcceptConnection()) + first, now=0.0)
    return conn


def _pongs(data: bytes) -> list[bytes]:
    """The payloads of the (masked) pong frames in what the client wrote."""
    decoder = FrameDecoder(client=False)
    decoder.receive_bytes(data)
    out = []
    while (frame := decoder.process_buffer()) is not None:
        if frame.opcode == 0xA:
            out.append(bytes(frame.payload))
    return out


def expected_events(
    outcome: Sequence[tuple[Any, ...]], loads: Any
) -> tuple[list[Any], list[bytes]]:
    """What the connection must emit for wsproto's outcome, and the pongs it must send."""
    events: list[Any] = []
    pongs: list[bytes] = []
    for item in outcome:
        kind = item[0]
        if kind == TEXT:
            events.append(decode_message(item[1], loads))
        elif kind == BINARY:
            events.append(decode_binary(item[1]))
        elif kind == PING:
            pongs.append(item[1])
        elif kind == CLOSE:
            events.append(("closed", item[1], item[2], "server"))
        elif kind == ERROR:
            events.append(("closed", item[1], item[2], "client"))
    return events, pongs


def compare(chunks: Sequence[bytes], max_size: int, *, with_101: bool) -> None:
    """Feed ``chunks`` to wsproto's oracle and to a connection; they must agree."""
    oracle = WsprotoOracle(max_size)
    first = chunks[0] if with_101 and chunks else b""
    conn = open_connection(max_size, first)
    got = conn.events()
    assert isinstance(got[0], Connected), got
    got = got[1:]
    outcome = oracle.feed(first) if with_101 and chunks else []
    written = conn.data_to_send()
    for chunk in chunks[1:] if with_101 and chunks else chunks:
        outcome += oracle.feed(chunk)
        if chunk:  # b"" is EOF for the connection: not part of this comparison
            conn.receive_data(chunk, now=1.0)
        got += conn.events()
        written += conn.data_to_send()
    want, pongs = expected_events(outcome, conn._loads)
    # Utterances are derived from the decoded Results (tested in test_utterances*):
    # the framing oracle knows nothing of them.
    mapped = [
        ("closed", e.code, e.reason, e.initiator) if isinstance(e, Closed) else e
        for e in got
        if not isinstance(e, Utterance)
    ]
    assert mapped == want
    for event in got:
        if isinstance(event, Closed) and event.initiator == "client":
            assert event.error is not None
            assert event.error.close_code == event.code
    # every ping is answered in order (none after the stream ended)
    assert _pongs(written) == pongs
