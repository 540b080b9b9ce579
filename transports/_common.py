"""What the three client adapters share: everything about a stream that is not I/O.

The asyncio, trio and blocking adapters differ only in how they wait (futures, trio
events, a condition variable) and how they touch the socket. Everything else lives here
once: parsing the URL, choosing the credentials, building the ``ListenConnection``, the
event buffer and its backpressure policy, matching ``finalize()`` calls to their
``FinalizeComplete``, deciding what a failed opening handshake raises, and the DEBUG wire
trace with the secret redacted.

**Event buffer policy** (``EventBuffer``), the same in every adapter:

* Events wait for the app in a FIFO. Nothing is ever dropped.
* Once ``EVENT_QUEUE_SIZE`` events are waiting, or the socket bytes behind the waiting
  events reach ``EVENT_QUEUE_BYTES`` (4 MiB), the adapter stops reading the socket (TCP
  backpressure then slows the server) until the app has taken the queue down to
  ``EVENT_QUEUE_RESUME`` events and ``EVENT_QUEUE_RESUME_BYTES``. The byte bound is what
  holds for large messages: 256 events of almost 1 MiB each once cost 259 MB. Timers
  keep running meanwhile, so KeepAlive still goes out and ``finalize_timeout`` /
  ``close_timeout`` still fire. One socket read can overshoot the limits by the events
  in at most ``READ_SIZE`` bytes (plus a message still arriving, at most
  ``Config.max_message_size``), so memory stays bounded even for an app that never
  iterates.
* While the app waits in ``finalize()`` or ``close()`` the limit is lifted: those waits
  need the server's replies, are bounded by ``Config.finalize_timeout`` /
  ``Config.close_timeout``, and what the server sends meanwhile is finite (a flush and
  a Metadata). Lifting it is what lets ``close()`` deliver every final even to an app
  that only starts iterating after ``close()`` returned.
"""

from __future__ import annotations

import logging
import os
import re
import ssl
import urllib.parse
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from typing import Generic, TypedDict, TypeVar

import attrs

from dgproto._config import Config
from dgproto._connection import ListenConnection
from dgproto._errors import ConnectionClosedError, HandshakeError
from dgproto._events import (
    Closed,
    Connected,
    Event,
    FinalizeComplete,
    HandshakeRejected,
    Metadata,
)
from dgproto._flux import FluxConnection
from dgproto._flux_options import FluxOptions
from dgproto._options import Auth, LiveOptions, redact_query
from dgproto._session import StreamConnection, Tracking
from dgproto._state import State
from dgproto._stats import StreamStats

from ._proxy import FROM_ENV, FromEnv, Proxy, select_proxy
from ._record import READ_FLUSH, RecordSink, RecordTarget, SessionRecorder

__all__ = [
    "API_KEY_ENV",
    "CLOSE_FLUSH_TIMEOUT",
    "DEFAULT_URL",
    "FLUX_URL",
    "EVENT_QUEUE_BYTES",
    "EVENT_QUEUE_RESUME",
    "EVENT_QUEUE_RESUME_BYTES",
    "EVENT_QUEUE_SIZE",
    "READ_SIZE",
    "ConnectArgs",
    "Endpoint",
    "EventBuffer",
    "FinalizeSlot",
    "FluxState",
    "ListenMetadata",
    "Plan",
    "StreamState",
    "WireTrace",
    "check_sendable",
    "make_plan",
    "open_failure",
    "parse_url",
    "redact_request",
    "resolve_auth",
]

DEFAULT_URL = "wss://api.deepgram.com/v1/listen"

#: Where ``connect(FluxOptions(...))`` goes without ``url=``.
FLUX_URL = "wss://api.deepgram.com/v2/listen"

#: Any connection the adapters pump (``ListenConnection`` or ``FluxConnection``).
C = TypeVar("C", bound=StreamConnection)

#: Read when no API key argument is given (only ever sent over ``wss://``).
API_KEY_ENV = "DEEPGRAM_API_KEY"

