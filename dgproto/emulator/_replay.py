"""``ReplayConnection``: serve a recorded session back to a client, on the audio clock.

An app that misbehaved against the real Deepgram is tested against what Deepgram really
said. The handshake answer is the recorded one (status, headers, rejection body), so a
recorded 401/429 reproduces whatever the request carries. After a 101, each recorded
server message is released once the client has sent as much audio as the recording's
client had when the message arrived (its ``audio`` field), and at least as many of the
control messages that get answers (Finalize, CloseStream, Configure) as had been sent
before it: so a Finalize reply never overtakes its Finalize, and results land at the
same points of the app's audio however fast or in whatever chunks it streams.

Differences from the recording (other audio bytes, more or less of it, a control the
recording lacks) never stop the replay: they are listed in ``differences`` and logged
on ``dgproto.emulator.replay``. A control the recording has no answer for is answered as
the emulator would (an empty ``from_finalize`` final, a Configure reply, Metadata and
close 1000); after a CloseStream, recorded transcript messages beyond the audio received
are skipped and the rest (Metadata, the close) follow.

Wall-clock timing of the recording (delays, pings) is not replayed; ``EmulatorConfig``'s
handshake, idle and close timeouts apply as in any emulated session.
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from collections import deque
from typing import Any
from urllib.parse import parse_qsl

import attrs
from wsproto.events import (
    AcceptConnection,
    BytesMessage,
    CloseConnection,
    RejectConnection,
    RejectData,
    Request,
    TextMessage,
)

from dgproto._audio import bytes_per_second
from dgproto._options import LiveOptions
from dgproto._recording import REDACTED, FrameRecord, Recording

from . import _wire as wire
from ._connection import EmulatorConnection, EmulatorState
from ._control import check_configure

__all__ = ["ReplayConnection"]

logger = logging.getLogger("dgproto.emulator.replay")

#: Controls the server answers: they gate the recorded messages that follow them.
ANSWERED = frozenset({"Finalize", "CloseStream", "Configure"})
_TRANSCRIPT = frozenset({"Results", "SpeechStarted", "UtteranceEnd"})
_HOP_HEADERS = frozenset(
    {
        "upgrade",
        "connection",
        "content-length",
        "transfer-encoding",
        "sec-websocket-accept",
        "sec-websocket-protocol",
        "sec-websocket-extensions",
    }
)
_EPSILON = 1e-6
_MODEL_UUID = str(uuid.uuid5(uuid.NAMESPACE_URL, "https://github.com/dgproto/emulator-replay"))


@attrs.frozen
class _Gate:
    frame: FrameRecord
    audio: float
    controls: int
    transcript: bool


def _plan(recording: Recording) -> tuple[list[_Gate], list[str], bytes]:
    """``(server frames with their gates, answered controls in order, audio sent)``."""
    gates: list[_Gate] = []
    controls: list[str] = []
    audio = bytearray()
    client_closed = False
    for frame in recording.frames:
        if frame.direction == "send":
            kind = "CloseStream" if frame.kind == "binary" and not frame.data else None
            if frame.kind == "text":
                kind = frame.message_type
            if kind in ANSWERED:
                controls.append(kind)
            audio += frame.data if frame.kind == "binary" else b""
            client_closed = client_closed or frame.kind == "close"
        elif frame.kind in ("text", "binary", "close") and not client_closed:
            gates.append(
                _Gate(
                    frame,
                    frame.audio or 0.0,
                    len(controls),
                    frame.message_type in _TRANSCRIPT,
                )
            )
    return gates, controls, bytes(audio)


def _dropped_at(recording: Recording) -> float | None:
    """Where (client audio clock) an accepted socket that the server never closed ended:
    its last frame's audio clock; ``None`` if the server sent a close frame."""
    if not recording.accepted:
        return None
    if any(f.kind == "close" and f.direction == "recv" for f in recording.frames):
        return None
    clocks = [f.audio for f in recording.frames if f.audio is not None]
    return max(clocks, default=0.0)


def _visible(pairs: tuple[tuple[str, str], ...] | list[tuple[str, str]]) -> set[tuple[str, str]]:
    return {(k, v) for k, v in pairs if v != REDACTED and k not in ("callback",)}


