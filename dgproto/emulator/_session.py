"""Transcript segmentation: when a channel's words become interim, final and speech_final.

``Segmenter`` is the whole of Deepgram's visible timing behaviour for one channel, as
plain arithmetic on the audio clock (seconds of audio received, never wall time, so a
KeepAlive gap does not move it). It is fed one short VAD frame at a time: where the audio
now ends, whether that frame was loud, and the words the recognizer completed. It answers
with what the server would say:

- ``Window`` is a ``Results`` message. Final windows are contiguous: each starts where the
  previous final ended (0 at first), so a client can tell when finals cover the audio it
  sent. An interim window spans from the last final's end to the current position.
- ``SpeechStart`` (``vad_events``) when energy appears after silence.
- ``UtteranceGap`` (``utterance_end_ms``) once the last word is that far behind.

Endpointing fires after ``endpointing`` of quiet VAD frames following speech. The tone
codec separates the words of a sentence by 5 ms, less than a 10 ms VAD frame, and
sentences by 500 ms, so with Deepgram's default ``endpointing=10`` a sentence pause ends
an utterance (``speech_final``) while a gap between two words does not. The VAD's
"speaking" state (for ``SpeechStarted``) has a hangover, so one utterance of real speech
with short pauses gives one ``SpeechStarted``. ``ChannelTranscriber`` joins a recognizer,
the energy meter and a ``Segmenter`` for one channel's samples.
"""

from __future__ import annotations

from array import array
from collections.abc import Sequence

import attrs

from ._codec import frame_rms
from ._recognizer import RecognizedWord, Recognizer

__all__ = [
    "ChannelTranscriber",
    "Output",
    "Segmenter",
    "SegmenterSettings",
    "SpeechStart",
    "UtteranceGap",
    "Window",
]


@attrs.frozen(kw_only=True)
class SegmenterSettings:
    """The timing knobs of one channel, all in seconds of audio."""

    interim_results: bool = False
    #: Audio between interim Results (Deepgram: about one a second).
    interim_interval: float = 1.0
    #: Silence after speech that ends an utterance; ``None`` disables endpointing.
    endpointing: float | None = 0.01
    #: Word gap that produces an ``UtteranceGap``; ``None`` disables it.
    utterance_end: float | None = None
    vad_events: bool = False
    #: Quiet needed before a new ``SpeechStart`` can come (bridges pauses within speech).
    vad_hangover: float = 0.2
    #: Longest final window: a longer one is cut (``speech_final`` false) even mid-speech.
    max_segment: float = 5.0


@attrs.frozen(kw_only=True)
class Window:
    """One ``Results`` message for ``[start, end)`` of the channel's audio."""

    start: float
    end: float
    is_final: bool
    speech_final: bool = False
    from_finalize: bool = False
    words: tuple[RecognizedWord, ...] = ()


@attrs.frozen(kw_only=True)
class SpeechStart:
    """Voice activity began at ``timestamp``."""

    timestamp: float


@attrs.frozen(kw_only=True)
class UtteranceGap:
    """No word for ``utterance_end`` since ``last_word_end``."""

    last_word_end: float


Output = Window | SpeechStart | UtteranceGap

#: Audio positions are sample counts over a rate: compare them with a little slack so
#: 0.03 - 0.02 counts as 0.01.
_EPSILON = 1e-9


