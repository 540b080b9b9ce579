"""``UtteranceTracker``: "the user stopped speaking, here is what they said", per channel.

Deepgram signals the end of an utterance three ways, none of them always: a final with
``speech_final: true`` (endpointing), an ``UtteranceEnd`` message (``utterance_end_ms``,
only with ``interim_results``), and the reply to a ``Finalize``. Apps that use both
signals see the same words end twice, and in noise neither may come at all
(livekit/agents#931, deepgram-js-sdk#281). The tracker turns the event stream into exactly
one ``Utterance`` per run of final words, with a timer backstop.

It is pure, like the connection: feed it every event with ``handle_event(event, now=)``
and emit what it returns right after that event (a connection calls ``close()`` before
queuing its ``Closed``, which stays the last event); arm a timer for ``deadline()`` and
call ``handle_timer(now=)`` when it passes. Across reconnects, feed it only the stream's
final ``Closed``, and events on one stream clock: a reconnecting stream's cores give it
events through the replay's ``StreamView`` (``_resume``), which already removed the words
a replay repeats, so it sees what the app sees. Fed events merely rebased
(``dgproto.rebase``), it still trims a replayed final by time (``_new_text``), so no word
is reported twice.
"""

from __future__ import annotations

import attrs

from ._events import (
    _WORD_NAMES,
    Closed,
    Event,
    FinalizeComplete,
    Results,
    Utterance,
    UtteranceEnd,
    UtteranceReason,
    Word,
)

__all__ = ["UtteranceTracker"]

#: Seconds within which two audio-clock times are the same (Deepgram's ends are float sums).
TOLERANCE = 0.01

#: ``Word.end``'s place in the tuple a ``Word`` is.
_END = _WORD_NAMES.index("end")


@attrs.define
class _Channel:
    """One channel's utterance in progress."""

    #: Finals with words not yet reported, and their transcripts (trimmed after a replay).
    results: list[Results] = attrs.field(factory=list)
    texts: list[str] = attrs.field(factory=list)
    start: float = 0.0
    end: float = 0.0
    #: Audio clock up to which final words were taken (reported or pending).
    taken: float = float("-inf")
    #: Audio clock up to which final windows (with words or not) have arrived.
    final_until: float = float("-inf")
    #: Latest word end seen in an interim: a later one means the speaker goes on.
    heard: float = float("-inf")
    #: An ``UtteranceEnd`` arrived for words whose finals are still to come.
    awaited_end: float | None = None
    #: When the backstop fires for the pending words.
    deadline: float | None = None


