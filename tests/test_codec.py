"""The emulator's signal layer: PCM conversions and the tone codec (speech that carries
its own transcript). The codec must be exact on clean audio whatever the chunking, report
a word only once its audio is complete, survive G.711, noise and gain, and stay cheap."""

from __future__ import annotations

import functools
import itertools
import math
import random
import warnings
from array import array
from collections.abc import Iterator, Sequence
from operator import add

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dgproto.emulator import _codec, _pcm
from dgproto.emulator._codec import (
    ALPHABET,
    MAX_WORD_CHARS,
    SAMPLE_RATES,
    SPEECH_RMS_THRESHOLD,
    TERMINATOR_SECONDS,
    TONE_FREQUENCIES,
    DecodedWord,
    ToneDecoder,
    WordSpan,
    frame_rms,
    layout,
    silence,
    synthesize,
)

FAST = settings(max_examples=40, deadline=None)
TEXT = "Hello, world. Don't panic; it's 42 ok? Zebra-crossing QUARTZ jumps!"

# --- helpers -------------------------------------------------------------------------


def mono(data: bytes, encoding: str = "linear16") -> array[int]:
    return _pcm.decode(data, encoding)


def decode_all(
    samples: Sequence[int], rate: int, chunks: Iterator[int] | None = None
) -> list[DecodedWord]:
    """Feed ``samples`` in chunks of the given sizes (all at once by default), then flush."""
    decoder = ToneDecoder(rate)
    words: list[DecodedWord] = []
    position = 0
    while position < len(samples):
        size = len(samples) if chunks is None else next(chunks)
        words += decoder.feed(samples[position : position + size])
        position += size
    return words + decoder.flush()


def cycle(sizes: Sequence[int]) -> Iterator[int]:
    while True:
        yield from sizes


def texts(words: Sequence[DecodedWord | WordSpan]) -> list[str]:
    return [w.punctuated_word for w in words]


def assert_matches_layout(words: Sequence[DecodedWord], text: str, tolerance: float) -> None:
    spans = layout(text)
    assert texts(words) == texts(spans)
    assert [w.word for w in words] == [s.word for s in spans]
    for word, span in zip(words, spans, strict=True):
        assert abs(word.start - span.start) <= tolerance, (word, span)
        assert abs(word.end - span.end) <= tolerance, (word, span)
        assert 0.0 < word.confidence <= 1.0


def symbol_audio(codes: Sequence[int], rate: int, *, checksum: int | None = None) -> array[int]:
    """A word made of arbitrary character codes (even ones ``synthesize`` refuses)."""
    digits = [*codes, _codec._checksum(codes) if checksum is None else checksum]
    symbols = [d for code in digits for d in divmod(code, len(TONE_FREQUENCIES))]
    return _codec._render(symbols, rate, 16384)


def zeros(seconds: float, rate: int) -> array[int]:
    return array("h", bytes(2 * round(seconds * rate)))


@functools.cache
def _unit_noise() -> tuple[float, ...]:
    rng = random.Random(20261120)
    return tuple(rng.gauss(0.0, 1.0) for _ in range(1 << 16))


def noise(count: int, sigma: float, seed: int) -> array[int]:
    """Seeded white Gaussian noise (a seed-dependent walk through a fixed pool)."""
    pool = _unit_noise()
    start, stride = seed % len(pool), 2 * (seed % 1000) + 1  # odd strides visit every entry
    return array("h", (round(sigma * pool[(start + stride * n) % len(pool)]) for n in range(count)))


word_text = st.text(alphabet=ALPHABET, min_size=1, max_size=7).filter(
    lambda w: any(c.isalnum() for c in w)
)
rates = st.sampled_from([8000, 16000, 24000, 48000])


# --- PCM -----------------------------------------------------------------------------


def test_mulaw_known_vectors() -> None:
    assert _pcm.mulaw_encode([0, -1, 32767, -32768, 1000, -1000]) == bytes(
        [0xFF, 0x7E, 0x80, 0x00, 0xCE, 0x4E]
    )
    assert _pcm.mulaw_decode(bytes([0x00, 0x80, 0xFF, 0x7F, 0xCE, 0x4E])).tolist() == [
        -32124,
        32124,
        0,
        0,
        988,
        -988,
    ]


