"""``EmulatorConnection``: the server side of ``/v1/listen`` and Flux's ``/v2/listen``,
sans-I/O, on wsproto.

It is driven exactly like the client core: feed it bytes with ``receive_data(data,
now=)``, write out ``data_to_send()``, re-arm ``get_timer()`` and call
``handle_timer(now=)`` when it fires, and close the socket once
``should_close_transport`` is true. It never reads a clock: every timed behaviour (the
~10 s inactivity close, slow replies, scripted drops, pings) runs on the ``now`` you pass,
and transcripts run on the *audio* clock (seconds of audio received), as Deepgram's do.

It never raises for anything a client sends: bad HTTP gets a 400, bad frames a close
frame with the right code, bad JSON a ``SchemaError`` message, and the session goes on
wherever Deepgram's does.

The path picks the endpoint at the handshake. Everything about carrying a session
(frames, faults, timers, the outbox) is shared; what a Flux session *says* comes from
``_flux.FluxEndpoint``, and every message it queues gets Flux's ``sequence_id``.

Not thread-safe: a server adapter serialises its calls, one connection per socket.
"""

from __future__ import annotations

import enum
import hashlib
import json
import math
import random
import uuid
from collections import deque
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from typing import Any

import attrs
from wsproto import ConnectionType, WSConnection
from wsproto.connection import ConnectionState
from wsproto.events import (
    AcceptConnection,
    BytesMessage,
    CloseConnection,
    Ping,
    RejectConnection,
    RejectData,
    Request,
    TextMessage,
)
from wsproto.utilities import RemoteProtocolError as WsRemoteProtocolError

from dgproto._flux_options import FluxOptions
from dgproto._fragments import too_fragmented
from dgproto._options import LiveOptions

from . import _wire as wire
from ._config import EmulatorConfig
from ._control import check_configure, numeral
from ._faults import FaultPlan
from ._flux import FATAL_CLOSE_CODE, Fatal, FluxEndpoint
from ._handshake import Accept, evaluate
from ._pcm import PcmDecoder
from ._recognizer import RecognizedWord
from ._session import (
    ChannelTranscriber,
    Output,
    SegmenterSettings,
    SpeechStart,
    UtteranceGap,
    Window,
)

__all__ = [
    "ClientMessage",
    "EmulatorConnection",
    "EmulatorState",
    "NET0001_REASON",
]

#: Deepgram's verbatim close reason for the inactivity timeout (close code 1011).
NET0001_REASON = (
    "Deepgram did not receive audio data or a text message within the timeout window. "
    "See https://dpgr.am/net0001"
)

_MODEL_UUID = str(uuid.uuid5(uuid.NAMESPACE_URL, "https://github.com/dgproto/emulator-tone"))
#: Said once when a stream comes without ``encoding=`` (mp3, ogg, flac, webm, m4a, ...).
CONTAINER_WARNING = (
    "The dgproto emulator cannot transcribe encoded or container audio (no encoding= was "
    "given): it counted the bytes and returns no transcript. It understands raw tone-coded "
    "audio from `dgproto synth`."
)
#: Seconds of loud audio with no word recognized before saying ``UNDECODED_WARNING``.
UNDECODED_SECONDS = 2.0
UNDECODED_WARNING = (
    "The dgproto emulator heard sound but no word it can decode: it only understands "
    "tone-coded audio from `dgproto synth` (or dgproto.emulator.synthesize), not real "
    "speech, so its transcripts here are empty."
)
_INJECTED_UNKNOWN = wire.dumps(
    {"type": "EmulatorUnknown", "description": "dgproto fault injection: an unknown type"}
)
_INJECTED_MALFORMED = '{"type":"Results","channel_index":[0,'


class EmulatorState(enum.Enum):
    """Where a session is."""

    HANDSHAKE = "handshake"  #: waiting for the upgrade request
    OPEN = "open"  #: streaming
    CLOSING = "closing"  #: the server decided to close; its last messages may be queued
    CLOSED = "closed"  #: nothing more will happen; close the transport


