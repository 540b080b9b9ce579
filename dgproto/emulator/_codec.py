"""The emulator's "speech": a tone codec whose audio carries its own transcript.

``synthesize(text)`` turns words into real PCM tones and ``ToneDecoder`` turns the tones
back into words with timestamps on the stream's audio clock. A client that drops,
duplicates, reorders or truncates audio therefore gets visibly different words back, so
the emulator can test a client end to end without a speech model.

Design, and why (the decoder must run in real time for many streams in pure Python):

* **Nine tones, two per character.** Symbols are 20 ms tones at 500 + 350·k Hz (k = 0..8,
  500..3300 Hz: inside the 300-3400 Hz telephone band, a multiple of 50 Hz so each symbol
  holds whole cycles and the phase runs on without clicks). A character is a base-9
  digit pair, so 81 codes cover a-z, A-Z (case is kept, so ``punctuated_word`` comes back
  exactly), 0-9 and ``, . ? ! ; : - '``. The 350 Hz spacing is over five frequency bins
  of the decoding window, so symbols survive µ-law/A-law, white noise and any gain.
* **A checksum per word.** Two more symbols carry a position-sensitive hash of the codes.
  A word whose audio was cut, spliced or duplicated almost never verifies, so damaged
  audio loses words instead of inventing plausible ones; arbitrary audio (music, speech)
  fails the tone-purity test or the checksum.
* **Synchronisation from energy, not search.** Per sample the decoder does only C-level
  work: a loudness byte from the sample's high byte (``bytes.translate``), then a count
  of loud bytes per 1 ms block (``bytearray.count`` mapped in C). A word starts at the
  first loud sample of the first sound block (each word starts at a cosine peak, so the
  onset is sharp) and ends before two quiet blocks. Isolated noise peaks do not make a
  block sound, so they neither start words nor split gaps. Symbol windows then sit at
  fixed offsets from the onset; the word length must fit the symbol grid (±2.5 ms).
* **One cheap classification per symbol.** The central 15 ms of each symbol is
  subsampled to 8 kHz (so every rate costs the same). Its zero-crossing count (sign bytes
  by ``translate``, one big-int XOR, a popcount) picks the nearest tone, and only three
  tones are then correlated (``sum(map(mul, ...))`` runs in C) to confirm it and measure
  its purity: the share of the window's energy in that tone. No filter bank runs per
  sample. Measured: about 3 ms of CPU per second of audio, whatever the rate.
* **Layout.** Words in a sentence are separated by 5 ms of silence: long enough to resync,
  too short to look like a pause to a VAD using 10-20 ms frames (every such frame inside a
  sentence is at least half tone). A word ending in ``.``, ``?`` or ``!`` is followed by
  500 ms of silence, a real pause for endpointing. The audio ends right after the last
  symbol otherwise, so its last word is *not* terminated: ``ToneDecoder.feed`` reports a
  word only once the quiet after it has arrived, and ``flush`` (the emulator's
  Finalize/CloseStream) reports the rest. Concatenate pieces with ``silence()`` between.
* **Exactness.** Every decision is made on fixed absolute sample positions (blocks are
  aligned to the stream), so any chunking of the stream yields the same words and times.

Timestamps are ``samples / sample_rate`` of the audio fed, within 0.25 ms of ``layout``
on clean audio. Tolerated: peak amplitude 0.05..1 and white noise up to about -38 dBFS
(a standard deviation of about 400).
"""

from __future__ import annotations

import itertools
import math
import sys
from array import array
from collections.abc import Iterable, Sequence
from functools import lru_cache
from operator import mul

import attrs

from dgproto.emulator import _pcm

__all__ = [
    "ALPHABET",
    "MAX_WORD_CHARS",
    "PUNCTUATION",
    "RESAMPLED_RATES",
    "SAMPLE_RATES",
    "SPEECH_RMS_THRESHOLD",
    "SYMBOL_SECONDS",
    "TERMINATOR_SECONDS",
    "TONE_FREQUENCIES",
    "WORD_GAP_SECONDS",
    "SENTENCE_ENDS",
    "SENTENCE_GAP_SECONDS",
    "DecodedWord",
    "ToneDecoder",
    "WordSpan",
    "frame_rms",
    "layout",
    "silence",
    "synthesize",
]