#: Bytes asked of the socket per read.
READ_SIZE = 64 * 1024

#: Events waiting for the app before the adapter stops reading the socket.
EVENT_QUEUE_SIZE = 256

#: Reading resumes once the app has taken the queue down to this many events.
EVENT_QUEUE_RESUME = EVENT_QUEUE_SIZE // 2

#: Socket bytes behind the waiting events before the adapter stops reading.
EVENT_QUEUE_BYTES = 4 << 20

#: ... and reading resumes once at most this many bytes are behind them.
EVENT_QUEUE_RESUME_BYTES = EVENT_QUEUE_BYTES // 2

#: Once the stream is over, our last frame (the close frame) gets this long to reach the
#: socket before the socket is closed regardless: a peer that stopped reading cannot hold
#: a ``with`` block open.
CLOSE_FLUSH_TIMEOUT = 1.0

_DEFAULT_PORTS = {"ws": 80, "wss": 443}


# --------------------------------------------------------------------------- where to


@attrs.frozen(kw_only=True)
class Endpoint:
    """A parsed ``ws://`` or ``wss://`` URL: where to connect and what to ask for."""

    host: str
    port: int
    #: Path plus query, as sent in the request line (the core appends the options).
    target: str = attrs.field(repr=lambda target: repr(redact_query(target)))
    tls: bool

    @property
    def host_header(self) -> str:
        """The ``Host`` header: the port only when it is not the scheme's default."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        default = 443 if self.tls else 80
        return host if self.port == default else f"{host}:{self.port}"


def parse_url(url: str, default_path: str = "/v1/listen") -> Endpoint:
    """Split ``url`` into host, port, request target and whether to use TLS.

    A URL without a path gets ``default_path`` (Deepgram's ``/v1/listen``, or
    ``/v2/listen`` for Flux), so ``ws://localhost:8080`` works for a self-hosted server.
    Credentials in the URL are refused: they would end up in logs and tracebacks (pass
    ``api_key=`` instead). Error messages never echo the URL.
    """
    if not isinstance(url, str):
        raise ValueError(f"url must be a str, got {type(url).__name__}")
    parts = urllib.parse.urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS:
        raise ValueError(f"url scheme must be ws or wss, got {scheme!r}")
    if "@" in parts.netloc:
        raise ValueError("url must not carry credentials (user:password@); pass api_key=")
    host = parts.hostname
    if not host:
        raise ValueError("url has no host")
    port = parts.port  # raises ValueError for a port out of range or not a number
    target = parts.path or default_path
    if parts.query:
        target += "?" + parts.query
    return Endpoint(
        host=host,
        port=_DEFAULT_PORTS[scheme] if port is None else port,
        target=target,
        tls=scheme == "wss",
    )


def resolve_auth(
    *,
    api_key: str | None,
    access_token: str | None,
    auth: Auth | None,
    tls: bool,
    environ: Mapping[str, str] | None = None,
) -> Auth:
    """Pick the credentials: at most one of the three arguments, else the environment.

    ``api_key`` becomes ``Auth.token`` and ``access_token`` ``Auth.bearer``. With none
    given, ``DEEPGRAM_API_KEY`` is used when set, but only for a ``wss://`` URL: a key
    the caller did not pass explicitly is never sent in clear text to a ``ws://`` server
    (the emulator and self-hosted servers get ``Auth.none()``).
    """
    given = [
        name
        for name, value in (("api_key", api_key), ("access_token", access_token), ("auth", auth))
        if value is not None
    ]
    if len(given) > 1:
        raise ValueError(
            f"pass at most one of api_key, access_token, auth (got {', '.join(given)})"
        )
    if api_key is not None:
        return Auth.token(api_key)
    if access_token is not None:
        return Auth.bearer(access_token)
    if auth is not None:
        if not isinstance(auth, Auth):
            raise ValueError(f"auth must be an Auth, got {type(auth).__name__}")
        return auth
    key = (os.environ if environ is None else environ).get(API_KEY_ENV)
    if key and tls:
        return Auth.token(key)
    return Auth.none()


def tls_context(endpoint: Endpoint, ssl_context: ssl.SSLContext | None) -> ssl.SSLContext | None:
    """The TLS context for ``endpoint``: the caller's, or one verifying with the system store."""
    if not endpoint.tls:
        if ssl_context is not None:
            raise ValueError("ssl_context was given for a ws:// url; use wss:// for TLS")
        return None
    if ssl_context is None:
        return ssl.create_default_context()
    if not isinstance(ssl_context, ssl.SSLContext):
        raise ValueError(f"ssl_context must be an ssl.SSLContext, got {type(ssl_context).__name__}")
    return ssl_context


