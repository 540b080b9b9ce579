"""The WebSocket session every Deepgram streaming endpoint shares, written once.

``Session`` owns everything that is the same on ``/v1/listen`` and ``/v2/listen`` (and
would be on the speak endpoints, research/protocol.md §5.3): the HTTP upgrade and auth,
parsing a refused handshake, classifying close frames, pings and pong timeouts, the open
and close deadlines, the outbound FIFO, the audio frame writer, message reassembly and
size limits, and the one ``Closed`` at the end. An endpoint subclass brings only data and
a few hooks: its options (anything with ``to_query()``), its message registry (a
``decode(text, loads) -> Event`` function), its legality table (``_state``), and its own
commands, timers and bookkeeping.

``StreamConnection`` is the typed driver surface both ``ListenConnection`` and
``FluxConnection`` offer, so an adapter writes one pump per runtime, not one per endpoint.

The driver's loop, after *every* call: write ``data_to_send()``, drain ``next_event()``,
re-arm ``get_timer()``, and close the socket once ``should_close_transport`` is true.
Not thread-safe: an adapter serialises its calls.
"""

from __future__ import annotations

import json
import sys
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

import attrs
from wsproto import ConnectionType, WSConnection
from wsproto.connection import ConnectionState
from wsproto.events import (
    AcceptConnection,
    CloseConnection,
    Ping,
    Pong,
    RejectConnection,
    RejectData,
    Request,
    TextMessage,
)
from wsproto.utilities import RemoteProtocolError as WsRemoteProtocolError

from ._config import Config
from ._events import Closed, CloseInitiator, Connected, Event, HandshakeRejected, Metadata
from ._exceptions import LocalProtocolError, RemoteProtocolError
from ._framing import BinaryFrameWriter
from ._inbound import BINARY, CLOSE, PING, PONG, TEXT, InboundParser, take_after_handshake
from ._json import default_loads
from ._messages import decode_binary, encode_close_stream
from ._options import Auth, redact_query
from ._resume import StreamView
from ._state import Input, State, Table, next_state
from ._stats import StatsTracker, StreamStats
from ._utterances import UtteranceTracker

__all__ = [
    "USER_AGENT",
    "Session",
    "StreamConnection",
    "Tracking",
    "__version__",
    "classify_close",
]

__version__ = "0.1.0"
USER_AGENT = f"dgproto/{__version__} python/{sys.version_info.major}.{sys.version_info.minor}"

#: Close codes after which opening a new stream can succeed: going away, abnormal
#: closure, server error (NET-0000/NET-0001), service restart, try again later, bad gateway.
_RETRYABLE_CLOSE_CODES = frozenset({1001, 1006, 1011, 1012, 1013, 1014})

_DEEPGRAM_CLOSE_CODES = (
    ("net0001", "NET-0001"),
    ("net0000", "NET-0000"),
    ("data0000", "DATA-0000"),
)

_OPEN = State.OPEN  # read for every audio frame

#: A message registry: turns one text message into one event, never raising.
Decoder = Callable[[str, Callable[[str], Any]], Event]


def classify_close(code: int, reason: str) -> tuple[str | None, bool]:
    """Return ``(error_code, retryable)`` for a close frame Deepgram sent.

    Deepgram's reasons are prose ending in a link (``... See https://dpgr.am/net0001``),
    not the code itself, so the code is found by a case-insensitive search.
    """
    folded = reason.lower().replace("-", "")
    error_code = next((name for key, name in _DEEPGRAM_CLOSE_CODES if key in folded), None)
    retryable = code in _RETRYABLE_CLOSE_CODES and error_code != "DATA-0000"
    return error_code, retryable


class _Query(Protocol):
    """What a session needs from an endpoint's options: the query string."""

    def to_query(self) -> str: ...