@attrs.frozen(kw_only=True)
class ClientMessage:
    """One text message the client sent, as the emulator saw it."""

    text: str
    #: The decoded JSON, or ``None`` when it was not JSON.
    message: Any
    #: Its ``type`` when it had a str one.
    type: str | None
    #: Seconds of audio received (per channel) when it arrived: where it sits in the stream.
    audio_position: float
    #: The ``now`` it arrived at.
    at: float


@attrs.frozen
class _Text:
    text: str
    release_at: float


@attrs.frozen
class _Close:
    code: int
    reason: str
    release_at: float


class EmulatorConnection:
    """One emulated Deepgram ``/v1/listen`` session (see the module docstring).

    ``rng`` makes request ids and ping payloads reproducible (default: a fresh
    ``random.Random()``). ``wall_time`` is the session start as a Unix time, only used
    for Metadata's ``created`` (default 0: "1970-01-01T00:00:00.000Z"); the emulator reads
    no clock. ``now`` starts the handshake timer; without it the timer starts at the
    first call. Introspection for tests: ``request_id``, ``options``, ``subprotocol``,
    ``received_text_messages`` (a bounded log), ``audio_bytes_received``,
    ``audio_seconds_received``, ``messages_sent``, ``close_sent``, ``close_received``,
    ``path``, ``http_status``,
    ``features`` (formatting in force, after any Configure) and ``keyterms`` (from the
    last Configure). Audio is never kept, only counted and hashed.

    Faults come from, in order of precedence: the client's ``x-dgproto-faults`` header
    (``EmulatorConfig.fault_header``), the ``faults`` argument, ``EmulatorConfig.faults``.
    """

    def __init__(
        self,
        *,
        config: EmulatorConfig | None = None,
        faults: FaultPlan | None = None,
        rng: random.Random | None = None,
        wall_time: float = 0.0,
        now: float | None = None,
    ) -> None:
        self.config = config if config is not None else EmulatorConfig()
        self.faults = faults if faults is not None else self.config.faults
        self._rng = rng if rng is not None else random.Random()
        self.request_id = str(uuid.UUID(int=self._rng.getrandbits(128), version=4))
        self.created = _rfc3339(wall_time)
        self.state = EmulatorState.HANDSHAKE
        self.options: LiveOptions | FluxOptions | None = None
        #: The Flux endpoint, for a ``/v2/listen`` session.
        self.flux: FluxEndpoint | None = None
        self._sequence = 0
        self.subprotocol: str | None = None
        self.audio_bytes_received = 0
        self.messages_sent = 0
        self.close_sent: tuple[int, str] | None = None
        #: The request's path (never its query) and the HTTP status answered: for logs.
        self.path: str | None = None
        self.http_status: int | None = None
        #: What the emulator could not do with this stream, each said once: in the
        #: Metadata's ``warnings`` and the server's log line.
        self.warnings: list[str] = []
        self.close_received: tuple[int, str] | None = None
        self._log: deque[ClientMessage] = deque(maxlen=self.config.message_log_limit)
        self._ws = WSConnection(ConnectionType.SERVER)
        self._out = bytearray()
        self._outbox: deque[_Text | _Close] = deque()
        self._last_release = -math.inf
        self._transport_closed = False
        self._stalled = False
        self._clock_started = False
        self._handshake_deadline: float | None = None
        self._idle_deadline: float | None = None
        self._close_deadline: float | None = None
        self._drop_deadline: float | None = None
        self._stall_deadline: float | None = None
        self._fault_close_deadline: float | None = None
        self._ping_deadline: float | None = None
        self._text_parts: list[str] = []
        self._text_size = 0
        self._text_frames = 0
        self._binary_size = 0
        self._binary_frames = 0
        self._sha256 = hashlib.sha256()
        self._pcm: PcmDecoder | None = None
        self._sample_rate = 1
        self._transcribers: dict[int, ChannelTranscriber] = {}
        self._total_channels = 1
        self.features: dict[str, bool] = {}
        self.keyterms: tuple[str, ...] | None = None
        if now is not None:
            self._start_clock(now)

    # ------------------------------------------------------------------ public API

    @property
    def should_close_transport(self) -> bool:
        """Write out ``data_to_send()``, then close the socket."""
        return self._transport_closed

    @property
    def received_text_messages(self) -> list[ClientMessage]:
        """The client's text messages, oldest first (the last ``message_log_limit``)."""
        return list(self._log)

    @property
    def audio_seconds_received(self) -> float:
        """Seconds of audio received (complete frames, per channel): the audio clock."""
        if self._pcm is None:
            return 0.0
        return self._pcm.frames_decoded / self._sample_rate

    def receive_data(self, data: bytes, *, now: float) -> None:
        """Bytes from the client. Never raises for anything the client sent."""
        self._start_clock(now)
        self._run_due(now)
        if self._transport_closed or self._stalled or not data:
            return
        try:
            self._ws.receive_data(bytes(data))
        except (WsRemoteProtocolError, UnicodeError) as exc:
            # Only the HTTP upgrade raises (frame errors become close events); a header
            # wsproto cannot decode (a non-ASCII Host or subprotocol) raises UnicodeError.
            self._refuse_bad_request(exc)
            return
        self._process_events(now)
        self._run_due(now)

    def receive_eof(self, *, now: float) -> None:
        """The client closed its side of the socket: nothing more will arrive."""
        self._start_clock(now)
        self._run_due(now)
        self._close_transport()

    def data_to_send(self) -> bytes:
        """Bytes to write to the client (``b""`` when there are none)."""
        data = bytes(self._out)
        self._out.clear()
        return data

    def get_timer(self) -> float | None:
        """The earliest deadline to call ``handle_timer`` at, or ``None``."""
        deadlines = [when for when, _ in self._deadlines()]
        return min(deadlines) if deadlines else None

    def handle_timer(self, *, now: float) -> None:
        """Act on every deadline up to ``now``, in deadline order; early calls do nothing."""
        self._start_clock(now)
        self._run_due(now)

    # ------------------------------------------------------------------ timers

    def _start_clock(self, now: float) -> None:
        if not self._clock_started:
            self._clock_started = True
            timeout = self.config.handshake_timeout
            if timeout is not None and self.state is EmulatorState.HANDSHAKE:
                self._handshake_deadline = now + timeout

    def _deadlines(self) -> list[tuple[float, Any]]:
        if self._transport_closed:
            return []
        found: list[tuple[float, Any]] = []

        def add(when: float | None, action: Any) -> None:
            if when is not None:
                found.append((when, action))

        add(self._drop_deadline, self._on_drop_deadline)
        if self.state is EmulatorState.HANDSHAKE:
            add(self._handshake_deadline, self._on_handshake_deadline)
        if self._stalled:
            return found
        if self._outbox:
            add(self._outbox[0].release_at, self._release_one)
        if self.state is EmulatorState.OPEN:
            add(self._idle_deadline, self._on_idle_deadline)
        add(self._stall_deadline, self._on_stall_deadline)
        add(self._fault_close_deadline, self._on_fault_close_deadline)
        add(self._ping_deadline, self._on_ping_deadline)
        add(self._close_deadline, self._on_close_deadline)
        return found

    def _run_due(self, now: float) -> None:
        while True:
            due = [item for item in self._deadlines() if item[0] <= now]
            if not due:
                return
            when, action = min(due, key=lambda item: item[0])
            action(when, now)

    def _on_drop_deadline(self, _when: float, _now: float) -> None:
        self._drop()

    def _on_handshake_deadline(self, _when: float, _now: float) -> None:
        self._close_transport()

    def _on_idle_deadline(self, when: float, _now: float) -> None:
        self._idle_deadline = None
        self._server_close(when, 1011, NET0001_REASON, debug_code="NET-0001")

    def _on_stall_deadline(self, _when: float, _now: float) -> None:
        self._stall()

    def _on_fault_close_deadline(self, _when: float, now: float) -> None:
        self._fault_close_deadline = None
        self._fault_close(now)

    def _on_ping_deadline(self, when: float, now: float) -> None:
        interval = self.faults.ping_interval
        assert interval is not None
        following = when + interval
        self._ping_deadline = following if following > now else now + interval
        if self._ws.state is ConnectionState.OPEN:
            payload = self._rng.getrandbits(64).to_bytes(8, "big")
            self._out += self._ws.send(Ping(payload=payload))

    def _on_close_deadline(self, _when: float, _now: float) -> None:
        self._close_transport()

    # ------------------------------------------------------------------ faults

    def _close_transport(self) -> None:
        self._transport_closed = True
        self.state = EmulatorState.CLOSED
        self._outbox.clear()
        # A finished session is kept for introspection (``dgproto serve`` keeps the last
        # 64): drop what only a live one needs, the per-channel recognizers above all.
        self._transcribers = {}
        self._text_parts.clear()

    def _drop(self) -> None:
        self._close_transport()

    def _stall(self) -> None:
        self._stalled = True
        self._stall_deadline = None
        self._outbox.clear()

    def _fault_close(self, now: float) -> None:
        self._outbox.clear()
        self.state = EmulatorState.CLOSING
        self._send_close(self.faults.close_code, self.faults.close_reason, now)

    def _after_message(self, now: float) -> None:
        """Count one real message written and apply the message-count faults."""
        self.messages_sent += 1
        count = self.messages_sent
        faults = self.faults
        if faults.unknown_every is not None and count % faults.unknown_every == 0:
            self._write_text(_INJECTED_UNKNOWN)
        if faults.malformed_every is not None and count % faults.malformed_every == 0:
            self._write_text(_INJECTED_MALFORMED)
        self._message_count_faults(now)

    def _message_count_faults(self, now: float) -> None:
        count = self.messages_sent
        faults = self.faults
        if faults.drop_after_messages == count:
            self._drop()
        elif faults.stall_after_messages == count:
            self._stall()
        elif faults.close_after_messages == count:
            self._fault_close(now)

    # ------------------------------------------------------------------ output

    def _enqueue(self, message: Mapping[str, Any], now: float) -> None:
        if self.flux is not None:  # Flux numbers every message it sends
            message = {**message, "sequence_id": self._sequence}
            self._sequence += 1
        self._enqueue_item(_Text(wire.dumps(message), self._release_time(now)))

    def _release_time(self, now: float) -> float:
        release = now + (self.faults.delay or 0.0)
        self._last_release = max(self._last_release, release)
        return self._last_release

    def _enqueue_item(self, item: _Text | _Close) -> None:
        # Never called while stalled or closed: input is ignored then.
        self._outbox.append(item)

    def _release_one(self, _when: float, now: float) -> None:
        item = self._outbox.popleft()
        if isinstance(item, _Close):
            self._send_close(item.code, item.reason, now)
            return
        self._write_text(item.text)
        self._after_message(now)

    def _write_text(self, text: str) -> None:
        # Only called while the WebSocket is open: every close empties the outbox.
        size = self.faults.fragment
        pieces = [text] if size is None else _split_utf8(text, size)
        for index, piece in enumerate(pieces):
            last = index == len(pieces) - 1
            self._out += self._ws.send(TextMessage(data=piece, message_finished=last))

    def _send_close(self, code: int, reason: str, now: float) -> None:
        if self._ws.state is ConnectionState.OPEN:
            self._out += self._ws.send(CloseConnection(code=code, reason=reason))
            self.close_sent = (code, reason)
            self._outbox.clear()
            if self.config.close_timeout is not None:
                self._close_deadline = now + self.config.close_timeout

    def _server_close(
        self, now: float, code: int, reason: str, *, debug_code: str | None = None
    ) -> None:
        """End the session Deepgram's way: one Metadata (not on Flux), then the close frame."""
        self.state = EmulatorState.CLOSING
        options = self.options
        if self.flux is None:
            self._enqueue(self._metadata(), now)
        if debug_code is not None and isinstance(options, LiveOptions) and options.debug:
            self._enqueue(wire.closing_error(debug_code, reason), now)
        self._enqueue_item(_Close(code, reason, self._release_time(now)))

    def _metadata(self) -> dict[str, Any]:
        options = self.options
        assert not isinstance(options, FluxOptions)
        return wire.metadata(
            request_id=self.request_id,
            sha256=self._sha256.hexdigest(),
            created=self.created,
            duration=self.audio_seconds_received,
            channels=(options.channels if options and options.channels else 1),
            model=self.config.model_info,
            model_uuid=_MODEL_UUID,
            extra=options.extra if options else None,
            warnings=self.warnings,
        )

    # ------------------------------------------------------------------ handshake

    def _refuse_bad_request(self, exc: WsRemoteProtocolError | UnicodeError) -> None:
        """A request wsproto could not take (bad HTTP, not GET, missing upgrade headers,
        undecodable headers): answer with raw HTTP, since h11 may be unable to."""
        text = str(exc)
        if isinstance(exc, UnicodeError):
            status, text = 400, f"Request headers must be ASCII: {text}"
        elif "GET" in text:
            status = 405
        else:
            status = int(getattr(exc.event_hint, "status_code", 400))
        self.http_status = status
        body = wire.http_error_body(status, self.request_id, None, text).encode()
        head = [
            f"HTTP/1.1 {status} {_REASONS.get(status, 'Error')}",
            "content-type: application/json",
            f"content-length: {len(body)}",
            f"dg-request-id: {self.request_id}",
            f"dg-error: {_header_safe(text)}",
            "connection: close",
        ]
        self._out += ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body
        self._close_transport()

    def _on_request(self, request: Request, now: float) -> None:
        config = self.config
        self.path = request.target.partition("?")[0]
        decision = evaluate(
            target=request.target,
            headers=list(request.extra_headers),
            subprotocols=list(request.subprotocols),
            path=config.path,
            require_auth=config.require_auth,
            accepted_keys=config.accepted_keys,
            faults=self.faults,
            fault_header=config.fault_header,
            flux_path=config.flux_path,
            max_channels=config.max_channels,
        )
        if isinstance(decision, Accept):
            self.http_status = 101
            self._accept(decision, now)
            return
        self.http_status = decision.status
        body = wire.http_error_body(
            decision.status, self.request_id, decision.err_code, decision.err_msg
        ).encode()
        error = json.loads(body)
        detail = error.get("err_msg", "")
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"dg-request-id", self.request_id.encode()),
            (b"dg-error", _header_safe(detail).encode("latin-1")),
        ]
        self._out += self._ws.send(
            RejectConnection(status_code=decision.status, headers=headers, has_body=True)
        )
        self._out += self._ws.send(RejectData(data=body, body_finished=True))
        self._close_transport()

    def _accept(self, decision: Accept, now: float) -> None:
        self.options = options = decision.options
        self.faults = faults = decision.faults
        self.subprotocol = decision.subprotocol
        self._out += self._ws.send(
            AcceptConnection(
                subprotocol=decision.subprotocol,
                extra_headers=[(b"dg-request-id", self.request_id.encode())],
            )
        )
        self.state = EmulatorState.OPEN
        self._handshake_deadline = None
        if isinstance(options, FluxOptions):
            self._setup_flux(options, now)
        else:
            self._setup_audio(options)
        if self.config.idle_timeout is not None:
            self._idle_deadline = now + self.config.idle_timeout

        def after(seconds: float | None) -> float | None:
            return None if seconds is None else now + seconds

        self._drop_deadline = after(faults.drop_after_seconds)
        self._stall_deadline = after(faults.stall_after_seconds)
        self._fault_close_deadline = after(faults.close_after_seconds)
        self._ping_deadline = after(faults.ping_interval)
        self._message_count_faults(now)

    def _setup_flux(self, options: FluxOptions, now: float) -> None:
        assert options.encoding is not None
        assert options.sample_rate is not None
        self._pcm = PcmDecoder(options.encoding, 1)
        self._sample_rate = options.sample_rate
        self.flux = FluxEndpoint(
            options=options,
            recognizer=self.config.recognizer(channel=0, sample_rate=options.sample_rate),
            sample_rate=options.sample_rate,
            request_id=self.request_id,
        )
        self._enqueue(self.flux.connected(), now)

    def _setup_audio(self, options: LiveOptions) -> None:
        self.features = {
            "numerals": bool(options.numerals),
            "punctuate": bool(options.punctuate),
            "smart_format": bool(options.smart_format),
        }
        if options.encoding is None:
            self.warnings.append(CONTAINER_WARNING)
            return
        assert options.sample_rate is not None
        channels = options.channels or 1
        self._pcm = PcmDecoder(options.encoding, channels)
        self._sample_rate = options.sample_rate
        transcribed = range(channels) if options.multichannel else range(1)
        self._total_channels = len(transcribed)
        endpointing = options.endpointing
        settings = SegmenterSettings(
            interim_results=bool(options.interim_results),
            interim_interval=self.config.interim_interval,
            endpointing=(
                None
                if endpointing is False
                else (10 if endpointing is None else endpointing) / 1000
            ),
            utterance_end=(
                None if options.utterance_end_ms is None else options.utterance_end_ms / 1000
            ),
            vad_events=bool(options.vad_events),
            vad_hangover=self.config.vad_hangover,
            max_segment=self.config.max_segment,
        )
        frame_samples = round(self.config.vad_frame * options.sample_rate)
        for channel in transcribed:
            self._transcribers[channel] = ChannelTranscriber(
                recognizer=self.config.recognizer(channel=channel, sample_rate=options.sample_rate),
                settings=settings,
                sample_rate=options.sample_rate,
                frame_samples=frame_samples,
                vad_threshold=self.config.vad_threshold,
            )

    # ------------------------------------------------------------------ input

    def _process_events(self, now: float) -> None:
        for event in self._ws.events():
            if self._transport_closed or self._stalled:
                return
            if isinstance(event, Request):
                self._on_request(event, now)
            elif isinstance(event, TextMessage):
                self._on_text_frame(event, now)
            elif isinstance(event, BytesMessage):
                self._on_binary_frame(event, now)
            elif isinstance(event, Ping):
                if self.flux is not None:  # Flux idles on pings (it has no KeepAlive)
                    self._activity(now)
                if self._ws.state is ConnectionState.OPEN:
                    self._out += self._ws.send(event.response())
            elif isinstance(event, CloseConnection):
                self._on_close_frame(event)
            # Pong: nothing to do; the emulator does not time pongs.

    def _on_close_frame(self, event: CloseConnection) -> None:
        state = self._ws.state
        if state is ConnectionState.REMOTE_CLOSING:
            # The client closes: echo it now. Queued messages can no longer be sent.
            self.close_received = (event.code, event.reason or "")
            self._out += self._ws.send(event.response())
        elif state is ConnectionState.CLOSED:
            self.close_received = (event.code, event.reason or "")
        elif state is ConnectionState.OPEN:
            # wsproto reports a frame it could not parse as a close with the right code
            # (1002, 1007, ...) without changing state: send that close and hang up.
            self._out += self._ws.send(CloseConnection(code=event.code, reason=event.reason))
            self.close_sent = (event.code, event.reason or "")
        self._close_transport()

    def _activity(self, now: float) -> None:
        if self.state is EmulatorState.OPEN and self.config.idle_timeout is not None:
            self._idle_deadline = now + self.config.idle_timeout

    def _on_text_frame(self, event: TextMessage, now: float) -> None:
        self._activity(now)
        self._text_size += len(event.data.encode("utf-8"))
        self._text_frames += 1
        if self._text_size > self.config.max_message_size:
            self._refuse_message("Message too big for the emulator")
            return
        if too_fragmented(self._text_frames, self._text_size):
            self._refuse_message("Message split into too many frames")
            return
        self._text_parts.append(event.data)
        if event.message_finished:
            text = "".join(self._text_parts)
            self._text_parts.clear()
            self._text_size = self._text_frames = 0
            self._on_text(text, now)

    def _on_binary_frame(self, event: BytesMessage, now: float) -> None:
        self._activity(now)
        data = bytes(event.data)
        self._binary_size += len(data)
        self._binary_frames += 1
        if too_fragmented(self._binary_frames, self._binary_size):
            self._refuse_message("Message split into too many frames")
            return
        if data and self.state is EmulatorState.OPEN:
            self._on_audio(data, now)
        if event.message_finished:
            empty = self._binary_size == 0
            self._binary_size = self._binary_frames = 0
            if empty and self.state is EmulatorState.OPEN:  # the deprecated CloseStream
                self._close_stream(now)

    def _refuse_message(self, reason: str) -> None:
        """Close with 1009 and hang up: a message too big or too fragmented to hold.

        After the emulator's own close (NET-0001, CloseStream) it only hangs up: a second
        close frame is not allowed.
        """
        self._text_parts.clear()
        if self._ws.state is ConnectionState.OPEN:
            self._out += self._ws.send(CloseConnection(code=1009, reason=reason))
            self.close_sent = (1009, reason)
        self._close_transport()

    def _on_audio(self, data: bytes, now: float) -> None:
        self.audio_bytes_received += len(data)
        self._sha256.update(data)
        if self._pcm is None:  # a container: counted, never decoded
            return
        channels = self._pcm.feed(data)
        if self.flux is not None:
            for message in self.flux.audio(channels[0]):
                self._enqueue(message, now)
            return
        for index, transcriber in self._transcribers.items():
            self._emit(index, transcriber.feed(channels[index]), now)
            if (
                transcriber.words_heard == 0
                and transcriber.loud_seconds >= UNDECODED_SECONDS
                and UNDECODED_WARNING not in self.warnings
            ):
                self.warnings.append(UNDECODED_WARNING)

    def _on_text(self, text: str, now: float) -> None:
        problem: str | None = None
        try:
            message: Any = json.loads(text)
        except (ValueError, RecursionError) as exc:
            message = None
            problem = f"Client message is not valid JSON: {exc}"
        kind = message.get("type") if isinstance(message, dict) else None
        kind = kind if isinstance(kind, str) else None
        self._log.append(
            ClientMessage(
                text=text,
                message=message,
                type=kind,
                audio_position=self.audio_seconds_received,
                at=now,
            )
        )
        if self.state is not EmulatorState.OPEN:
            return
        if self.flux is not None:
            self._flux_control(kind, message, problem is not None, now)
            return
        if problem is None:
            problem = self._dispatch(kind, message, now)
        if problem is not None:
            self._enqueue(wire.schema_error(problem, _shorten(text)), now)

    def _flux_control(self, kind: str | None, message: Any, not_json: bool, now: float) -> None:
        flux = self.flux
        assert flux is not None
        if kind == "CloseStream":
            self._close_stream(now)
            return
        answer = flux.not_json() if not_json else flux.control(kind, message)
        if isinstance(answer, Fatal):
            self.state = EmulatorState.CLOSING
            error = {"type": "Error", "code": answer.code, "description": answer.description}
            self._enqueue(error, now)
            self._enqueue_item(_Close(FATAL_CLOSE_CODE, answer.code, self._release_time(now)))
            return
        for reply in answer:
            self._enqueue(reply, now)

    def _dispatch(self, kind: str | None, message: Any, now: float) -> str | None:
        """Act on one decoded control message; a str return is a SchemaError."""
        if kind == "KeepAlive":
            return None
        if kind == "CloseStream":
            self._close_stream(now)
            return None
        if kind == "Finalize":
            return self._finalize(message, now)
        if kind == "Configure":
            self._configure(message, now)
            return None
        if kind is None:
            return "Client message must be a JSON object with a string 'type' field."
        return (
            f"Unknown message type {kind!r}; expected one of KeepAlive, Finalize, "
            "CloseStream, Configure."
        )

    def _finalize(self, message: dict[str, Any], now: float) -> str | None:
        channel = message.get("channel")
        if channel is None:
            chosen: Sequence[int] = list(self._transcribers)
        elif (
            isinstance(channel, bool)
            or not isinstance(channel, int)
            or channel not in self._transcribers
        ):
            return (
                f"Finalize 'channel' must be an int from 0 to {self._total_channels - 1}, "
                f"got {channel!r}."
            )
        else:
            chosen = [channel]
        for index in chosen:
            self._emit(index, self._transcribers[index].flush(from_finalize=True), now)
        return None

    def _close_stream(self, now: float) -> None:
        if self.flux is not None:
            for message in self.flux.close_stream():
                self._enqueue(message, now)
        for index, transcriber in self._transcribers.items():
            self._emit(index, transcriber.flush(from_finalize=False), now)
        self._server_close(now, 1000, "")

    def _configure(self, message: dict[str, Any], now: float) -> None:
        problem = check_configure(message)
        if problem is not None:
            code, description = problem
            self._enqueue(
                wire.configure_failure(
                    request_id=self.request_id, code=code, description=description
                ),
                now,
            )
            return
        features: dict[str, bool] = message.get("features") or {}
        self.features.update(features)
        keyterms = message.get("keyterms")
        if keyterms is not None:
            self.keyterms = tuple(keyterms)
        self._enqueue(
            wire.configure_success(
                request_id=self.request_id, features=features, keyterms=keyterms
            ),
            now,
        )

    # ------------------------------------------------------------------ formatting

    def _emit(self, channel: int, outputs: Sequence[Output], now: float) -> None:
        total = self._total_channels
        options = self.options
        assert isinstance(options, LiveOptions)
        withhold = self.faults.withhold_end_signals
        for output in outputs:
            if isinstance(output, UtteranceGap) and withhold:
                continue
            if isinstance(output, Window):
                message = wire.results(
                    channel=channel,
                    total=total,
                    start=output.start,
                    end=output.end,
                    is_final=output.is_final,
                    speech_final=output.speech_final and not withhold,
                    from_finalize=output.from_finalize,
                    words=self._format_words(output.words),
                    punctuate=self.features["punctuate"] or self.features["smart_format"],
                    request_id=self.request_id,
                    model=self.config.model_info,
                    model_uuid=_MODEL_UUID,
                    extra=options.extra,
                )
            elif isinstance(output, SpeechStart):
                message = wire.speech_started(
                    channel=channel, total=total, timestamp=output.timestamp
                )
            else:
                message = wire.utterance_end(
                    channel=channel, total=total, last_word_end=output.last_word_end
                )
            self._enqueue(message, now)

    def _format_words(self, words: Sequence[RecognizedWord]) -> list[RecognizedWord]:
        if not self.features["numerals"]:
            return list(words)
        return [numeral(word) for word in words]


# ---------------------------------------------------------------------- helpers

_REASONS = {400: "Bad Request", 405: "Method Not Allowed", 426: "Upgrade Required"}


def _split_utf8(text: str, size: int) -> list[str]:
    """Cut ``text`` into pieces of at most ``size`` UTF-8 bytes, never inside a character
    (a character wider than ``size`` gets a piece of its own)."""
    pieces: list[str] = []
    current: list[str] = []
    used = 0
    for char in text:
        width = len(char.encode("utf-8"))
        if current and used + width > size:
            pieces.append("".join(current))
            current, used = [], 0
        current.append(char)
        used += width
    pieces.append("".join(current))
    return pieces


def _shorten(text: str, limit: int = 256) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _header_safe(text: str) -> str:
    """A header value h11 will send: printable ASCII only, bounded."""
    cleaned = "".join(c if " " <= c <= "~" else "?" for c in text)
    return _shorten(cleaned, 512)


def _rfc3339(wall_time: float) -> str:
    moment = datetime.fromtimestamp(wall_time, tz=timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
