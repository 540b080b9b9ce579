"""The recognizer seam: what turns one channel's samples into timed words.

The emulator's session logic (interim/final windows, endpointing, UtteranceEnd) does not
care where words come from. A ``Recognizer`` gets one channel's int16 samples as they
arrive and returns the words whose audio has fully arrived, with times on that channel's
audio clock (seconds of samples fed, from 0). ``flush`` returns the words still in
progress and must leave the recognizer usable: ``Finalize`` flushes mid-stream.

Two come with dgproto:

- ``ToneRecognizer`` (the default) decodes the emulator's tone codec, so audio made by
  ``synthesize("hello world")`` comes back as exactly those words, with real timestamps.
- ``ScriptedRecognizer`` replays a fixed list of words as the audio clock passes them,
  whatever the audio is: for testing an app's handling of specific transcripts.

Plug a real engine by implementing the two-method protocol and passing a factory
(``EmulatorConfig(recognizer=...)``) that builds one recognizer per channel.
"""

from __future__ import annotations

import re
from array import array
from collections.abc import Mapping, Sequence
from typing import Protocol

import attrs

from ._codec import SAMPLE_RATES, DecodedWord, ToneDecoder
from ._pcm import Resampler

__all__ = [
    "RecognizedWord",
    "Recognizer",
    "RecognizerFactory",
    "ScriptedRecognizer",
    "ToneRecognizer",
]


@attrs.frozen(kw_only=True)
class RecognizedWord:
    """One word on a channel's audio clock (seconds of audio from the stream's start)."""

    word: str
    """The normalized lower-case token, Deepgram's ``word``."""
    punctuated_word: str
    """The token as it would be written (capitals, punctuation), Deepgram's ``punctuated_word``."""
    start: float
    end: float
    confidence: float = 1.0


class Recognizer(Protocol):
    """Speech recognition for one channel, fed incrementally."""

    def feed(self, samples: array[int]) -> Sequence[RecognizedWord]:
        """Take the next int16 samples; return the words whose audio is now complete."""
        ...

    def flush(self) -> Sequence[RecognizedWord]:
        """Return every word still in progress and start afresh (times keep counting)."""
        ...


class RecognizerFactory(Protocol):
    """Builds the recognizer for one channel of one session."""

    def __call__(self, *, channel: int, sample_rate: int) -> Recognizer: ...


class ToneRecognizer:
    """The tone-codec decoder behind the ``Recognizer`` protocol (the emulator's default).

    ``ToneRecognizer`` itself is a ``RecognizerFactory``: ``ToneRecognizer(channel=0,
    sample_rate=16000)``. The codec works at multiples of 8 kHz (``SAMPLE_RATES``); audio
    at any other rate of 8 kHz or more (44100, 22050, ...) is resampled to 8 kHz first.
    Below 8 kHz it recognizes nothing, so such audio still drives the energy-based events
    (SpeechStarted, endpointing) with empty transcripts.
    """

    def __init__(self, *, channel: int, sample_rate: int) -> None:
        self.channel = channel
        self.sample_rate = sample_rate
        self._resampler: Resampler | None = None
        self._decoder: ToneDecoder | None = None
        if sample_rate in SAMPLE_RATES:
            self._decoder = ToneDecoder(sample_rate)
        elif sample_rate >= 8000:
            self._resampler = Resampler(sample_rate, 8000)
            self._decoder = ToneDecoder(8000)

    def feed(self, samples: array[int]) -> list[RecognizedWord]:
        """Decode the next samples; return the words whose tones have fully arrived."""
        if self._decoder is None:
            return []
        if self._resampler is not None:
            samples = self._resampler.feed(samples)
        return _convert(self._decoder.feed(samples))

    def flush(self) -> list[RecognizedWord]:
        """Return the word cut off by ``Finalize`` or the end, if any of it decodes (halved
        confidence when incomplete); later audio starts a new word."""
        if self._decoder is None:
            return []
        return _convert(self._decoder.flush())


def _convert(decoded: Sequence[DecodedWord]) -> list[RecognizedWord]:
    return [
        RecognizedWord(
            word=d.word,
            punctuated_word=d.punctuated_word,
            start=d.start,
            end=d.end,
            confidence=d.confidence,
        )
        for d in decoded
    ]


_TOKEN = re.compile(r"[^\W_]+(?:'[^\W_]+)*")


class ScriptedRecognizer:
    """Replays scripted words as the audio clock passes their ``end``, ignoring the audio.

    ``flush`` releases the words that have started, cut to the audio fed so far; words
    that have not started stay scripted. Build the factory with ``ScriptedRecognizer.factory``.
    """

    def __init__(self, *, words: Sequence[RecognizedWord], sample_rate: int) -> None:
        self.sample_rate = sample_rate
        self._words = sorted(words, key=lambda w: (w.start, w.end))
        self._samples_fed = 0

    @property
    def position(self) -> float:
        """Seconds of audio fed so far."""
        return self._samples_fed / self.sample_rate

    def feed(self, samples: array[int]) -> list[RecognizedWord]:
        """Advance the clock by ``len(samples)``; return the scripted words that ended by now."""
        self._samples_fed += len(samples)
        position = self.position
        done = 0
        while done < len(self._words) and self._words[done].end <= position:
            done += 1
        out, self._words = self._words[:done], self._words[done:]
        return out

    def flush(self) -> list[RecognizedWord]:
        """Return the words already started, their ``end`` cut to the audio fed so far."""
        position = self.position
        started = [w for w in self._words if w.start < position]
        self._words = [w for w in self._words if w.start >= position]
        return [attrs.evolve(w, end=min(w.end, position)) for w in started]

    @staticmethod
    def factory(
        script: Sequence[RecognizedWord] | Mapping[int, Sequence[RecognizedWord]],
    ) -> RecognizerFactory:
        """A factory giving each channel its words: one list for channel 0 only, or a
        mapping ``{channel: words}``. Channels without a script hear nothing."""
        by_channel: Mapping[int, Sequence[RecognizedWord]] = (
            script if isinstance(script, Mapping) else {0: script}
        )

        def build(*, channel: int, sample_rate: int) -> Recognizer:
            return ScriptedRecognizer(words=by_channel.get(channel, ()), sample_rate=sample_rate)

        return build

    @staticmethod
    def words_from_text(
        text: str,
        *,
        start: float = 0.0,
        word_seconds: float = 0.4,
        gap_seconds: float = 0.1,
        confidence: float = 0.99,
    ) -> list[RecognizedWord]:
        """Script ``text`` as back-to-back words: ``"Hello, world."`` gives ``hello``
        (punctuated ``Hello,``) then ``world`` (``world.``), each ``word_seconds`` long."""
        words = []
        at = start
        for token in text.split():
            match = _TOKEN.search(token)
            if match is None:
                continue
            words.append(
                RecognizedWord(
                    word=match.group().lower(),
                    punctuated_word=token,
                    start=at,
                    end=at + word_seconds,
                    confidence=confidence,
                )
            )
            at += word_seconds + gap_seconds
        return words