#: Sample rates the codec synthesizes and decodes: multiples of the 8 kHz working rate.
SAMPLE_RATES: tuple[int, ...] = (8000, 16000, 24000, 32000, 48000)
#: Other rates ``synthesize`` writes (CD and DAW audio), by resampling 48 kHz audio; the
#: emulator's ``ToneRecognizer`` resamples them back to 8 kHz to decode.
RESAMPLED_RATES: tuple[int, ...] = (11025, 22050, 44100)
#: Characters a word may contain. A character's code is its index here.
ALPHABET = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789,.?!;:-'"
#: Characters stripped from the ends of a word to make Deepgram's normalized ``word``.
PUNCTUATION = ",.?!;:-'"
#: A word ending in one of these ends a sentence and is followed by a pause.
SENTENCE_ENDS = ".?!"
#: Longest word, in characters (the decoder gives up on longer loud stretches).
MAX_WORD_CHARS = 40
#: The symbol tones in Hz; symbol value k is ``TONE_FREQUENCIES[k]``.
TONE_FREQUENCIES: tuple[int, ...] = tuple(500 + 350 * k for k in range(9))
SYMBOL_SECONDS = 0.020
WORD_GAP_SECONDS = 0.005
SENTENCE_GAP_SECONDS = 0.500
#: ``feed`` reports a word once this much audio after its last symbol has arrived (it needs
#: two quiet 1 ms blocks after the word, so never before 1.75 ms).
TERMINATOR_SECONDS = 0.003
#: A 10-20 ms frame whose ``frame_rms`` reaches this counts as speech. Inside a synthesized
#: sentence every 10 ms frame is at least half tone, so its RMS is at least
#: ``amplitude * 16384`` (819 at amplitude 0.05, the quietest that decodes reliably);
#: ``silence()`` has RMS 0 (8 for A-law, which has no exact zero).
SPEECH_RMS_THRESHOLD = 300.0

_WORK_RATE = 8000  # every layout constant below is in samples at this rate
_SYMBOL = 160  # 20 ms
_MARGIN = 20  # skipped at each end of a symbol: tolerates onset error and edges (2.5 ms)
_WINDOW = _SYMBOL - 2 * _MARGIN  # correlation window (15 ms)
_BLOCK = 8  # loudness is decided per 1 ms block, aligned to the stream
_BLOCK_MIN_LOUD = 2  # loud samples that make a block loud: a tone has half or more
_GAP_BLOCKS = 2  # quiet blocks in a row that end a word
_TOLERANCE = _MARGIN  # allowed mismatch between a word's length and the symbol grid
_WORD_GAP = 40  # 5 ms
_SENTENCE_GAP = 4000  # 500 ms
_GAP = bytes(_GAP_BLOCKS)
_MIN_PURITY = 0.5  # a symbol window needs this share of its energy in one tone
_BASE = len(TONE_FREQUENCIES)
_CODES = _BASE * _BASE
_MAX_SYMBOLS = 2 * MAX_WORD_CHARS + 2
_SPACING = TONE_FREQUENCIES[1] - TONE_FREQUENCIES[0]
_HZ_PER_CROSSING = _WORK_RATE / (2 * _WINDOW)
_BANK = tuple(
    (
        tuple(math.cos(2 * math.pi * f * n / _WORK_RATE) for n in range(_WINDOW)),
        tuple(math.sin(2 * math.pi * f * n / _WORK_RATE) for n in range(_WINDOW)),
    )
    for f in TONE_FREQUENCIES
)
# Per-sample tests read only the high byte of each int16 through a ``bytes.translate``
# table. "Loud" means |sample| >= 1024 (-30 dBFS): high byte 4..127 or 128..251. A 1 ms
# block is sound when a quarter of its samples are loud, so isolated noise peaks neither
# start words nor split gaps, while every tone at amplitude >= 0.05 fills its blocks.
_HIGH_BYTE = 0 if sys.byteorder == "big" else 1  # of a sample in array('h').tobytes()
_LOUD_TABLE = bytes(int(4 <= b <= 251) for b in range(256))
_NEGATIVE_TABLE = bytes(int(b >= 128) for b in range(256))