def test_alaw_known_vectors() -> None:
    assert _pcm.alaw_encode([0, -1, 32767, -32768, 1000, -1000]) == bytes(
        [0xD5, 0x55, 0xAA, 0x2A, 0xFA, 0x7A]
    )
    assert _pcm.alaw_decode(bytes([0xD5, 0x55, 0xAA, 0x2A])).tolist() == [8, -8, 32256, -32256]


def test_g711_matches_the_reference_for_every_sample_and_code() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        audioop = pytest.importorskip("audioop")  # removed in Python 3.13
    every = array("h", range(-32768, 32768))
    raw = every.tobytes()  # audioop works in host order, like array
    codes = bytes(range(256))
    assert _pcm.mulaw_encode(every) == audioop.lin2ulaw(raw, 2)
    assert _pcm.alaw_encode(every) == audioop.lin2alaw(raw, 2)
    assert _pcm.mulaw_decode(codes).tobytes() == audioop.ulaw2lin(codes, 2)
    assert _pcm.alaw_decode(codes).tobytes() == audioop.alaw2lin(codes, 2)


def test_g711_codes_survive_a_round_trip() -> None:
    codes = bytes(range(256))
    assert _pcm.alaw_encode(_pcm.alaw_decode(codes)) == codes
    # µ-law has two zeros; 0x7F ("-0") comes back as 0xFF.
    assert _pcm.mulaw_encode(_pcm.mulaw_decode(codes)) == codes.replace(b"\x7f", b"\xff")