@attrs.frozen(kw_only=True)
class Plan:
    """Everything ``connect`` decided before touching the network."""

    endpoint: Endpoint
    conn: ListenConnection | FluxConnection
    ssl_context: ssl.SSLContext | None
    #: The HTTP CONNECT proxy to tunnel through, if any.
    proxy: Proxy | None = None
    #: This socket's recorder (``connect(..., record=)``), handed to the ``WireTrace``.
    recorder: SessionRecorder | None = None


class ConnectArgs(TypedDict, total=False):
    """``connect``'s keyword arguments other than ``reconnect`` (for its typed overloads)."""

    api_key: str | None
    access_token: str | None
    auth: Auth | None
    url: str | None
    config: Config | None
    ssl_context: ssl.SSLContext | None
    extra_headers: Sequence[tuple[str, str]]
    proxy: str | FromEnv | None
    record: RecordTarget | None


def make_plan(
    options: LiveOptions | FluxOptions | None,
    *,
    api_key: str | None,
    access_token: str | None,
    auth: Auth | None,
    url: str | None,
    config: Config | None,
    ssl_context: ssl.SSLContext | None,
    extra_headers: Sequence[tuple[str, str]],
    proxy: str | FromEnv | None = FROM_ENV,
    record: RecordSink | None = None,
    tracking: Tracking | None = None,
) -> Plan:
    """Validate ``connect``'s arguments and build the (not yet connected) core.

    ``FluxOptions`` make a ``FluxConnection`` for ``/v2/listen`` (``FLUX_URL`` unless
    ``url`` says otherwise); anything else a ``ListenConnection`` for ``/v1/listen``.

    ``record`` (from ``record_sink``) gives the socket a recorder that knows every
    credential in play, so it can scrub them wherever they appear. ``tracking``: a
    reconnecting stream's, shared by the cores of all its sockets (the stats add up).
    """
    flux = isinstance(options, FluxOptions)
    if url is None:
        url = FLUX_URL if flux else DEFAULT_URL
    endpoint = parse_url(url, "/v2/listen" if flux else "/v1/listen")
    tunnel = select_proxy(proxy, host=endpoint.host, tls=endpoint.tls)
    context = tls_context(endpoint, ssl_context)
    credentials = resolve_auth(
        api_key=api_key, access_token=access_token, auth=auth, tls=endpoint.tls
    )
    conn: ListenConnection | FluxConnection
    if isinstance(options, FluxOptions):
        conn = FluxConnection(
            options=options,
            auth=credentials,
            host=endpoint.host_header,
            path=endpoint.target,
            config=config,
            extra_headers=extra_headers,
            tracking=tracking,
        )
    else:
        conn = ListenConnection(
            options=options,
            auth=credentials,
            host=endpoint.host_header,
            path=endpoint.target,
            config=config,
            extra_headers=extra_headers,
            tracking=tracking,
        )
    recorder = None
    if record is not None:
        recorder = record.session(secrets=_secrets(credentials, tunnel))
    return Plan(endpoint=endpoint, conn=conn, ssl_context=context, proxy=tunnel, recorder=recorder)