@attrs.frozen(kw_only=True)
class DecodedWord:
    """One word recovered from the audio, in Deepgram's ``words[]`` terms."""

    word: str
    punctuated_word: str
    start: float
    end: float
    #: In (0, 1]: the worst symbol's tone purity; halved for an unverified cut-off word.
    confidence: float


@attrs.frozen(kw_only=True)
class WordSpan:
    """Where ``synthesize`` puts a word: seconds from the start of its audio."""

    word: str
    punctuated_word: str
    start: float
    end: float


@attrs.frozen
class _Token:
    text: str
    codes: tuple[int, ...]

    @property
    def symbols(self) -> list[int]:
        digits = [*self.codes, _checksum(self.codes)]
        return [d for code in digits for d in divmod(code, _BASE)]

    @property
    def ends_sentence(self) -> bool:
        return self.text[-1] in SENTENCE_ENDS


def _checksum(codes: Sequence[int]) -> int:
    value = len(codes)
    for code in codes:
        value = (value * 31 + code + 1) % _CODES
    return value


def _normalize(punctuated: str) -> str:
    return punctuated.strip(PUNCTUATION).lower()


def _tokens(text: str) -> list[_Token]:
    tokens = []
    for token in text.split():
        for char in token:
            if char not in ALPHABET:
                raise ValueError(
                    f"text: character {char!r} (in {token!r}) is not in the tone alphabet: "
                    "a-z, A-Z, 0-9 and , . ? ! ; : - '"
                )
        if not _normalize(token):
            raise ValueError(f"text: word {token!r} has no letter or digit")
        if len(token) > MAX_WORD_CHARS:
            raise ValueError(f"text: word {token!r} is longer than {MAX_WORD_CHARS} characters")
        tokens.append(_Token(token, tuple(map(ALPHABET.index, token))))
    return tokens


def _check_rate(sample_rate: int, also: tuple[int, ...] = ()) -> None:
    if not isinstance(sample_rate, int) or sample_rate not in SAMPLE_RATES:
        rates = ", ".join(map(str, sorted(SAMPLE_RATES + also)))
        raise ValueError(f"sample_rate must be one of {rates}; got {sample_rate!r}")


def _check_channels(channels: int) -> None:
    if isinstance(channels, bool) or not isinstance(channels, int) or channels < 1:
        raise ValueError(f"channels must be a positive integer; got {channels!r}")


def _spans(tokens: Sequence[_Token]) -> list[tuple[int, int]]:
    """(start, end) of each word, in working samples from the start of the audio."""
    spans = []
    position = 0
    for index, token in enumerate(tokens):
        if index:
            position += _SENTENCE_GAP if tokens[index - 1].ends_sentence else _WORD_GAP
        end = position + _SYMBOL * len(token.symbols)
        spans.append((position, end))
        position = end
    return spans


def layout(text: str) -> list[WordSpan]:
    """Where ``synthesize(text)`` places each word; the same at every sample rate."""
    tokens = _tokens(text)
    return [
        WordSpan(
            word=_normalize(token.text),
            punctuated_word=token.text,
            start=start / _WORK_RATE,
            end=end / _WORK_RATE,
        )
        for token, (start, end) in zip(tokens, _spans(tokens), strict=True)
    ]


@lru_cache(maxsize=256)
def _tone(sample_rate: int, peak: int, value: int) -> array[int]:
    step = 2 * math.pi * TONE_FREQUENCIES[value] / sample_rate
    count = sample_rate * _SYMBOL // _WORK_RATE
    return array("h", (round(peak * math.cos(step * n)) for n in range(count)))