@runtime_checkable
class StreamConnection(Protocol):
    """The driver surface shared by ``ListenConnection`` and ``FluxConnection``.

    An adapter pumps any connection through exactly these members; endpoint commands
    (``finalize``, ``force_end_turn``, ``configure``, ...) are called by the user on top.
    """

    @property
    def state(self) -> State:
        """Where the connection is in its life."""

    @property
    def should_close_transport(self) -> bool:
        """True once ``Closed`` is emitted: flush, then close the socket."""

    @property
    def request_id(self) -> str | None:
        """Deepgram's ``dg-request-id``, once the handshake answered."""

    @property
    def closed(self) -> Closed | None:
        """The ``Closed`` event once the connection is over."""

    @property
    def audio_bytes_sent(self) -> int:
        """Bytes of audio passed to ``send_audio``."""

    @property
    def audio_seconds_sent(self) -> float | None:
        """Seconds of audio sent; ``None`` without a fixed byte rate."""

    @property
    def stats(self) -> StreamStats:
        """The stream's figures so far (``StreamStats``)."""

    @property
    def bytes_received(self) -> int:
        """Bytes fed to ``receive_data`` (the adapters' event-queue byte bound)."""

    def connect(self, *, now: float) -> None:
        """Queue the HTTP upgrade request."""

    def receive_data(self, data: bytes | bytearray | memoryview, *, now: float) -> None:
        """Feed bytes read from the socket (``b""`` is EOF)."""

    def receive_eof(self, *, now: float) -> None:
        """The socket reached EOF."""

    def data_to_send(self) -> bytes:
        """Bytes to write to the socket now."""

    def next_event(self) -> Event | None:
        """The next event, or ``None``."""

    def events(self) -> list[Event]:
        """Every pending event."""

    def get_timer(self) -> float | None:
        """The earliest deadline at which ``handle_timer`` has work."""

    def handle_timer(self, *, now: float) -> None:
        """Act on every deadline that has passed."""

    def send_audio(self, chunk: bytes | bytearray | memoryview, *, now: float) -> None:
        """Queue one binary audio frame."""

    def audio_data_to_send(self, chunk: bytes | bytearray | memoryview, *, now: float) -> bytes:
        """``send_audio`` then ``data_to_send`` in one call: the adapters' audio hot path."""

    def close_stream(self, *, now: float) -> None:
        """Send CloseStream and drain."""

    def abort(self, *, now: float) -> None:
        """Close now, without draining."""


@attrs.define
class Tracking:
    """The trackers one stream keeps across its sockets (a reconnecting stream's).

    A lone connection makes its own. A reconnecting stream passes one ``Tracking`` to
    every socket's connection, so the figures add up over the sockets and an utterance
    in progress survives a drop: ``view`` (the replay's) puts each socket's events on
    the stream's clock, without the words a replay repeats, *before* they are queued,
    so the app, the utterances and the stats see the same events; and the stream, not
    a socket, ends the utterances with ``UtteranceTracker.close()`` at its real end.
    """

    #: ``StatsTracker``, made by the first connection (it knows the audio format).
    stats: StatsTracker | None = None
    #: ``UtteranceTracker`` (``/v1/listen``), made by the first connection.
    utterances: UtteranceTracker | None = None
    #: Seconds to add to the current socket's timestamps to get stream time.
    offset: float = 0.0
    #: The current socket's ``StreamView`` (``ReplayBuffer.view``): applied to every
    #: message it decodes; ``None`` leaves them as the server sent them.
    view: StreamView | None = None


@attrs.define
class _Rejection:
    """A handshake rejection whose body is still arriving."""

    status_code: int
    headers: tuple[tuple[str, str], ...]
    body: bytearray = attrs.field(factory=bytearray)


def _decode_headers(raw: Iterable[tuple[bytes, bytes]]) -> tuple[tuple[str, str], ...]:
    return tuple((k.decode("latin-1").lower(), v.decode("latin-1")) for k, v in raw)


def _header(headers: Sequence[tuple[str, str]], name: str) -> str | None:
    return next((v for k, v in headers if k == name), None)


def _ignore(event: object, now: float) -> None:
    """wsproto events a client never gets (``Request``) or that need no action."""


def _audio_bytes(chunk: object) -> bytes:
    """A ``bytearray`` or ``memoryview`` chunk as ``bytes``; anything else is refused."""
    if not isinstance(chunk, (bytearray, memoryview)):
        raise TypeError(f"send_audio() takes bytes-like audio, not {type(chunk).__name__}")
    return bytes(chunk)


def _str_or_none(value: object) -> str | None:
    return value if isinstance(value, str) else None