def _secrets(credentials: Auth, proxy: Proxy | None) -> list[str]:
    """Every credential this socket knows, as the recorder must scrub them."""
    out = [value.decode("latin-1").partition(" ")[2] for _, value in credentials.headers()]
    out += credentials.subprotocols()[1:]
    if proxy is not None and proxy.authorization:
        out += [proxy.authorization, proxy.authorization.partition(" ")[2]]
    return [secret for secret in out if secret]


# --------------------------------------------------------------------------- events


@attrs.define
class FinalizeSlot:
    """Where one ``finalize()`` call's ``FinalizeComplete`` lands."""

    result: FinalizeComplete | None = None


class EventBuffer:
    """Events on their way to the app, plus what the adapters wait on.

    Not thread-safe and not awaitable: each adapter guards it with its own lock (or
    none, on one event loop) and wakes its own waiters after ``push``/``pop``.
    """

    def __init__(
        self,
        *,
        limit: int | None = None,
        resume: int | None = None,
        limit_bytes: int | None = None,
        resume_bytes: int | None = None,
    ) -> None:
        self._events: deque[Event] = deque()
        #: socket bytes behind each queued event, parallel to ``_events``
        self._sizes: deque[int] = deque()
        self._bytes = 0
        self._finalizes: list[FinalizeSlot] = []  # a few at most: no deque
        self._limit = EVENT_QUEUE_SIZE if limit is None else limit
        self._resume = EVENT_QUEUE_RESUME if resume is None else resume
        self._limit_bytes = EVENT_QUEUE_BYTES if limit_bytes is None else limit_bytes
        self._resume_bytes = EVENT_QUEUE_RESUME_BYTES if resume_bytes is None else resume_bytes
        #: the core whose ``bytes_received`` was last read, and that reading
        self._source: StreamConnection | None = None
        self._seen = 0
        self._lifts = 0
        self._paused = False
        self._finished = False
        self.connected: Connected | None = None
        self.rejected: HandshakeRejected | None = None
        self.closed: Closed | None = None

    def __len__(self) -> int:
        return len(self._events)

    @property
    def queued_bytes(self) -> int:
        """Socket bytes behind the events waiting for the app."""
        return self._bytes

    def push(self, event: Event, size: int = 0) -> None:
        """Queue ``event`` (``size`` socket bytes behind it) and note what waiters care about.

        The core emits exactly one ``FinalizeComplete`` per ``finalize()``, in call order,
        so the oldest slot is the one this completion answers.
        """
        self._events.append(event)
        self._sizes.append(size)
        self._bytes += size
        if isinstance(event, FinalizeComplete):
            if self._finalizes:
                self._finalizes.pop(0).result = event
        elif isinstance(event, Closed):
            self.closed = event
        elif isinstance(event, Connected):
            self.connected = event
        elif isinstance(event, HandshakeRejected):
            self.rejected = event

    def collect(self, conn: StreamConnection, trace: WireTrace) -> bool:
        """Move every event the core has queued into the buffer; True if there were any.

        The bytes read since the last collect are charged to the last event moved: a
        message's bytes may span reads, so until an event comes they wait uncharged (at
        most one message, bounded by ``Config.max_message_size``).
        """
        if conn is not self._source:  # a new core (a reconnect) counts from zero
            self._source, self._seen = conn, 0
        moved = False
        while (event := conn.next_event()) is not None:
            trace.event(event)
            self.push(event)
            moved = True
        if moved:
            received = conn.bytes_received
            size = received - self._seen
            self._seen = received
            self._sizes[-1] += size
            self._bytes += size
        return moved

    def pop(self) -> Event | None:
        """The next event for the app, or ``None`` when none is waiting."""
        if not self._events:
            return None
        event = self._events.popleft()
        self._bytes -= self._sizes.popleft()
        if isinstance(event, Closed):
            self._finished = True
        return event

    @property
    def finished(self) -> bool:
        """True once the app has been handed ``Closed``: iteration is over."""
        return self._finished

    def expect_finalize(self) -> FinalizeSlot:
        """Register a ``finalize()`` call; call it right after ``conn.finalize()``."""
        slot = FinalizeSlot()
        self._finalizes.append(slot)
        return slot

    def lift(self) -> None:
        """Suspend the queue limit while the app waits in ``finalize()`` or ``close()``."""
        self._lifts += 1

    def unlift(self) -> None:
        self._lifts -= 1

    def reading_allowed(self) -> bool:
        """Whether the adapter may read the socket now (the policy in the module docs)."""
        if self.closed is not None:
            return False
        if self._lifts:
            self._paused = False
        elif self._paused:
            self._paused = len(self._events) > self._resume or self._bytes > self._resume_bytes
        else:
            self._paused = len(self._events) >= self._limit or self._bytes >= self._limit_bytes
        return not self._paused


