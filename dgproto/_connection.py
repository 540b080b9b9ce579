"""``ListenConnection``: the sans-I/O client core for Deepgram's ``/v1/listen``.

The WebSocket session itself (handshake, auth, close classification, pings, deadlines,
framing) is ``_session.Session``, shared with Flux; this module adds only what is
``/v1/listen``'s own: ``LiveOptions``, the v1 message registry (``decode_message``), the
legality table (``LISTEN_TRANSITIONS``), KeepAlive only when idle, and Finalize
completion. Every rule is the same for every adapter and is tested on a virtual clock.

The driver's loop, after *every* call: write ``data_to_send()``, drain ``next_event()``,
re-arm ``get_timer()``, and close the socket once ``should_close_transport`` is true.
Not thread-safe: an adapter serialises its calls.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import attrs

from ._audio import bytes_per_second
from ._config import Config
from ._events import Event, FinalizeComplete, FinalizeReason, Metadata, Results
from ._messages import decode_message, encode_configure, encode_finalize, encode_keepalive
from ._options import Auth, LiveOptions
from ._session import USER_AGENT, Session, Tracking, __version__, classify_close
from ._state import LISTEN_TRANSITIONS, Input, State
from ._utterances import UtteranceTracker

__all__ = ["USER_AGENT", "ListenConnection", "__version__", "classify_close"]

#: Final results "cover" the audio sent when they reach its end within this many seconds.
#: Deepgram's window ends are float sums (12.08 + 4.7700005); a sample at 8 kHz is 0.125 ms.
COVER_TOLERANCE = 0.01


@attrs.define
class _PendingFinalize:
    """A Finalize sent and not yet reported complete."""

    channel: int | None
    #: Seconds of audio (per channel) sent before the Finalize; None without a fixed byte rate.
    audio_at: float | None
    deadline: float | None


class ListenConnection(Session):
    """A Deepgram live transcription stream, as a pure state machine.

    Every method that changes state takes ``now``: seconds on any monotonic clock the
    caller chooses, used only to compute deadlines that ``get_timer()`` reports.
    Commands that the current state does not allow raise ``LocalProtocolError`` and
    change nothing. Input from the peer never raises: misbehaviour becomes events.
    """

    def __init__(
        self,
        *,
        options: LiveOptions | None = None,
        auth: Auth | None = None,
        host: str = "api.deepgram.com",
        path: str = "/v1/listen",
        config: Config | None = None,
        extra_headers: Sequence[tuple[str, str]] = (),
        user_agent: str = USER_AGENT,
        tracking: Tracking | None = None,
    ) -> None:
        self.options = options if options is not None else LiveOptions()
        options = self.options
        channel_count = (options.channels or 1) if options.multichannel else 1
        super().__init__(
            options=self.options,
            auth=auth,
            host=host,
            path=path,
            config=config,
            extra_headers=extra_headers,
            user_agent=user_agent,
            table=LISTEN_TRANSITIONS,
            decode=decode_message,
            bytes_per_second=bytes_per_second(
                options.encoding, options.sample_rate, options.channels or 1
            ),
            tracking=tracking,
            channels=channel_count,
        )
        # KeepAlive and Finalize bookkeeping
        self._keepalives_sent = 0
        self._channel_count = channel_count
        # utterances: the stream's tracker (shared by a reconnecting stream's sockets)
        shared = self._tracking
        if shared.utterances is None:
            shared.utterances = UtteranceTracker(
                timeout=self.config.utterance_timeout,
                max_seconds=self.config.utterance_max_seconds,
            )
        self._utterances: UtteranceTracker = shared.utterances
        #: Finalizes awaiting their reply, oldest first (a few at most: a list, not a deque)
        self._pending: list[_PendingFinalize] = []
        self._coverage: dict[int, float] = {}
        self._last_completed_at: float | None = None

    # ------------------------------------------------------------------ read-only state

    @property
    def metadata(self) -> Metadata | None:
        """The session's ``Metadata`` message, once it arrived."""
        return self._metadata

    @property
    def keepalives_sent(self) -> int:
        """KeepAlive messages sent so far, automatic or explicit (for logs and demos)."""
        return self._keepalives_sent

    @property
    def pending_finalizes(self) -> int:
        """Finalize calls whose ``FinalizeComplete`` has not been emitted yet."""
        return len(self._pending)

    def _keepalive_deadline(self) -> float | None:
        interval = self.config.keepalive_interval
        if interval is None or self._last_sent is None:
            return None
        return self._last_sent + interval

    # ------------------------------------------------------------------ commands

    def send_keepalive(self, *, now: float) -> None:
        """Send ``{"type":"KeepAlive"}`` now. Normally automatic (``Config.keepalive_interval``)."""
        self._command(Input.SEND_KEEPALIVE)
        self._send_keepalive(now)

    def finalize(self, channel: int | None = None, *, now: float) -> None:
        """Ask Deepgram to flush final results for the audio sent so far.

        Exactly one ``FinalizeComplete`` follows for each call, in call order.
        """
        self._command(Input.FINALIZE)
        # encode_finalize checks ``channel`` (ValueError) before anything is sent
        self._send_text(encode_finalize(channel), now=now, kind="Finalize")
        timeout = self.config.finalize_timeout
        self._pending.append(
            _PendingFinalize(
                channel=channel,
                audio_at=self.audio_seconds_sent,
                deadline=None if timeout is None else now + timeout,
            )
        )
        self._complete_covered(now)

    def configure(
        self,
        keyterms: Sequence[str] | None = None,
        features: Mapping[str, Any] | None = None,
        *,
        now: float,
    ) -> None:
        """Change settings mid-stream with a ``Configure`` message (e.g. ``numerals``)."""
        self._command(Input.CONFIGURE)
        self._send_text(encode_configure(keyterms, features), now=now, kind="Configure")

    # ------------------------------------------------------------------ session hooks

    def _endpoint_deadlines(self, state: State) -> list[float | None]:
        deadlines = [self._pending[0].deadline] if self._pending else []
        deadlines.append(self._utterances.deadline())
        if state is State.OPEN:
            deadlines.append(self._keepalive_deadline())
        return deadlines

    def _on_timer(self, state: State, now: float) -> None:
        while self._pending:
            deadline = self._pending[0].deadline
            if deadline is None or now < deadline:
                break
            self._complete_head("timeout", now)
        self._events.extend(self._utterances.handle_timer(now=now))
        keepalive_at = self._keepalive_deadline() if state is State.OPEN else None
        if keepalive_at is not None and now >= keepalive_at:
            self._send_keepalive(now)

    def _send_keepalive(self, now: float) -> None:
        self._send_text(encode_keepalive(), now=now, kind="KeepAlive")
        self._keepalives_sent += 1

    def _on_message(self, event: Event) -> None:
        now = self._now
        if isinstance(event, Results):
            # the hot path (several per second per channel): _track's work, without its
            # dispatch on the event's type
            self._stats.on_results(event, now)
            ended = self._utterances.handle_results(event, now=now)
            if ended:
                self._events.extend(ended)
            self._on_results(event, now)
            return
        self._track(event, now)
        if isinstance(event, Metadata):
            self._metadata = event

    def _track(self, event: Event, now: float) -> None:
        """The stats see a queued event; the utterances it ends are queued right after it.

        A reconnecting stream's socket queued it on the stream's clock (``Tracking.view``).
        """
        self._stats.on_event(event, now)
        self._events.extend(self._utterances.handle_event(event, now=now))

    def _on_finishing(self) -> None:
        # the stream's last utterances, then the Finalizes the close cut short, then Closed;
        # a reconnecting stream's socket leaves them to the stream (a drop is no end)
        if self._owns_tracking:
            self._events.extend(self._utterances.close())
        while self._pending:
            self._complete_head("closed", self._now)

    # ------------------------------------------------------------------ Finalize bookkeeping

    def _on_results(self, results: Results, now: float) -> None:
        # ``results.end`` and ``results.channel``, inline: this runs for every Results;
        # the end back on this socket's clock, the one ``audio_seconds_sent`` counts
        end = results.start + results.duration - self._tracking.offset
        index = results.channel_index
        channel = index[0] if index else 0
        if results.is_final and end > self._coverage.get(channel, 0.0):
            self._coverage[channel] = end
        if not self._pending:  # the common case: no Finalize awaits its reply
            return
        if results.from_finalize:
            head = self._pending[0]
            if (head.channel is None or head.channel == channel) and not self._is_stale(end, head):
                self._complete_head("from_finalize", now)
        self._complete_covered(now)

    def _is_stale(self, end: float, head: _PendingFinalize) -> bool:
        """A late ``from_finalize`` reply to an earlier Finalize that already completed.

        It ends no later than that earlier Finalize's audio, while ``head`` needs more.
        """
        last = self._last_completed_at
        if last is None or head.audio_at is None:
            return False
        return end <= last + COVER_TOLERANCE < head.audio_at

    def _complete_covered(self, now: float) -> None:
        while self._pending:
            head = self._pending[0]
            if head.audio_at is None:
                return
            channels = range(self._channel_count) if head.channel is None else (head.channel,)
            target = head.audio_at - COVER_TOLERANCE
            if any(self._coverage.get(c, 0.0) < target for c in channels):
                return
            self._complete_head("covered", now)

    def _complete_head(self, reason: FinalizeReason, now: float) -> None:
        head = self._pending.pop(0)
        if head.audio_at is not None:
            self._last_completed_at = head.audio_at
        complete = FinalizeComplete(channel=head.channel, reason=reason)
        self._events.append(complete)
        self._track(complete, now)