class UtteranceTracker:
    """Builds ``Utterance`` events from the v1 events of one stream (every channel).

    ``timeout`` is ``Config.utterance_timeout``: seconds of the caller's clock after the
    last final with words (or interim with new words) before the backstop ends the
    utterance; ``None`` disables it. ``max_seconds`` is ``Config.utterance_max_seconds``:
    an utterance whose words span that much audio ends at once (reason ``"timeout"``).
    """

    def __init__(self, *, timeout: float | None = 3.0, max_seconds: float | None = 60.0) -> None:
        self.timeout = timeout
        self.max_seconds = max_seconds
        self._channels: dict[int, _Channel] = {}

    def __repr__(self) -> str:
        pending = sorted(c for c, state in self._channels.items() if state.results)
        return f"<UtteranceTracker pending_channels={pending}>"

    # ------------------------------------------------------------------ inputs

    def handle_event(self, event: Event, *, now: float) -> list[Utterance]:
        """Take one event; return the utterances it ends, to emit right after it."""
        if isinstance(event, Results):
            return self.handle_results(event, now=now)
        if isinstance(event, UtteranceEnd):
            channel = event.channel[0] if event.channel else 0
            return self._on_utterance_end(self._channel(channel), channel, event.last_word_end)
        if isinstance(event, FinalizeComplete):
            if event.reason == "closed":
                return []  # ``Closed`` follows at once and says why
            channels = sorted(self._channels) if event.channel is None else [event.channel]
            return self._flush_all(channels, "finalize")
        if isinstance(event, Closed):
            return self.close()
        return []

    def close(self) -> list[Utterance]:
        """The stream ended: end every utterance in progress (reason ``"closed"``).

        ``handle_event(Closed)`` calls it; a connection calls it itself just before it
        queues ``Closed`` (and the ``FinalizeComplete``s the close cuts short), which
        stays the last event.
        """
        return self._flush_all(sorted(self._channels), "closed")

    def deadline(self) -> float | None:
        """The earliest absolute time at which ``handle_timer`` ends an utterance."""
        return min(
            (c.deadline for c in self._channels.values() if c.deadline is not None),
            default=None,
        )

    def handle_timer(self, *, now: float) -> list[Utterance]:
        """End (reason ``"timeout"``) every utterance whose deadline has passed."""
        due = sorted(
            (state.deadline, channel)
            for channel, state in self._channels.items()
            if state.deadline is not None and state.deadline <= now
        )
        return [u for _, channel in due for u in self._flush(channel, "timeout")]

    # ------------------------------------------------------------------ internals

    def _channel(self, channel: int) -> _Channel:
        state = self._channels.get(channel)
        if state is None:
            state = self._channels[channel] = _Channel()
        return state

    def handle_results(self, results: Results, *, now: float) -> list[Utterance]:
        """``handle_event`` for a ``Results``, without the dispatch: a connection's hot path."""
        index = results.channel_index
        channel = index[0] if index else 0  # ``results.channel``, inline
        state = self._channels.get(channel)
        if state is None:
            state = self._channels[channel] = _Channel()
        # the first alternative: the one Deepgram's ``transcript`` is
        first = results.alternatives[0] if results.alternatives else None
        words = () if first is None else first.words
        if not results.is_final:
            if words:
                self._on_interim(state, words, now)
            return []
        out: list[Utterance] = []
        transcript = "" if first is None else first.transcript
        text, start, end = _new_text(results, transcript, words, state.taken)
        if text:
            if state.awaited_end is not None and start > state.awaited_end + TOLERANCE:
                # The finals the UtteranceEnd announced never came: end what we have.
                out += self._end(state, channel, "utterance_end")
            self._take(state, results, text, start, end, now)
        window_end = results.start + results.duration  # ``results.end``, inline
        if window_end > state.final_until:
            state.final_until = window_end
        if results.speech_final:
            return out + self._end(state, channel, "speech_final")
        if state.awaited_end is not None and state.final_until >= state.awaited_end - TOLERANCE:
            # Final windows now reach the announced end: every word before it is final
            # (a final word's times can differ a little from the interim's).
            out += self._end(state, channel, "utterance_end")
        limit = self.max_seconds
        if (
            limit is not None
            and state.results
            and state.end - state.start >= limit
            and not results.from_finalize  # the Finalize it answers ends it right after
        ):
            # No end signal for a minute of words: end it so memory stays bounded.
            out += self._end(state, channel, "timeout")
        return out

    def _on_interim(self, state: _Channel, words: tuple[Word, ...], now: float) -> None:
        """New words in an interim: the speaker is still talking, push the backstop."""
        last = words[-1].end
        if last <= state.heard:
            return
        state.heard = last
        if state.results and self.timeout is not None and last > state.end + TOLERANCE:
            state.deadline = now + self.timeout

    def _take(
        self, state: _Channel, results: Results, text: str, start: float, end: float, now: float
    ) -> None:
        if not state.results:
            state.start, state.end = start, end
        state.results.append(results)
        state.texts.append(text)
        state.end = max(state.end, end)
        state.taken = max(state.taken, end)
        state.deadline = None if self.timeout is None else now + self.timeout

    def _on_utterance_end(
        self, state: _Channel, channel: int, last_word_end: float
    ) -> list[Utterance]:
        if state.final_until < last_word_end - TOLERANCE:
            # Deepgram's UtteranceEnd can overtake the final of its last words: wait for it.
            state.awaited_end = last_word_end
            return []
        if state.results and last_word_end < state.start - TOLERANCE:
            return []  # a late one for words already reported: not the end of these
        return self._flush(channel, "utterance_end")  # nothing if already reported

    def _flush_all(self, channels: list[int], reason: UtteranceReason) -> list[Utterance]:
        return [u for channel in channels for u in self._flush(channel, reason)]

    def _flush(self, channel: int, reason: UtteranceReason) -> list[Utterance]:
        return self._end(self._channel(channel), channel, reason)

    def _end(self, state: _Channel, channel: int, reason: UtteranceReason) -> list[Utterance]:
        """``_flush`` with the channel's state at hand."""
        state.awaited_end = None
        state.deadline = None
        if not state.results:
            return []
        utterance = Utterance(
            channel=channel,
            transcript=" ".join(state.texts),
            start=state.start,
            end=state.end,
            reason=reason,
            results=tuple(state.results),
        )
        state.results = []
        state.texts = []
        return [utterance]


def _new_text(
    results: Results, transcript: str, words: tuple[Word, ...], taken: float
) -> tuple[str, float, float]:
    """The part of a final not taken yet: ``(transcript, start, end)``; ``""`` if none.

    ``transcript`` and ``words`` are the first alternative's.

    A final replayed after a reconnect can repeat words already taken (they end at or
    before ``taken``); its transcript is then rebuilt from the new words only. A word
    that straddles ``taken`` is new: it reaches audio no final has covered yet, and
    dropping it would lose words (no replay repeats audio before ``taken``).
    """
    transcript = transcript.strip()
    if not transcript:
        return "", 0.0, 0.0
    if not words:
        if results.end <= taken + TOLERANCE:
            return "", 0.0, 0.0
        return transcript, results.start, results.end
    limit = taken + TOLERANCE
    fresh = [w for w in words if w[_END] > limit]  # ``w.end``: an index is cheaper
    if not fresh:
        return "", 0.0, 0.0
    if len(fresh) < len(words):
        transcript = " ".join(w.punctuated_word or w.word for w in fresh)
    return transcript, fresh[0].start, fresh[-1].end