class Segmenter:
    """Per-channel segmentation state machine, fed in audio-clock order."""

    def __init__(self, settings: SegmenterSettings) -> None:
        self.settings = settings
        #: Where the audio fed so far ends.
        self.position = 0.0
        #: Where the last final window ended: the next window starts here.
        self.final_end = 0.0
        self._pending: list[RecognizedWord] = []
        self._next_interim = settings.interim_interval
        self._speaking = False
        self._last_loud = 0.0
        self._speech_in_window = False
        self._last_word_end: float | None = None
        self._published_end = -1.0
        self._gap_announced = True

    @property
    def pending_words(self) -> tuple[RecognizedWord, ...]:
        """Words recognized but not yet in a final window."""
        return tuple(self._pending)

    def step(self, *, end: float, loud: bool, words: Sequence[RecognizedWord]) -> list[Output]:
        """The audio now reaches ``end``; the frame since the last step was ``loud``;
        the recognizer completed ``words``."""
        settings = self.settings
        out: list[Output] = []
        self._add(words)
        frame_start, self.position = self.position, end
        if loud:
            if not self._speaking and settings.vad_events:
                out.append(SpeechStart(timestamp=frame_start))
            self._speaking = True
            self._last_loud = end
            self._speech_in_window = True
        elif end - self._last_loud + _EPSILON >= settings.vad_hangover:
            self._speaking = False
        if (
            settings.endpointing is not None
            and self._speech_in_window
            and not loud
            and end - self._last_loud + _EPSILON >= settings.endpointing
        ):
            out.append(self._final(end, speech_final=True))
        elif end - self.final_end + _EPSILON >= settings.max_segment:
            # Cut mid-utterance: its speech_final is still to come, so the speech counts on.
            in_speech = self._speech_in_window
            out.append(self._final(self._cut_point(end), speech_final=False))
            self._speech_in_window = in_speech
        elif settings.interim_results and end + _EPSILON >= self._next_interim:
            out.append(self._window(end, is_final=False))
            self._next_interim = end + settings.interim_interval
        gap = self._utterance_gap(end)
        if gap is not None:
            out.append(gap)
        return out

    def flush(self, *, words: Sequence[RecognizedWord], from_finalize: bool) -> list[Output]:
        """Finalize everything up to the current position (``Finalize``/``CloseStream``).

        Nothing comes out when nothing happened since the last final, as with Deepgram,
        which does not answer a Finalize when no audio is buffered.
        """
        self._add(words)
        if self.position <= self.final_end and not self._pending:
            return []
        return [self._final(self.position, speech_final=False, from_finalize=from_finalize)]

    # ----------------------------------------------------------------- internals

    def _add(self, words: Sequence[RecognizedWord]) -> None:
        for word in words:
            self._pending.append(word)
            if self._last_word_end is None or word.end > self._last_word_end:
                self._last_word_end = word.end
                self._gap_announced = False

    def _cut_point(self, end: float) -> float:
        """Where an over-long window is cut: after the last recognized word while speech
        goes on (a word still being spoken must not straddle the cut), else at ``end``."""
        if self._speaking and self._pending and self._pending[-1].end > self.final_end:
            return min(self._pending[-1].end, end)
        return end

    def _window(self, end: float, *, is_final: bool, **flags: bool) -> Window:
        words = tuple(self._pending)
        if words:
            self._published_end = max(self._published_end, max(w.end for w in words))
        return Window(start=self.final_end, end=end, is_final=is_final, words=words, **flags)

    def _final(self, end: float, *, speech_final: bool, from_finalize: bool = False) -> Window:
        window = self._window(
            end, is_final=True, speech_final=speech_final, from_finalize=from_finalize
        )
        self._pending = []
        self.final_end = end
        self._speech_in_window = False
        self._next_interim = self.position + self.settings.interim_interval
        return window

    def _utterance_gap(self, end: float) -> UtteranceGap | None:
        threshold = self.settings.utterance_end
        last = self._last_word_end
        if (
            threshold is None
            or last is None
            or self._gap_announced
            or self._published_end < last  # say the words before their gap
            or end - last + _EPSILON < threshold
        ):
            return None
        self._gap_announced = True
        return UtteranceGap(last_word_end=last)


class ChannelTranscriber:
    """One channel: int16 samples in, segmentation outputs out.

    Samples are cut into VAD frames of ``frame_samples``; each frame goes to the
    recognizer and the energy meter, then one ``Segmenter.step``. A partial frame waits
    for more samples, except at a flush, which processes it so the flushed final ends
    exactly at the audio received.
    """

    def __init__(
        self,
        *,
        recognizer: Recognizer,
        settings: SegmenterSettings,
        sample_rate: int,
        frame_samples: int,
        vad_threshold: float,
    ) -> None:
        self.recognizer = recognizer
        self.segmenter = Segmenter(settings)
        self.sample_rate = sample_rate
        self.frame_samples = max(1, frame_samples)
        self.vad_threshold = vad_threshold
        self._samples_done = 0
        self._buffer = array("h")
        #: Seconds of frames loud enough to be speech, and words recognized: when the
        #: first grows with the second at 0, the recognizer cannot decode this audio.
        self.loud_seconds = 0.0
        self.words_heard = 0

    def feed(self, samples: array[int]) -> list[Output]:
        data = self._buffer + samples if self._buffer else samples
        size = self.frame_samples
        usable = len(data) - len(data) % size
        out: list[Output] = []
        for index in range(0, usable, size):
            out.extend(self._frame(data[index : index + size]))
        self._buffer = data[usable:]
        return out

    def flush(self, *, from_finalize: bool) -> list[Output]:
        out: list[Output] = []
        if self._buffer:
            out.extend(self._frame(self._buffer))
            self._buffer = array("h")
        out.extend(self.segmenter.flush(words=self.recognizer.flush(), from_finalize=from_finalize))
        return out

    def _frame(self, frame: array[int]) -> list[Output]:
        words = self.recognizer.feed(frame)
        self._samples_done += len(frame)
        loud = frame_rms(frame) >= self.vad_threshold
        if loud:
            self.loud_seconds += len(frame) / self.sample_rate
        self.words_heard += len(words)
        return self.segmenter.step(
            end=self._samples_done / self.sample_rate, loud=loud, words=words
        )
