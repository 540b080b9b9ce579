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

from wsproto.frame_protocol import FrameDecoder

from dgproto import Closed, Config, Connected, ListenConnection, LiveOptions
from dgproto._inbound import BINARY, CLOSE, ERROR, PING, TEXT
from dgproto._messages import decode_binary, decode_message
from dgproto._options import Auth

from .fuzzing import render_handshake
from .test_inbound import WsprotoOracle


def open_connection(max_size: int, first: bytes = b"") -> ListenConnection:
    """A connection past its handshake; ``first`` arrives in the same read as the 101."""
    conn = ListenConnection(
        options=LiveOptions(encoding="linear16", sample_rate=16000),
        auth=Auth.token("diff-key"),
        host="localhost",
        config=Config(max_message_size=max_size, ping_interval=None),
    )
    conn.connect(now=0.0)
    request = conn.data_to_send()
    conn.receive_data(render_handshake(("accept", None), request) + first, now=0.0)
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
    mapped = [
        ("closed", e.code, e.reason, e.initiator) if isinstance(e, Closed) else e for e in got
    ]
    assert mapped == want
    for event in got:
        if isinstance(event, Closed) and event.initiator == "client":
            assert event.error is not None
            assert event.error.close_code == event.code
    # every ping is answered in order (none after the stream ended)
    assert _pongs(written) == pongs