class ReplayConnection(EmulatorConnection):
    """An ``EmulatorConnection`` that answers with ``recording`` (else ``config.replay``,
    its first socket if it holds several).

    ``reconnected=True`` says the recorded client reconnected after this socket (it is
    not a file's last): a socket the server never closed was dropped, and the replay
    drops the connection where it ended, so a reconnect replays as recorded.

    Driven exactly like ``EmulatorConnection``; its introspection (``request_id``,
    ``received_text_messages``, ``close_sent``...) works the same. ``differences`` lists
    how the client's session departed from the recording.
    """

    def __init__(
        self, *, recording: Recording | None = None, reconnected: bool = False, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        chosen = recording if recording is not None else self.config.replay
        if isinstance(chosen, tuple):
            chosen = chosen[0]  # the socket server picks by connection order instead
        if chosen is None:
            raise ValueError("ReplayConnection needs a recording (or EmulatorConfig.replay)")
        self.recording = chosen
        gates, self._recorded_controls, self._recorded_audio = _plan(chosen)
        self._gates = deque(gates)
        self.differences: list[str] = []
        self._controls_seen = 0
        self._stream_closed = False
        self._audio_checked = False
        self._final_end = 0.0
        self._bps: int | None = None
        self._replay_sha = hashlib.sha256()
        #: ``reconnected``: the recorded client opened another socket after this one. If
        #: the server never closed this one, it was dropped: end this replay the same way
        #: once the client's audio reaches where it ended. (The last socket of a file may
        #: just be where the recording stopped: it is left open.)
        self._drop_at = _dropped_at(chosen) if reconnected else None
        response = chosen.response
        recorded_id = response.header("dg-request-id") if response is not None else None
        if recorded_id:
            self.request_id = recorded_id

    @property
    def audio_seconds_received(self) -> float:
        return 0.0 if self._bps is None else self.audio_bytes_received / self._bps

    def differ(self, what: str) -> None:
        """Note one way the client's session departs from the recording."""
        self.differences.append(what)
        logger.info("replay: %s", what)

    # The emulator drives: these override its handshake, audio, control and close hooks.

    def _on_close_frame(self, event: CloseConnection) -> None:
        self._note_audio_end()
        super()._on_close_frame(event)

    # ------------------------------------------------------------------ handshake

    def _on_request(self, request: Request, now: float) -> None:
        recording = self.recording
        query = request.target.partition("?")[2]
        try:
            options = LiveOptions.from_query(query)
        except ValueError:
            options = LiveOptions.from_query(recording.request.query_string)
        self.options = options
        self._bps = bytes_per_second(options.encoding, options.sample_rate, options.channels or 1)
        if _visible(parse_qsl(query, keep_blank_values=True)) != _visible(recording.request.query):
            self.differ(f"request query {query!r} differs from the recording's")
        response = recording.response
        if response is None:
            self.differ("the recording has no handshake answer: waiting for the timeout")
            return
        headers = [
            (k.encode("latin-1"), v.encode("latin-1"))
            for k, v in response.headers
            if k not in _HOP_HEADERS
        ]
        if response.status != 101:
            body = response.body
            length = str(len(body)).encode()
            # in the recorded order, with a length that matches the body sent
            headers = [
                (k.encode("latin-1"), length if k == "content-length" else v.encode("latin-1"))
                for k, v in response.headers
                if k not in _HOP_HEADERS or k == "content-length"
            ]
            if response.header("content-length") is None:
                headers.append((b"content-length", length))
            self._out += self._ws.send(
                RejectConnection(status_code=response.status, headers=headers, has_body=bool(body))
            )
            if body:
                self._out += self._ws.send(RejectData(data=body, body_finished=True))
            self._close_transport()
            return
        recorded = response.header("sec-websocket-protocol")
        self.subprotocol = recorded if recorded in request.subprotocols else None
        self._out += self._ws.send(
            AcceptConnection(subprotocol=self.subprotocol, extra_headers=headers)
        )
        self.state = EmulatorState.OPEN
        self._handshake_deadline = None
        self._release(now)

    # ------------------------------------------------------------------ input

    def _on_audio(self, data: bytes, now: float) -> None:
        self.audio_bytes_received += len(data)
        self._replay_sha.update(data)
        self._release(now)

    def _dispatch(self, kind: str | None, message: Any, now: float) -> str | None:
        """The emulator logged the message (and answers bad JSON with a SchemaError);
        answered controls go to the recording, anything else needs no answer."""
        if kind in ANSWERED:
            self._control(kind, message, now)
        return None

    def _close_stream(self, now: float) -> None:
        self._control("CloseStream", {"type": "CloseStream"}, now)

    def _control(self, kind: str, message: dict[str, Any], now: float) -> None:
        index = self._controls_seen
        self._controls_seen += 1
        recorded = self._recorded_controls
        expected = recorded[index] if index < len(recorded) else None
        if kind == "CloseStream":
            self._stream_closed = True
            self._note_audio_end()
        if expected != kind:
            self.differ(
                f"client sent {kind} as answered control #{index + 1} at audio "
                f"{self.audio_seconds_received:.3f}s; the recording has {expected or 'none'}"
            )
            self._default_answer(kind, message, now)
        if kind == "CloseStream":
            # Nothing more will come: the recording's ending (Metadata, close) may follow.
            self._controls_seen = max(self._controls_seen, len(recorded))
        self._release(now)
        if (
            kind == "CloseStream"
            and not self._gates
            and self.close_sent is None
            and not self._transport_closed  # the recorded drop came first
        ):
            self._server_close(now, 1000, "")

    def _default_answer(self, kind: str, message: dict[str, Any], now: float) -> None:
        """What the emulator says to a control the recording has no answer for."""
        if kind == "Finalize":
            position = self.audio_seconds_received
            if position > self._final_end + _EPSILON:
                self._send_json(self._results(self._final_end, position, from_finalize=True))
        elif kind == "Configure":
            problem = check_configure(message)
            if problem is None:
                answer = wire.configure_success(
                    request_id=self.request_id,
                    features=message.get("features") or {},
                    keyterms=message.get("keyterms"),
                )
            else:
                answer = wire.configure_failure(
                    request_id=self.request_id, code=problem[0], description=problem[1]
                )
            self._send_json(answer)

    def _note_audio_end(self) -> None:
        if self._audio_checked:
            return
        self._audio_checked = True
        if self.audio_bytes_received != len(self._recorded_audio):
            self.differ(
                f"client sent {self.audio_bytes_received} bytes of audio; "
                f"the recording has {len(self._recorded_audio)}"
            )
        elif self._replay_sha.digest() != hashlib.sha256(self._recorded_audio).digest():
            self.differ("client audio has the recording's length but other bytes")

    # ------------------------------------------------------------------ output

    def _release(self, now: float) -> None:
        """Send every recorded message whose gate the client has now passed."""
        audio = self.audio_seconds_received
        gates = self._gates
        while gates and self.close_sent is None:
            gate = gates[0]
            if gate.controls > self._controls_seen:
                return
            if gate.audio > audio + _EPSILON:
                if not self._stream_closed:
                    return
                if gate.transcript:
                    gates.popleft()
                    self.differ(
                        f"skipped a recorded {gate.frame.message_type} at audio "
                        f"{gate.audio:.3f}s: the client sent only {audio:.3f}s"
                    )
                    continue
            gates.popleft()
            self._send_recorded(gate.frame, now)
        drop_at = self._drop_at
        if (
            drop_at is not None
            and not gates
            and self.close_sent is None
            and audio + _EPSILON >= drop_at
            and self._controls_seen >= len(self._recorded_controls)
        ):
            self._drop_at = None
            logger.info("replay: the recorded socket was dropped at audio %.3fs: dropping", audio)
            self._drop()

    def _send_recorded(self, frame: FrameRecord, now: float) -> None:
        if frame.kind == "close":
            self.state = EmulatorState.CLOSING
            self._send_close(frame.code or 1000, frame.reason, now)
            return
        if frame.kind == "binary":
            self._out += self._ws.send(BytesMessage(data=frame.data))
        else:
            assert frame.text is not None
            self._note_final(frame.json())
            self._out += self._ws.send(TextMessage(data=frame.text))
        self.messages_sent += 1

    def _send_json(self, message: dict[str, Any]) -> None:
        self._note_final(message)
        self._out += self._ws.send(TextMessage(data=wire.dumps(message)))
        self.messages_sent += 1

    def _note_final(self, message: Any) -> None:
        if (
            isinstance(message, dict)
            and message.get("type") == "Results"
            and message.get("is_final")
        ):
            try:
                end = float(message["start"]) + float(message["duration"])
            except (KeyError, TypeError, ValueError):
                return
            self._final_end = max(self._final_end, end)

    def _results(self, start: float, end: float, *, from_finalize: bool) -> dict[str, Any]:
        return wire.results(
            channel=0,
            total=1,
            start=start,
            end=end,
            is_final=True,
            speech_final=False,
            from_finalize=from_finalize,
            words=[],
            punctuate=False,
            request_id=self.request_id,
            model=self.config.model_info,
            model_uuid=_MODEL_UUID,
            extra=None,
        )

    def _server_close(
        self, now: float, code: int, reason: str, *, debug_code: str | None = None
    ) -> None:
        """No recorded close: end the emulator's way (Metadata, then the close frame)."""
        self._send_json(
            wire.metadata(
                request_id=self.request_id,
                sha256=self._replay_sha.hexdigest(),
                created=self.created,
                duration=self.audio_seconds_received,
                channels=1,
                model=self.config.model_info,
                model_uuid=_MODEL_UUID,
                extra=None,
            )
        )
        self.state = EmulatorState.CLOSING
        self._send_close(code, reason, now)