def _render(symbols: Iterable[int], sample_rate: int, peak: int) -> array[int]:
    """The tones of a symbol sequence, back to back."""
    out = array("h")
    for value in symbols:
        out.extend(_tone(sample_rate, peak, value))
    return out


def _finish(mono: array[int], encoding: str, channels: int) -> bytes:
    return _pcm.encode(mono if channels == 1 else _pcm.interleave([mono] * channels), encoding)


def synthesize(
    text: str,
    *,
    sample_rate: int = 16000,
    encoding: str = "linear16",
    channels: int = 1,
    amplitude: float = 0.5,
) -> bytes:
    """Raw audio speaking ``text`` in tones (see the module docstring for the layout).

    Every channel carries the same signal. ``encoding`` is one of ``_pcm.ENCODINGS``;
    ``amplitude`` is the peak as a fraction of full scale (0.05 or more decodes reliably).
    """
    if sample_rate in RESAMPLED_RATES:
        base = synthesize(text, sample_rate=48000, amplitude=amplitude)
        mono = _pcm.resample(_pcm.linear16_to_samples(base), 48000, sample_rate)
        _pcm.check_encoding(encoding)
        _check_channels(channels)
        return _finish(mono, encoding, channels)
    _check_rate(sample_rate, RESAMPLED_RATES)
    _pcm.check_encoding(encoding)
    _check_channels(channels)
    if not 0.0 < amplitude <= 1.0:
        raise ValueError(f"amplitude must be in (0, 1]; got {amplitude!r}")
    peak = round(amplitude * 32767)
    factor = sample_rate // _WORK_RATE
    tokens = _tokens(text)
    mono = array("h")
    for token, (start, _end) in zip(tokens, _spans(tokens), strict=True):
        mono.extend(array("h", bytes(2 * (start * factor - len(mono)))))
        mono.extend(_render(token.symbols, sample_rate, peak))
    if tokens and tokens[-1].ends_sentence:
        mono.extend(array("h", bytes(2 * _SENTENCE_GAP * factor)))
    return _finish(mono, encoding, channels)


def silence(
    seconds: float, *, sample_rate: int = 16000, encoding: str = "linear16", channels: int = 1
) -> bytes:
    """``seconds`` of digital silence (rounded to whole samples) in the given format."""
    _check_rate(sample_rate)
    _pcm.check_encoding(encoding)
    _check_channels(channels)
    if not 0.0 <= seconds < math.inf:
        raise ValueError(f"seconds must be a finite number >= 0; got {seconds!r}")
    return _finish(array("h", bytes(2 * round(seconds * sample_rate))), encoding, channels)


def frame_rms(samples: Sequence[int]) -> float:
    """Root mean square of int16 samples (0.0 for none): the VAD's energy measure."""
    if not samples:
        return 0.0
    return math.sqrt(sum(map(mul, samples, samples)) / len(samples))


def _classify(window: array[int]) -> tuple[int, float]:
    """(symbol value, purity): the strongest tone and its share of the window's energy.

    The zero-crossing count (C-level: a sign byte per sample from a translate table, then
    one big-int XOR and a popcount) estimates the frequency, so only the three tones
    around it are correlated.
    """
    signs = int.from_bytes(window.tobytes()[_HIGH_BYTE::2].translate(_NEGATIVE_TABLE), "big")
    crossings = (signs ^ (signs >> 8)).bit_count() - (window[0] < 0)
    nearest = round((crossings * _HZ_PER_CROSSING - TONE_FREQUENCIES[0]) / _SPACING)
    first = min(max(nearest - 1, 0), _BASE - 3)
    values = window.tolist()
    powers = {
        value: sum(map(mul, values, _BANK[value][0])) ** 2
        + sum(map(mul, values, _BANK[value][1])) ** 2
        for value in range(first, first + 3)
    }
    value = max(powers, key=powers.__getitem__)
    energy = sum(map(mul, values, values))
    purity = 2.0 * powers[value] / (_WINDOW * energy) if energy else 0.0
    return value, min(purity, 1.0)