class Session:
    """One Deepgram streaming WebSocket, as a pure state machine (see the module docstring).

    Every method that changes state takes ``now``: seconds on any monotonic clock the
    caller chooses, used only to compute deadlines that ``get_timer()`` reports.
    Commands that the current state does not allow raise ``LocalProtocolError`` and
    change nothing. Input from the peer never raises: misbehaviour becomes events.
    """

    def __init__(
        self,
        *,
        options: _Query,
        auth: Auth | None,
        host: str,
        path: str,
        config: Config | None,
        extra_headers: Sequence[tuple[str, str]],
        user_agent: str,
        table: Table,
        decode: Decoder,
        bytes_per_second: int | None,
        tracking: Tracking | None = None,
        channels: int = 1,
    ) -> None:
        self.config = config if config is not None else Config()
        self._auth = auth if auth is not None else Auth.none()
        self.host = host
        self.path = path
        self._query_options = options
        self._extra_headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in extra_headers]
        self._user_agent = user_agent
        self._loads: Callable[[str], Any] = default_loads(self.config.json_loads)
        self._table = table
        self._decode = decode

        self._state = State.IDLE
        self._ws = WSConnection(ConnectionType.CLIENT)
        self._frames = BinaryFrameWriter()
        self._frame = self._frames.frame  # bound once: called for every audio frame
        #: outgoing bytes, in order; a list so a lone audio frame leaves without a copy
        self._out: list[bytes] = []
        self._events: deque[Event] = deque()
        self._closed: Closed | None = None
        self._request_id: str | None = None
        #: the session summary ``Closed.metadata`` carries (``/v1/listen`` only)
        self._metadata: Metadata | None = None
        self._rejection: _Rejection | None = None

        #: the server's frames after the handshake (wsproto parses the handshake itself)
        self._inbound: InboundParser | None = None
        self._bytes_received = 0

        # timers (absolute deadlines on the caller's clock)
        self._open_deadline: float | None = None
        self._close_deadline: float | None = None
        self._last_sent: float | None = None
        self._ping_at: float | None = None
        #: pings awaiting a pong, oldest first: (payload, time sent); only with ping_timeout
        #: (a list: it holds one or two; an empty deque costs 760 bytes per connection)
        self._pings: list[tuple[bytes, float]] = []
        self._ping_count = 0

        # the audio clock
        self._audio_bytes_sent = 0
        self._bytes_per_second = bytes_per_second

        # statistics: one tracker per stream, shared by its sockets when it reconnects
        #: whether this connection ends the stream's trackers (False: a stream's socket)
        self._owns_tracking = tracking is None
        self._tracking = tracking if tracking is not None else Tracking()
        if self._tracking.stats is None:
            self._tracking.stats = StatsTracker(
                bytes_per_second=bytes_per_second, channels=channels
            )
        self._stats: StatsTracker = self._tracking.stats
        self._on_audio = self._stats.on_audio_sent  # bound once: called for every chunk
        #: the latest ``now`` of an input that can end the connection (for ``Closed``'s time)
        self._now = 0.0

        # the handshake's wsproto events -> handler
        self._dispatch: dict[type, Callable[[Any, float], None]] = {
            AcceptConnection: self._on_accept,
            RejectConnection: self._on_reject,
            RejectData: self._on_reject_data,
        }

    def __repr__(self) -> str:
        path = redact_query(self.path)  # a url's own query may carry a callback
        return f"<{type(self).__name__} {self.host}{path} state={self._state.name}>"

    # ------------------------------------------------------------------ read-only state

    @property
    def state(self) -> State:
        """Where the connection is in its lifecycle."""
        return self._state

    @property
    def should_close_transport(self) -> bool:
        """True once ``Closed`` is emitted: flush ``data_to_send()``, then close the socket."""
        return self._state is State.CLOSED

    @property
    def request_id(self) -> str | None:
        """Deepgram's ``dg-request-id`` from the handshake response, once it arrived."""
        return self._request_id

    @property
    def closed(self) -> Closed | None:
        """The ``Closed`` event, once the connection is over (also queued as an event)."""
        return self._closed

    @property
    def audio_bytes_sent(self) -> int:
        """Bytes of audio passed to ``send_audio`` so far."""
        return self._audio_bytes_sent

    @property
    def stats(self) -> StreamStats:
        """The stream's figures so far, as of the latest ``now`` the core was given."""
        return self._stats.snapshot()

    @property
    def bytes_received(self) -> int:
        """Bytes passed to ``receive_data`` so far: what the peer made us read.

        Adapters bound the events they queue by the bytes behind them with it.
        """
        return self._bytes_received

    @property
    def audio_seconds_sent(self) -> float | None:
        """Seconds of audio sent, per channel; ``None`` when the encoding has no fixed rate.

        Deepgram's timestamps count audio, not wall time, so this is the clock its
        word times are on.
        """
        if self._bytes_per_second is None:
            return None
        return self._audio_bytes_sent / self._bytes_per_second

    # ------------------------------------------------------------------ outputs

    def data_to_send(self) -> bytes:
        """Return (and forget) the bytes to write to the socket; ``b""`` when none."""
        out = self._out
        if not out:
            return b""
        data = out[0] if len(out) == 1 else b"".join(out)
        out.clear()
        return data

    def next_event(self) -> Event | None:
        """Return the next event, or ``None`` when there is none right now."""
        return self._events.popleft() if self._events else None

    def events(self) -> list[Event]:
        """Return (and forget) every pending event."""
        out = list(self._events)
        self._events.clear()
        return out

    def get_timer(self) -> float | None:
        """The earliest absolute deadline at which ``handle_timer`` has work, or ``None``."""
        state = self._state
        if state is State.CONNECTING:
            return self._open_deadline
        if state is not State.OPEN and state is not State.CLOSING:
            return None
        deadlines = [self._ping_at, self._pong_deadline(), *self._endpoint_deadlines(state)]
        if state is State.CLOSING:
            deadlines.append(self._close_deadline)
        return min((d for d in deadlines if d is not None), default=None)

    # ------------------------------------------------------------------ commands

    def connect(self, *, now: float) -> None:
        """Queue the HTTP upgrade request and start the open timeout."""
        self._state = next_state(self._state, Input.CONNECT, self._table)
        query = self._query_options.to_query()
        target = self.path
        if query:
            target += ("&" if "?" in target else "?") + query
        headers = [(b"user-agent", self._user_agent.encode("latin-1")), *self._auth.headers()]
        request = Request(
            host=self.host,
            target=target,
            subprotocols=self._auth.subprotocols(),
            extra_headers=headers + self._extra_headers,
        )
        self._out.append(self._ws.send(request))
        if self.config.open_timeout is not None:
            self._open_deadline = now + self.config.open_timeout

    def send_audio(self, chunk: bytes | bytearray | memoryview, *, now: float) -> None:
        """Queue ``chunk`` as one binary frame. ``b""`` sends nothing.

        An empty binary frame is Deepgram's deprecated way to say CloseStream, so an
        empty chunk from an audio source must never reach the wire.
        """
        out = self._out
        if out:  # frame it alone, then queue it: a loop of sends re-joins nothing
            self._out = []
            try:
                frame = self.audio_data_to_send(chunk, now=now)
            finally:
                self._out = out
        else:
            frame = self.audio_data_to_send(chunk, now=now)
        if frame:
            out.append(frame)

    def audio_data_to_send(self, chunk: bytes | bytearray | memoryview, *, now: float) -> bytes:
        """``send_audio(chunk)`` then ``data_to_send()``: the bytes to write now, in order.

        The adapters' per-frame path: when nothing else is queued (the common case) the
        frame comes back as built, with no trip through the outbound FIFO; control frames
        queued before it (a KeepAlive, a pong) come first, joined with it.
        """
        # _audio_frame's work inline (send_audio frames through here): the adapters call
        # this for every frame, so one Python call fewer per frame.
        if self._state is not _OPEN:  # the hot path skips the table lookup
            next_state(self._state, Input.SEND_AUDIO, self._table)  # raises: only when OPEN
        if type(chunk) is not bytes:  # the common case pays one check
            chunk = _audio_bytes(chunk)
        size = len(chunk)
        out = self._out
        if size:
            frame = self._frame(chunk)
            sent = self._audio_bytes_sent = self._audio_bytes_sent + size
            self._last_sent = now
            bps = self._bytes_per_second
            self._on_audio(size, None if bps is None else self._tracking.offset + sent / bps, now)
            if not out:
                return frame
            out.append(frame)
        elif not out:
            return b""
        data = b"".join(out)
        out.clear()
        return data

    def close_stream(self, *, now: float) -> None:
        """Send ``CloseStream`` and drain: results keep coming until the server closes.

        It queues behind any audio already sent, so Deepgram transcribes all of it.
        """
        self._state = next_state(self._state, Input.CLOSE_STREAM, self._table)
        self._send_text(encode_close_stream(), now=now, kind="CloseStream")
        if self.config.close_timeout is not None:
            self._close_deadline = now + self.config.close_timeout

    def abort(self, *, now: float) -> None:
        """Close now without draining: a close frame if the WebSocket is open, then ``Closed``.

        Safe to call in any state (a no-op once closed), so adapters call it in cleanup.
        """
        self._now = now  # nothing to schedule: the connection ends here
        if self._state is State.CLOSED:
            return
        opened = self._state in (State.OPEN, State.CLOSING)
        self._finish(
            Input.ABORT,
            code=1000 if opened else 1006,
            reason="aborted by the client",
            initiator="client",
            send_close=1000 if opened else None,
        )

    def _command(self, command: Input) -> None:
        """Check that an endpoint command is legal now (raises ``LocalProtocolError``)."""
        self._state = next_state(self._state, command, self._table)

    # ------------------------------------------------------------------ inputs

    def receive_data(self, data: bytes | bytearray | memoryview, *, now: float) -> None:
        """Feed bytes read from the socket. ``b""`` means EOF, as from ``recv()``.

        Never raises because of what the peer sent: protocol violations end the
        connection with ``Closed(error=RemoteProtocolError(...))``.
        """
        self._now = now
        inbound = self._inbound
        if inbound is not None and data:
            # the hot path: frames after the handshake (the parser exists only between
            # the 101 and CLOSED, so the state checks below cannot apply)
            self._bytes_received += len(data)
            self._receive_frames(inbound.feed(data))
            return
        if self._state is State.IDLE:
            raise LocalProtocolError("receive_data() before connect()", state=self._state)
        if self._state is State.CLOSED:
            return
        if not data:
            self.receive_eof(now=now)
            return
        self._bytes_received += len(data)
        try:
            self._ws.receive_data(data if type(data) is bytes else bytes(data))
        except (WsRemoteProtocolError, UnicodeError) as exc:
            # wsproto raises these only for the HTTP response; a header it cannot decode
            # as ASCII (a byte like 0xE9 in Connection) raises UnicodeDecodeError.
            self._protocol_error(f"invalid handshake response: {exc}", code=1002)
            return
        self._process(now)

    def receive_eof(self, *, now: float) -> None:
        """The socket reached EOF. Idempotent; a no-op once closed."""
        self._now = now
        if self._state is State.IDLE:
            raise LocalProtocolError("receive_eof() before connect()", state=self._state)
        if self._state is State.CLOSED:
            return
        if self._rejection is not None:
            # A rejection body without Content-Length is delimited by EOF.
            try:
                self._ws.receive_data(None)
            except (WsRemoteProtocolError, UnicodeError):
                pass  # a truncated body: report what arrived
            else:
                self._process(now)
            if self._rejection is not None:
                self._finish_rejection()
            return
        was_open = self._state is State.OPEN
        during = "handshake" if self._state is State.CONNECTING else "stream"
        self._finish(
            Input.TRANSPORT_EOF,
            code=1006,
            reason=f"connection lost during the {during} without a close frame",
            initiator="transport",
            retryable=was_open or during == "handshake",
            error=RemoteProtocolError("the peer closed the TCP connection without a close frame"),
        )

    def handle_timer(self, *, now: float) -> None:
        """Act on every deadline that has passed. Calling it early does nothing."""
        self._now = now
        state = self._state
        if state is State.CONNECTING:
            if self._open_deadline is not None and now >= self._open_deadline:
                self._finish(
                    Input.OPEN_TIMEOUT,
                    code=1006,
                    reason="opening handshake timed out",
                    initiator="timeout",
                    retryable=True,
                )
            return
        if state is not State.OPEN and state is not State.CLOSING:
            return
        pong_deadline = self._pong_deadline()
        if pong_deadline is not None and now >= pong_deadline:
            self._finish(
                Input.PING_TIMEOUT,
                code=1006,
                reason="no pong within ping_timeout",
                initiator="timeout",
                retryable=True,
                send_close=1011,
            )
            return
        if (
            state is State.CLOSING
            and self._close_deadline is not None
            and now >= self._close_deadline
        ):
            self._finish(
                Input.CLOSE_TIMEOUT,
                code=1006,
                reason="the server did not close within close_timeout after CloseStream",
                initiator="timeout",
                send_close=1000,
            )
            return
        if self._ping_at is not None and now >= self._ping_at:
            self._send_ping(now)
        self._on_timer(state, now)

    # ------------------------------------------------------------------ endpoint hooks

    def _endpoint_deadlines(self, state: State) -> list[float | None]:
        """The endpoint's own deadlines while OPEN or CLOSING (none by default)."""
        return []

    def _on_timer(self, state: State, now: float) -> None:
        """Act on the endpoint's own deadlines that passed (OPEN or CLOSING)."""

    def _on_message(self, event: Event) -> None:
        """Bookkeeping for one decoded text message, already queued as ``event``."""

    def _on_finishing(self) -> None:
        """Settle the endpoint's pending work just before ``Closed`` is queued."""

    def _classify(self, code: int, reason: str) -> tuple[str | None, bool]:
        """``(error_code, retryable)`` for the server's close frame."""
        return classify_close(code, reason)

    # ------------------------------------------------------------------ internals: output

    def _send_text(self, text: str, *, now: float, kind: str = "") -> None:
        """Queue a control message; ``kind`` (``"KeepAlive"``, ...) is for the stats."""
        self._out.append(self._ws.send(TextMessage(data=text)))
        self._last_sent = now
        self._stats.on_text_sent(kind, now)

    def _send_ping(self, now: float) -> None:
        self._ping_count += 1
        payload = b"dgproto-%d" % self._ping_count
        self._out.append(self._ws.send(Ping(payload=payload)))
        interval = self.config.ping_interval
        self._ping_at = None if interval is None else now + interval
        if self.config.ping_timeout is not None:
            self._pings.append((payload, now))

    def _pong_deadline(self) -> float | None:
        """The oldest unanswered ping must be answered ``ping_timeout`` after it went out."""
        timeout = self.config.ping_timeout
        if not self._pings or timeout is None:
            return None
        return self._pings[0][1] + timeout

    # ------------------------------------------------------------------ internals: input

    def _process(self, now: float) -> None:
        """The handshake's events; at the ``101``, the frames go to ``InboundParser``."""
        handlers = self._dispatch
        for event in self._ws.events():
            handlers.get(type(event), _ignore)(event, now)
            if self._state is State.CLOSED:
                return
            if self._inbound is not None:  # accepted: what came with the 101 is frames
                rest = take_after_handshake(self._ws)
                if rest:
                    self._receive_frames(self._inbound.feed(rest))
                return

    def _receive_frames(self, frames: list[tuple[int, Any]]) -> None:
        """Act on the parser's messages and controls, in order, until the connection ends."""
        for kind, value in frames:
            if kind == TEXT:  # decoded, queued, then the endpoint's bookkeeping
                event = self._decode(value, self._loads)
                view = self._tracking.view
                if view is not None:  # a reconnecting stream's socket: onto its clock
                    event = view(event)
                self._events.append(event)
                self._on_message(event)
            elif kind == BINARY:
                self._events.append(decode_binary(value))
            elif kind == PING:
                # Only while our side is open: we send our close solely on the way to
                # CLOSED, and input stops being processed there.
                self._out.append(self._ws.send(Pong(payload=value)))
            elif kind == PONG:
                self._on_pong(value)
            elif kind == CLOSE:
                self._on_close(*value)
            else:  # ERROR: the peer broke the protocol, or a message was too big
                self._protocol_error(value[1], code=value[0])
            if self._state is State.CLOSED:
                return

    def _on_pong(self, payload: bytes) -> None:
        # A pong answers its ping and, as pongs come in order, every earlier one too
        # (RFC 6455 lets a peer answer only the latest ping of a burst).
        payloads = [p for p, _ in self._pings]
        if payload in payloads:
            for _ in range(payloads.index(payload) + 1):
                del self._pings[0]

    def _on_reject(self, event: RejectConnection, now: float) -> None:
        self._rejection = _Rejection(
            status_code=event.status_code, headers=_decode_headers(event.headers)
        )
        if not event.has_body:
            self._finish_rejection()

    def _on_accept(self, event: AcceptConnection, now: float) -> None:
        self._state = next_state(self._state, Input.HANDSHAKE_ACCEPTED, self._table)
        headers = _decode_headers(event.extra_headers)
        self._request_id = _header(headers, "dg-request-id")
        self._open_deadline = None
        self._last_sent = now
        self._inbound = InboundParser(self.config.max_message_size)
        if self.config.ping_interval is not None:
            self._ping_at = now + self.config.ping_interval
        self._stats.on_open(now)
        self._events.append(
            Connected(request_id=self._request_id, headers=headers, subprotocol=event.subprotocol)
        )

    def _on_reject_data(self, event: RejectData, now: float) -> None:
        rejection = self._rejection
        assert rejection is not None  # wsproto sends RejectData only after RejectConnection
        room = self.config.max_message_size - len(rejection.body)
        rejection.body += event.data[: max(room, 0)]
        if event.body_finished:
            self._finish_rejection()

    def _finish_rejection(self) -> None:
        rejection = self._rejection
        assert rejection is not None
        self._rejection = None
        body = bytes(rejection.body)
        fields: Mapping[str, Any] = {}
        try:
            parsed = json.loads(body)
        except (ValueError, RecursionError):  # RecursionError: nesting thousands deep
            parsed = None
        if isinstance(parsed, dict):
            fields = parsed
        headers = rejection.headers
        rejected = HandshakeRejected(
            status_code=rejection.status_code,
            request_id=_header(headers, "dg-request-id") or _str_or_none(fields.get("request_id")),
            dg_error=_header(headers, "dg-error"),
            err_code=_str_or_none(
                fields.get("err_code") or fields.get("error_code") or fields.get("category")
            ),
            err_msg=_str_or_none(fields.get("err_msg") or fields.get("message")),
            headers=headers,
            body=body,
        )
        self._request_id = rejected.request_id
        self._events.append(rejected)
        self._finish(
            Input.HANDSHAKE_REJECTED,
            code=1006,
            reason=f"handshake rejected with HTTP {rejected.status_code}",
            initiator="server",
            retryable=rejected.retryable,
        )

    def _on_close(self, code: int, reason: str) -> None:
        # Echo the peer's close frame (1005, no code, echoes as an empty close frame).
        self._out.append(self._ws.send(CloseConnection(code=code, reason=reason)))
        error_code, retryable = self._classify(code, reason)
        self._finish(
            Input.REMOTE_CLOSE,
            code=code,
            reason=reason,
            initiator="server",
            error_code=error_code,
            clean=True,
            retryable=retryable,
        )

    def _protocol_error(self, message: str, *, code: int) -> None:
        self._finish(
            Input.PROTOCOL_ERROR,
            code=code,
            reason=message,
            initiator="client",
            error=RemoteProtocolError(message, close_code=code),
            send_close=code,
        )

    # ------------------------------------------------------------------ the end

    def _finish(
        self,
        event: Input,
        *,
        code: int,
        reason: str,
        initiator: CloseInitiator,
        error_code: str | None = None,
        clean: bool = False,
        retryable: bool = False,
        error: RemoteProtocolError | None = None,
        send_close: int | None = None,
    ) -> None:
        """Move to CLOSED: send our close frame if asked, settle pending work, emit ``Closed``."""
        self._state = next_state(self._state, event, self._table)
        if send_close is not None and self._ws.state is ConnectionState.OPEN:
            # A close frame's reason must fit in 123 bytes of UTF-8.
            short = reason.encode()[:120].decode(errors="ignore")
            self._out.append(self._ws.send(CloseConnection(code=send_close, reason=short)))
        self._on_finishing()
        self._inbound = None
        self._open_deadline = self._close_deadline = None
        self._ping_at = None
        self._pings.clear()
        self._last_sent = None
        self._closed = Closed(
            code=int(code),  # wsproto hands out CloseReason members for known codes
            reason=reason,
            initiator=initiator,
            error_code=error_code,
            clean=clean,
            retryable=retryable,
            error=error,
            metadata=self._metadata,
        )
        self._stats.on_close(self._now)
        self._events.append(self._closed)