def open_failure(buffer: EventBuffer) -> Exception:
    """What ``connect`` raises when the stream closed before it opened.

    ``HandshakeError`` for an HTTP refusal, ``TimeoutError`` when ``open_timeout``
    passed, else ``ConnectionClosedError`` carrying the ``Closed`` (the peer hung up or
    broke the protocol during the upgrade).
    """
    if buffer.rejected is not None:
        return HandshakeError(buffer.rejected)
    closed = buffer.closed
    assert closed is not None
    if closed.initiator == "timeout":
        return TimeoutError(f"the opening handshake timed out ({closed.reason})")
    return ConnectionClosedError(closed)


def check_sendable(conn: StreamConnection) -> None:
    """Raise ``ConnectionClosedError`` (carrying the ``Closed``) once the stream is over."""
    closed = conn.closed
    if closed is not None:
        raise ConnectionClosedError(closed)


class StreamState(Generic[C]):
    """The read-only attributes every adapter's stream exposes, read from the core.

    Generic in the core it reads (``ListenConnection`` or ``FluxConnection``), so each
    endpoint's stream calls its own commands on a typed ``_conn``.
    """

    def __init__(self, conn: C) -> None:
        self._conn = conn

    def __repr__(self) -> str:
        return (
            f"<{type(self).__module__}.{type(self).__name__} {getattr(self._conn, 'host', '?')}"
            f" state={self._conn.state.name} request_id={self._conn.request_id}>"
        )

    @property
    def request_id(self) -> str | None:
        """Deepgram's ``dg-request-id`` for this stream: quote it in support requests."""
        return self._conn.request_id

    @property
    def request_ids(self) -> list[str | None]:
        """Every socket's request id: this one's (a reconnecting stream has several)."""
        return [self._conn.request_id]

    @property
    def reconnects(self) -> int:
        """Always 0: a stream without ``reconnect=`` ends with its socket."""
        return 0

    @property
    def stats(self) -> StreamStats:
        """The stream's figures so far (``dgproto.StreamStats``), from the core."""
        return self._conn.stats

    @property
    def state(self) -> State:
        """``OPEN`` while streaming, ``CLOSING`` after ``close()`` began, then ``CLOSED``."""
        return self._conn.state

    @property
    def audio_seconds_sent(self) -> float | None:
        """Seconds of audio sent so far (``None`` for encodings without a fixed rate)."""
        return self._conn.audio_seconds_sent

    @property
    def closed(self) -> Closed | None:
        """The ``Closed`` event once the stream is over, else ``None``."""
        return self._conn.closed


class ListenMetadata:
    """``/v1/listen`` streams' ``options`` and ``metadata`` (Flux sends no Metadata)."""

    _conn: ListenConnection

    @property
    def options(self) -> LiveOptions:
        """The options the stream was opened with."""
        return self._conn.options

    @property
    def metadata(self) -> Metadata | None:
        """Deepgram's session ``Metadata``, once it arrived (normally during ``close()``)."""
        return self._conn.metadata


class FluxState:
    """Flux streams' ``options``."""

    _conn: FluxConnection

    @property
    def options(self) -> FluxOptions:
        """The options the stream was opened with."""
        return self._conn.options