@FAST
@given(st.lists(st.integers(-32768, 32767), max_size=50))
def test_g711_error_is_bounded(samples: list[int]) -> None:
    for encoding in ("mulaw", "alaw"):
        back = _pcm.decode(_pcm.encode(samples, encoding), encoding)
        for original, restored in zip(samples, back, strict=True):
            assert abs(original - restored) <= max(16, abs(original) // 16)


def test_linear_known_bytes() -> None:
    assert _pcm.samples_to_linear16([1, -2, 32767]) == b"\x01\x00\xfe\xff\xff\x7f"
    assert _pcm.samples_to_linear16(array("h", [1])) == b"\x01\x00"
    assert _pcm.samples_to_linear32([1, -1]) == b"\x00\x00\x01\x00\x00\x00\xff\xff"
    # linear32 keeps the top 16 bits (an arithmetic shift right by 16).
    assert _pcm.linear32_to_samples(b"\xff\xff\x01\x00\x00\x00\xff\xff").tolist() == [1, -1]


@FAST
@given(st.lists(st.integers(-32768, 32767), max_size=60), st.sampled_from(_pcm.ENCODINGS))
def test_linear_encodings_round_trip(samples: list[int], encoding: str) -> None:
    data = _pcm.encode(samples, encoding)
    assert len(data) == len(samples) * _pcm.SAMPLE_WIDTH[encoding]
    if encoding.startswith("linear"):
        assert _pcm.decode(data, encoding).tolist() == samples


def test_partial_samples_are_rejected_by_whole_buffer_decoders() -> None:
    with pytest.raises(ValueError, match="linear16 needs a multiple of 2 bytes, got 3"):
        _pcm.linear16_to_samples(b"\x00\x00\x00")
    with pytest.raises(ValueError, match="linear32"):
        _pcm.decode(b"\x00" * 6, "linear32")


def test_unknown_encoding_is_named() -> None:
    for call in (
        lambda: _pcm.encode([0], "opus"),
        lambda: _pcm.decode(b"", "opus"),
        lambda: _pcm.PcmDecoder("opus"),
        lambda: synthesize("hi", encoding="opus"),
        lambda: silence(1, encoding="opus"),
    ):
        with pytest.raises(ValueError, match=r"encoding must be one of linear16, .*'opus'"):
            call()


@FAST
@given(
    st.integers(1, 3),
    st.sampled_from(_pcm.ENCODINGS),
    st.lists(st.integers(-32768, 32767), max_size=90),
    st.lists(st.integers(1, 13), min_size=1, max_size=12),
)
def test_pcm_decoder_carries_partial_frames_and_deinterleaves(
    channels: int, encoding: str, samples: list[int], sizes: list[int]
) -> None:
    samples = samples[: len(samples) - len(samples) % channels]
    expected = _pcm.decode(_pcm.encode(samples, encoding), encoding)
    data = _pcm.encode(samples, encoding)
    decoder = _pcm.PcmDecoder(encoding, channels)
    got: list[list[int]] = [[] for _ in range(channels)]
    position = 0
    for size in cycle(sizes):
        if position >= len(data):
            break
        out = decoder.feed(data[position : position + size])
        assert len(out) == channels
        assert len({len(c) for c in out}) == 1  # whole frames only
        for channel, part in zip(got, out, strict=True):
            channel.extend(part)
        position += size
        assert decoder.pending_bytes == min(position, len(data)) % decoder.frame_bytes
    assert got == [expected[c::channels].tolist() for c in range(channels)]
    assert decoder.frames_decoded == len(samples) // channels


def test_pcm_decoder_keeps_a_trailing_odd_byte() -> None:
    decoder = _pcm.PcmDecoder("linear16", 2)
    assert [c.tolist() for c in decoder.feed(b"\x01\x00\x02")] == [[], []]
    assert decoder.pending_bytes == 3
    assert [c.tolist() for c in decoder.feed(b"\x00\x03")] == [[1], [2]]
    assert decoder.pending_bytes == 1


@pytest.mark.parametrize("channels", [0, -1, True, 1.5])
def test_pcm_decoder_rejects_bad_channels(channels: object) -> None:
    with pytest.raises(ValueError, match="channels must be a positive integer"):
        _pcm.PcmDecoder("linear16", channels)  # type: ignore[arg-type]


def test_interleave_pads_short_channels() -> None:
    assert _pcm.interleave([[1, 2, 3], [4]]).tolist() == [1, 4, 2, 0, 3, 0]
    assert _pcm.interleave([array("h", [5])]).tolist() == [5]
    with pytest.raises(ValueError, match="channels: need at least one"):
        _pcm.interleave([])


# --- layout and synthesis ------------------------------------------------------------


def test_layout_is_documented_timing() -> None:
    spans = layout("Hello, world. ok")
    # (6 characters + checksum) x 2 symbols x 20 ms = 280 ms; 5 ms between words in a
    # sentence, 500 ms after a sentence end.
    assert spans == [
        WordSpan(word="hello", punctuated_word="Hello,", start=0.0, end=0.28),
        WordSpan(word="world", punctuated_word="world.", start=0.285, end=0.565),
        WordSpan(word="ok", punctuated_word="ok", start=1.065, end=1.185),
    ]
    assert layout("") == []


def test_words_keep_inner_punctuation_and_lose_outer() -> None:
    spans = layout("'Tis Don't e.g. well-known, -x-")
    assert [s.word for s in spans] == ["tis", "don't", "e.g", "well-known", "x"]


@pytest.mark.parametrize("rate", SAMPLE_RATES)
@pytest.mark.parametrize("encoding", _pcm.ENCODINGS)
def test_synthesized_length_follows_layout(rate: int, encoding: str) -> None:
    audio = synthesize("One two.", sample_rate=rate, encoding=encoding, channels=2)
    seconds = layout("One two.")[-1].end + _codec.SENTENCE_GAP_SECONDS
    assert len(audio) == round(seconds * rate) * 2 * _pcm.SAMPLE_WIDTH[encoding]
    assert synthesize("", sample_rate=rate, encoding=encoding) == b""


def test_tones_are_in_the_telephone_band_and_well_separated() -> None:
    assert all(300 <= f <= 3400 and f % 50 == 0 for f in TONE_FREQUENCIES)
    assert min(b - a for a, b in itertools.pairwise(TONE_FREQUENCIES)) >= 300
    assert len(TONE_FREQUENCIES) ** 2 >= len(ALPHABET) + 1


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: synthesize("hi", sample_rate=44000), "sample_rate must be one of 8000, .*44100"),
        (
            lambda: ToneDecoder(44100),
            "sample_rate must be one of 8000, 16000, 24000, 32000, 48000;",
        ),
        (lambda: _pcm.Resampler(0, 8000), "rates must be positive"),
        (lambda: synthesize("hi", sample_rate=16000.0), "sample_rate .* got 16000.0"),  # type: ignore[arg-type]
        (lambda: silence(1, sample_rate=True), "sample_rate"),
        (lambda: ToneDecoder(11025), "sample_rate"),
        (lambda: synthesize("hi", channels=0), "channels must be a positive integer"),
        (lambda: silence(1, channels=True), "channels"),
        (lambda: synthesize("hi", amplitude=0.0), r"amplitude must be in \(0, 1\]"),
        (lambda: synthesize("hi", amplitude=1.5), "amplitude"),
        (lambda: synthesize("hi", amplitude=math.nan), "amplitude"),
        (lambda: synthesize("héllo"), "text: character 'é' .*'héllo'"),
        (lambda: layout('say "hi"'), "character '\"'"),
        (lambda: synthesize("a -- b"), "text: word '--' has no letter or digit"),
        (lambda: synthesize("x" * (MAX_WORD_CHARS + 1)), "longer than 40 characters"),
        (lambda: silence(-1), "seconds must be a finite number >= 0"),
        (lambda: silence(math.inf), "seconds"),
    ],
)
def test_bad_arguments_are_named(call: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        call()  # type: ignore[operator]


@pytest.mark.parametrize("encoding", _pcm.ENCODINGS)
def test_silence_is_silent(encoding: str) -> None:
    audio = silence(0.25, sample_rate=8000, encoding=encoding, channels=2)
    samples = _pcm.decode(audio, encoding)
    assert len(samples) == 4000
    assert frame_rms(samples) <= 8  # A-law has no exact zero
    assert silence(0, sample_rate=8000) == b""


def test_vad_threshold_separates_synthesized_speech_from_silence() -> None:
    text = "Speech keeps going between words, then pauses. Again"
    for rate in (8000, 48000):
        samples = mono(synthesize(text, sample_rate=rate, amplitude=0.05))
        spans = layout(text)
        frame = rate // 100  # 10 ms frames, at every alignment step of 1 ms
        step = rate // 1000
        for first, last in ((spans[0].start, spans[-2].end), (spans[-1].start, spans[-1].end)):
            for start in range(round(first * rate), round(last * rate) - frame + 1, step):
                rms = frame_rms(samples[start : start + frame])
                assert rms >= SPEECH_RMS_THRESHOLD * 2, (rate, start, rms)
        pause = samples[round(spans[-2].end * rate) : round(spans[-1].start * rate)]
        assert frame_rms(pause) == 0.0
    assert frame_rms([]) == 0.0
    assert frame_rms([3, -4]) == pytest.approx(math.sqrt(12.5))


# --- decoding: exactness -------------------------------------------------------------


@pytest.mark.parametrize("rate", SAMPLE_RATES)
@pytest.mark.parametrize("encoding", _pcm.ENCODINGS)
def test_exact_after_every_encoding_at_every_rate(rate: int, encoding: str) -> None:
    samples = _pcm.decode(synthesize(TEXT, sample_rate=rate, encoding=encoding), encoding)
    words = decode_all(samples, rate)
    assert_matches_layout(words, TEXT, tolerance=0.0003)
    assert min(w.confidence for w in words) > 0.9


@FAST
@given(
    st.lists(word_text, min_size=1, max_size=5),
    rates,
    st.sampled_from(["linear16", "mulaw"]),
    st.integers(1, 2),
    st.lists(st.floats(0.0, 1.0), max_size=25),
    st.integers(0, 999),
)
def test_round_trip_through_any_chunking(
    words: list[str],
    rate: int,
    encoding: str,
    channels: int,
    cuts: list[float],
    lead_in: int,
) -> None:
    text = " ".join(words)
    data = silence(lead_in / rate, sample_rate=rate, encoding=encoding, channels=channels)
    data += synthesize(text, sample_rate=rate, encoding=encoding, channels=channels)
    pcm = _pcm.PcmDecoder(encoding, channels)
    decoders = [ToneDecoder(rate) for _ in range(channels)]
    got: list[list[DecodedWord]] = [[] for _ in range(channels)]
    bounds = [0, *sorted(round(cut * len(data)) for cut in cuts), len(data)]
    for start, end in itertools.pairwise(bounds):  # any split, even mid-sample or empty
        for channel, part in enumerate(pcm.feed(data[start:end])):
            got[channel] += decoders[channel].feed(part)
    for channel, decoder in enumerate(decoders):
        got[channel] += decoder.flush()
        assert decoder.samples_fed == len(data) // channels // _pcm.SAMPLE_WIDTH[encoding]
        assert decoder.seconds_fed == decoder.samples_fed / rate
    assert got[0] == got[-1]
    lead = lead_in / rate  # timestamps count the lead-in silence
    shifted = [attrs.evolve(w, start=w.start - lead, end=w.end - lead) for w in got[0]]
    assert_matches_layout(shifted, text, tolerance=0.0003)
    # Chunking never changes anything: the one-shot decode is identical.
    assert got[0] == decode_all(_pcm.decode(data, encoding)[::channels], rate)


def test_one_sample_at_a_time_equals_one_shot() -> None:
    samples = mono(synthesize("Go, 2 it!", sample_rate=8000))
    one_shot = decode_all(samples, 8000)
    assert texts(one_shot) == ["Go,", "2", "it!"]
    decoder = ToneDecoder(8000)
    single = [w for s in samples.tolist() for w in decoder.feed([s])] + decoder.flush()
    assert single == one_shot


# --- decoding: when words appear -----------------------------------------------------


@pytest.mark.parametrize("rate", [8000, 48000])
def test_a_word_appears_only_once_its_audio_and_terminator_arrived(rate: int) -> None:
    text = "one two, three. four"
    samples = mono(synthesize(text, sample_rate=rate))
    spans = {s.punctuated_word: s for s in layout(text)}
    decoder = ToneDecoder(rate)
    step = rate // 2000  # 0.5 ms chunks
    seen: list[str] = []
    for position in range(0, len(samples), step):
        for word in decoder.feed(samples[position : position + step]):
            span = spans[word.punctuated_word]
            # Never before the word's audio plus 1.75 ms of quiet; at most 3 ms later.
            assert span.end + 0.00175 <= decoder.seconds_fed
            assert decoder.seconds_fed <= span.end + TERMINATOR_SECONDS + 0.0005
            seen.append(word.punctuated_word)
    # The last word has no terminator in the audio: only the flush reports it.
    assert seen == ["one", "two,", "three."]
    flushed = decoder.flush()
    assert texts(flushed) == ["four"]
    assert flushed[0].confidence > 0.9  # complete, so verified
    assert decoder.flush() == []


def test_a_word_cut_by_the_end_of_the_stream_flushes_its_complete_characters() -> None:
    rate = 16000
    samples = mono(synthesize("Hello", sample_rate=rate))
    per_char = 2 * rate * 20 // 1000  # two 20 ms symbols
    whole = decode_all(samples, rate)
    # A symbol is complete once its central 15 ms window is (2.5 ms before its end).
    margin = rate * 25 // 10000
    for cut, expected in (
        (3 * per_char + 5, "Hel"),
        (4 * per_char - margin - 1, "Hel"),
        (4 * per_char - margin, "Hell"),
        (4 * per_char, "Hell"),
    ):
        words = decode_all(samples[:cut], rate)
        assert texts(words) == [expected]
        assert words[0].word == expected.lower()
        assert words[0].start == 0.0
        assert abs(words[0].end - cut / rate) < 0.001
        assert words[0].confidence == pytest.approx(whole[0].confidence / 2, abs=0.01)
    # Less than one character: nothing decodes.
    assert decode_all(samples[: per_char - margin - 1], rate) == []


def test_audio_continuing_a_flushed_word_does_not_invent_words() -> None:
    rate = 8000
    samples = mono(synthesize("alpha beta gamma", sample_rate=rate))
    decoder = ToneDecoder(rate)
    cut = round(layout("alpha beta gamma")[1].start * rate) + 650  # inside "beta"
    assert texts(decoder.feed(samples[:cut])) == ["alpha"]
    flushed = decoder.flush()  # Finalize mid-word: the complete characters of "beta"
    assert texts(flushed) == ["be"]
    assert decoder.words_rejected == 0
    rest = decoder.feed(samples[cut:]) + decoder.flush()
    assert texts(rest) == ["gamma"]
    assert decoder.words_rejected == 1  # the tail of "beta"
    assert decoder.samples_fed == len(samples)


# --- decoding: damage shows --------------------------------------------------------


def test_dropped_duplicated_and_reordered_audio_shows_in_the_words() -> None:
    rate = 16000
    text = "alpha beta gamma delta"
    samples = mono(synthesize(text, sample_rate=rate))
    spans = layout(text)

    def cut(start: float, end: float) -> array[int]:
        return samples[round(start * rate) : round(end * rate)]

    inside_beta = spans[1].start + 0.1
    dropped = cut(0, inside_beta) + cut(inside_beta + 0.01, 99)
    assert texts(decode_all(dropped, rate)) == ["alpha", "gamma", "delta"]
    duplicated = cut(0, inside_beta + 0.02) + cut(inside_beta, 99)
    assert texts(decode_all(duplicated, rate)) == ["alpha", "gamma", "delta"]
    whole_word_twice = cut(0, spans[2].start) + cut(spans[1].start, 99)
    assert texts(decode_all(whole_word_twice, rate)) == ["alpha", "beta", "beta", "gamma", "delta"]
    swapped = cut(0, spans[1].start) + cut(spans[2].start, spans[3].start)
    swapped += cut(spans[1].start, spans[2].start) + cut(spans[3].start, 99)
    assert texts(decode_all(swapped, rate)) == ["alpha", "gamma", "beta", "delta"]


def test_non_tone_audio_yields_no_words_and_bounded_memory() -> None:
    rate = 48000
    decoder = ToneDecoder(rate)
    loud_noise = noise(rate * 3, 6000.0, seed=1)  # 3 s without a gap: longer than any word
    for position in range(0, len(loud_noise), 960):
        assert decoder.feed(loud_noise[position : position + 960]) == []
        assert len(decoder._audio) < rate  # never the whole stream
    assert decoder.flush() == []
    assert decoder.feed(zeros(0.01, rate)) == []
    # A steady tone between two bank tones for 0.2 s, then a click shorter than a symbol.
    step = 2 * math.pi * 1000 / rate
    hum = array("h", (round(9000 * math.sin(step * n)) for n in range(rate // 5)))
    click = array("h", [9000] * 200)
    assert decoder.feed(hum + zeros(0.01, rate) + click + zeros(0.01, rate)) == []
    assert decoder.words_rejected == 2  # the noise and the hum; the click is too short
    assert decoder.feed(mono(synthesize("fine.", sample_rate=rate))) != []


@pytest.mark.parametrize(
    "codes",
    [
        [ALPHABET.index("-"), ALPHABET.index("-")],  # no letter or digit
        [0, 75],  # a code outside the alphabet
        [0] * (MAX_WORD_CHARS + 1),  # longer than any word
    ],
)
def test_checksummed_but_meaningless_words_are_rejected(codes: list[int]) -> None:
    rate = 8000
    samples = symbol_audio(codes, rate) + zeros(0.01, rate)
    decoder = ToneDecoder(rate)
    assert decoder.feed(samples) == []
    assert decoder.flush() == []
    assert decoder.words_rejected == 1


def test_a_bad_checksum_is_rejected_but_flush_may_still_salvage_characters() -> None:
    rate = 8000
    good = _codec._checksum([0, 1])
    samples = symbol_audio([0, 1], rate, checksum=(good + 1) % 81)
    decoder = ToneDecoder(rate)
    assert decoder.feed(samples + zeros(0.01, rate)) == []
    assert decoder.words_rejected == 1
    decoder = ToneDecoder(rate)
    assert decoder.feed(samples) == []
    # Unterminated and unverifiable: every complete character pair comes back, unverified.
    flushed = decoder.flush()
    assert texts(flushed) == ["ab" + ALPHABET[(good + 1) % 81]]
    assert flushed[0].confidence < 0.51


def test_odd_and_misfit_lengths_are_rejected() -> None:
    rate = 8000
    symbol = rate // 50
    tone = symbol_audio([0, 1], rate)
    for length in (3 * symbol, 5 * symbol, 4 * symbol + symbol // 2):
        decoder = ToneDecoder(rate)
        assert decoder.feed(tone[:length] + zeros(0.01, rate)) == []
        assert decoder.words_rejected == 1
    decoder = ToneDecoder(rate)
    assert decoder.feed(tone[: 2 * symbol] + zeros(0.01, rate)) == []  # checksum only


def test_impure_symbols_are_rejected() -> None:
    rate = 8000
    samples = symbol_audio([7, 8], rate)
    samples[400:520] = noise(120, 8000.0, seed=3)  # the third symbol's window is noise
    decoder = ToneDecoder(rate)
    assert decoder.feed(samples + zeros(0.01, rate)) == []
    assert decoder.words_rejected == 1
    decoder = ToneDecoder(rate)
    decoder.feed(samples)
    assert decoder.flush() == []  # flush cannot salvage impure characters either


# --- decoding: noise, gain, speed --------------------------------------------------


@pytest.mark.parametrize("rate", SAMPLE_RATES)
@pytest.mark.parametrize("amplitude", [0.05, 0.1, 0.9])
def test_noise_and_gain_are_tolerated(rate: int, amplitude: float) -> None:
    text = "Noisy line, LOUD or quiet: 100 words? yes!"
    clean = mono(synthesize(text, sample_rate=rate, amplitude=amplitude))
    noisy = array("h", map(add, clean, noise(len(clean), 300.0, seed=rate)))  # about -41 dBFS
    if rate == 8000:
        noisy = _pcm.mulaw_decode(_pcm.mulaw_encode(noisy))  # a noisy phone line
    words = decode_all(noisy, rate, cycle([rate // 50]))
    assert_matches_layout(words, text, tolerance=0.002)
    assert min(w.confidence for w in words) > 0.5


def test_gain_may_change_between_words() -> None:
    rate = 16000
    loud = mono(synthesize("Loud words.", sample_rate=rate, amplitude=0.9))
    quiet = mono(synthesize("quiet ones", sample_rate=rate, amplitude=0.06))
    words = decode_all(loud + quiet, rate)
    assert texts(words) == ["Loud", "words.", "quiet", "ones"]


@given(
    st.lists(st.integers(-32768, 32767), max_size=400),
    st.lists(st.integers(1, 97), min_size=1, max_size=8),
    st.sampled_from([(44100, 8000), (8000, 44100), (48000, 44100), (16000, 16000)]),
)
def test_resampler_is_exact_in_count_whatever_the_chunking(
    samples: list[int], cuts: list[int], rates: tuple[int, int]
) -> None:
    rate_in, rate_out = rates
    whole = _pcm.resample(samples, rate_in, rate_out)
    resampler = _pcm.Resampler(rate_in, rate_out)
    pieces = array("h")
    start = 0
    for cut in itertools.cycle(cuts):
        if start >= len(samples):
            break
        pieces += resampler.feed(samples[start : start + cut])
        start += cut
    assert pieces == whole
    # every output sample whose neighbours exist: ceil((n - 1) * out / in) of them
    expected = 0 if len(samples) < 2 else -(-(len(samples) - 1) * rate_out // rate_in)
    assert len(whole) == expected
    if rate_in == rate_out:
        assert list(whole) == samples[: len(whole)]


@pytest.mark.parametrize("rate", [11025, 22050, 44100])
def test_synthesize_at_cd_rates(rate: int) -> None:
    audio = synthesize("Hi there.", sample_rate=rate, encoding="mulaw", channels=2)
    seconds = len(audio) / 2 / rate
    assert seconds == pytest.approx(
        len(synthesize("Hi there.", sample_rate=8000)) / 2 / 8000, abs=0.001
    )