def _codes(symbols: Sequence[tuple[int, float]]) -> list[int] | None:
    """Character codes of symbol pairs, or None if any symbol is impure."""
    if any(purity < _MIN_PURITY for _value, purity in symbols):
        return None
    return [
        high * _BASE + low
        for (high, _p), (low, _q) in zip(symbols[0::2], symbols[1::2], strict=False)
    ]


def _text(codes: Sequence[int]) -> str | None:
    if not codes or max(codes) >= len(ALPHABET):
        return None
    text = "".join(ALPHABET[code] for code in codes)
    return text if _normalize(text) else None


class ToneDecoder:
    """Incremental decoder for one channel: int16 samples in, completed words out.

    ``feed`` reports a word once its last symbol and the quiet that terminates it (two
    quiet 1 ms blocks, so 2-3 ms) have arrived, and only if it verifies (checksum and tone
    purity); ``flush`` reports the word the end of the stream cut off. Results do not
    depend on chunking.

    Positions are in input samples. Per sample the decoder only appends the audio and a
    loudness byte (``bytes.translate`` on the high bytes); per 1 ms block it counts loud
    bytes (``bytearray.count`` mapped in C); onsets and gaps are found with ``find``.
    Symbol windows are subsampled to 8 kHz and classified once each.
    """

    def __init__(self, sample_rate: int) -> None:
        _check_rate(sample_rate)
        self.sample_rate = sample_rate
        #: Loud stretches that did not decode to a verified word (damage or non-tone audio).
        self.words_rejected = 0
        factor = sample_rate // _WORK_RATE
        self._factor = factor
        self._block = _BLOCK * factor
        self._block_min_loud = _BLOCK_MIN_LOUD * factor
        self._symbol = _SYMBOL * factor
        self._margin = _MARGIN * factor
        self._window = _WINDOW * factor
        self._tolerance = _TOLERANCE * factor
        # Absolute positions: audio and loud hold samples from _base on, blocks hold the
        # complete blocks from _base on (_base is always a block boundary).
        self._audio = array("h")
        self._loud = bytearray()  # 1 where |sample| is loud
        self._blocks = bytearray()  # 1 where the block is sound
        self._base = 0
        self._scan = 0  # block where the next search for an onset or a gap starts
        self._onset: int | None = None  # first sample of the word being received
        self._symbols: list[tuple[int, float]] = []

    @property
    def samples_fed(self) -> int:
        """Samples fed so far: the stream's audio clock."""
        return self._base + len(self._audio)

    @property
    def seconds_fed(self) -> float:
        """Seconds of audio fed so far."""
        return self.samples_fed / self.sample_rate

    def feed(self, samples: Iterable[int]) -> list[DecodedWord]:
        """Take int16 samples; return the words whose audio and terminator are now complete."""
        chunk = samples if isinstance(samples, array) and samples.typecode == "h" else None
        if chunk is None:
            chunk = array("h", samples)
        self._audio.extend(chunk)
        self._loud += chunk.tobytes()[_HIGH_BYTE::2].translate(_LOUD_TABLE)
        size = self._block
        first = len(self._blocks) * size
        starts = range(first, len(self._loud) - size + 1, size)
        ends = itertools.count(first + size, size)
        counts = map(self._loud.count, itertools.repeat(1), starts, ends)
        self._blocks += bytes(map(self._block_min_loud.__le__, counts))
        words = self._advance()
        self._trim()
        return words

    def flush(self) -> list[DecodedWord]:
        """End of stream: the word cut off by it, if any of it decodes.

        A word whose audio is complete but unterminated comes back verified. Otherwise the
        complete character pairs so far are returned unverified, with halved confidence.
        The decoder stays usable; audio that continues the cut word will not verify.
        """
        onset = self._onset
        if onset is None:
            return []
        # Complete quiet blocks at the end (fewer than a gap) are not part of the word.
        quiet_tail = len(self._blocks) - 1 - self._blocks.rfind(1)
        limit = (len(self._blocks) - quiet_tail) * self._block if quiet_tail else len(self._loud)
        stop = self._base + self._loud.rfind(1, 0, limit) + 1
        symbols = self._symbols
        self._reset_word(scan=self._base // self._block + len(self._blocks))
        word = self._verified(onset, stop, symbols)
        if word is not None:
            return [word]
        complete = (stop - onset - self._margin - self._window) // self._symbol + 1
        pairs = symbols[: max(complete - complete % 2, 0)]
        codes = _codes(pairs)
        text = None if codes is None else _text(codes)
        if text is None:
            self.words_rejected += stop - onset >= self._symbol
            return []
        confidence = min(purity for _value, purity in pairs) / 2
        return [self._word(text, onset, stop, confidence)]

    def _reset_word(self, *, scan: int) -> None:
        self._onset = None
        self._symbols = []
        self._scan = scan

    def _word(self, text: str, start: int, end: int, confidence: float) -> DecodedWord:
        return DecodedWord(
            word=_normalize(text),
            punctuated_word=text,
            start=start / self.sample_rate,
            end=end / self.sample_rate,
            confidence=round(confidence, 4),
        )

    def _verified(
        self, onset: int, stop: int, symbols: Sequence[tuple[int, float]]
    ) -> DecodedWord | None:
        length = stop - onset
        count = (length + self._symbol // 2) // self._symbol
        misfit = abs(length - count * self._symbol) > self._tolerance
        if misfit or count < 4 or count % 2 or count > len(symbols):
            return None
        used = symbols[:count]
        codes = _codes(used)
        if codes is None or _checksum(codes[:-1]) != codes[-1]:
            return None
        text = _text(codes[:-1])
        if text is None:
            return None
        return self._word(text, onset, stop, min(purity for _value, purity in used))

    def _advance(self) -> list[DecodedWord]:
        words: list[DecodedWord] = []
        first_block = self._base // self._block
        end_block = first_block + len(self._blocks)
        while True:
            if self._onset is None:
                found = self._blocks.find(1, self._scan - first_block)
                if found < 0:
                    self._scan = end_block
                    return words
                self._scan = first_block + found
                self._onset = self._base + self._loud.find(1, found * self._block)
            found = self._blocks.find(_GAP, self._scan - first_block)
            if found < 0:
                self._decode_symbols(self._onset, self.samples_fed)
                self._scan = max(self._onset // self._block, end_block - _GAP_BLOCKS + 1)
                return words
            stop = self._base + self._loud.rfind(1, 0, found * self._block) + 1
            self._decode_symbols(self._onset, stop)
            word = self._verified(self._onset, stop, self._symbols)
            if word is not None:
                words.append(word)
            elif stop - self._onset >= self._symbol:
                self.words_rejected += 1
            self._reset_word(scan=first_block + found)

    def _decode_symbols(self, onset: int, stop: int) -> None:
        """Classify every symbol window of the current word that ends by ``stop``."""
        while len(self._symbols) < _MAX_SYMBOLS:
            start = onset + len(self._symbols) * self._symbol + self._margin - self._base
            if self._base + start + self._window > stop:
                return
            window = self._audio[start : start + self._window : self._factor]
            self._symbols.append(_classify(window))

    def _trim(self) -> None:
        """Forget audio no future decision needs (memory stays bounded on endless sound)."""
        keep = (self._scan - 1) * self._block  # one block more: the end of a word before a gap
        if self._onset is not None and len(self._symbols) < _MAX_SYMBOLS:
            next_window = self._onset + len(self._symbols) * self._symbol + self._margin
            keep = min(keep, next_window - next_window % self._block)
        keep = max(keep, self._base)
        drop = keep - self._base
        del self._audio[:drop]
        del self._loud[:drop]
        del self._blocks[: drop // self._block]
        self._base = keep