# --------------------------------------------------------------------------- logging

_SECRET_HEADER = re.compile(rb"(?im)^(authorization|sec-websocket-protocol)[ \t]*:[^\n]*")


def _http_head(data: bytes | bytearray) -> bytes:
    return bytes(data).split(b"\r\n\r\n", 1)[0].replace(b"\r\n", b"\n")


def redact_request(data: bytes | bytearray) -> str:
    """The head of an HTTP upgrade request with every credential header value masked,
    and the ``callback`` URL's credentials (``user:password@``, query values) too."""
    head = _SECRET_HEADER.sub(lambda m: m.group(1) + b": <redacted>", _http_head(data))
    line, newline, rest = head.decode("latin-1").partition("\n")
    words = line.split(" ")  # GET <target> HTTP/1.1
    if len(words) == 3:
        words[1] = redact_query(words[1])
    return " ".join(words) + newline + rest


def _no_clock() -> float:
    """The clock of a trace that records nothing."""
    return 0.0


class WireTrace:
    """The DEBUG wire trace: handshake heads (secrets redacted), byte counts, event types.

    Audio and transcripts are not logged, only their sizes and kinds. Adds no handler:
    configure ``logging.getLogger("dgproto.transports")`` to see it.
    """

    def __init__(self, logger: logging.Logger) -> None:
        self.logger = logger
        self._recorder: SessionRecorder | None = None
        self._clock: Callable[[], float] = _no_clock

    def record(self, recorder: SessionRecorder | None, clock: Callable[[], float]) -> None:
        """Also feed the bytes to ``recorder`` (``connect(..., record=)``), stamped with
        ``clock`` (the adapter's, the one it passes the core). Call ``close_recording``
        when the socket is done."""
        self._recorder = recorder
        self._clock = clock

    def close_recording(self) -> None:
        """The socket is done: the recorder writes what it holds and closes its files."""
        if self._recorder is not None:
            self._recorder.close(self._clock())

    def sent(self, data: bytes, now: float | None = None) -> None:
        """Bytes the core gave to write (``now``: the adapter's clock when it made them,
        if it has it at hand; else the trace reads the clock)."""
        recorder = self._recorder
        if recorder is not None:
            writes = recorder.writes
            if (
                writes is not None and len(data) == recorder.size and data.startswith(recorder.head)
            ):  # SessionRecorder.sent's hot path, inlined: one audio frame like the last
                writes.append((self._clock() if now is None else now, data))
                if len(writes) >= recorder.batch:
                    recorder.flush()
            else:
                recorder.sent(data, self._clock() if now is None else now)
        if not self.logger.isEnabledFor(logging.DEBUG):
            return
        if data.startswith(b"GET "):
            self.logger.debug("-> upgrade request\n%s", redact_request(data))
        else:
            self.logger.debug("-> %d bytes", len(data))

    def received(self, data: bytes | bytearray) -> None:
        recorder = self._recorder
        if recorder is not None:
            writes = recorder.writes
            if writes is not None and recorder.raw:  # SessionRecorder.received, inlined
                writes.append((self._clock(), bytes(data), None))
                recorder.read_bytes += len(data)
                if recorder.read_bytes >= READ_FLUSH or len(writes) >= recorder.batch:
                    recorder.flush()
            else:
                recorder.received(data, self._clock())
        if not self.logger.isEnabledFor(logging.DEBUG):
            return
        if data.startswith(b"HTTP/"):
            self.logger.debug("<- upgrade response\n%s", _http_head(data).decode("latin-1"))
        else:
            self.logger.debug("<- %d bytes", len(data))

    def event(self, event: Event) -> None:
        if not self.logger.isEnabledFor(logging.DEBUG):
            return
        if isinstance(event, Connected):
            self.logger.debug("event Connected request_id=%s", event.request_id)
        elif isinstance(event, (Closed, FinalizeComplete)):
            self.logger.debug("event %r", event)
        else:
            self.logger.debug("event %s", type(event).__name__)
