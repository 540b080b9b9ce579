"""The speedups extra: used when installed, never needed, the same results either way.

``make test`` runs this with the speedups the dev group installs; ``make test-pure``
(``DGPROTO_PURE=1``, tests/conftest.py) runs it again with them blocked.
"""

from __future__ import annotations

import json
import os
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dgproto import Config, ListenConnection, LiveOptions, MalformedMessage, Results, Utterance
from dgproto._framing import NATIVE_APPLY_MASK, BinaryFrameWriter, apply_mask
from dgproto._json import default_loads

from .conftest import PURE
from .helpers import LivePair, fixture_text, raw_frame

WIRE = "listen_v1_results_final_speech_final_wire_capture.json"


def _orjson_loads() -> Any:
    try:
        import orjson
    except ImportError:
        return None
    return orjson.loads


def test_the_forced_fallbacks_are_in_force_or_the_speedups_are_used() -> None:
    conn = ListenConnection(options=LiveOptions())
    if PURE:
        assert conn._loads is json.loads
        assert NATIVE_APPLY_MASK is None
        assert BinaryFrameWriter()._apply_mask is None
    else:  # used whenever installed (the dev group installs them for make test)
        fast = _orjson_loads()
        assert conn._loads is (fast if fast is not None else json.loads)
        assert BinaryFrameWriter()._apply_mask is NATIVE_APPLY_MASK


def test_config_json_loads_still_wins() -> None:
    def mine(text: str) -> Any:
        return json.loads(text)

    conn = ListenConnection(options=LiveOptions(), config=Config(json_loads=mine))
    assert conn._loads is mine


@pytest.mark.parametrize("text", ["", "{", '{"type":"Results"} trailing', "[" * 100_000, "nan"])
def test_malformed_json_names_the_parsers_own_error(text: str) -> None:
    """The error text is whichever parser is in use's: pinned to it, not loosened."""
    pair = LivePair()
    pair.client.receive_data(raw_frame(0x1, text.encode()), now=1)
    (event,) = pair.pump()
    assert isinstance(event, MalformedMessage)
    assert event.data == text
    loads = default_loads()
    with pytest.raises(Exception) as raised:
        loads(text)
    assert event.error == f"not valid JSON: {raised.value}"


def test_a_real_results_decodes_the_same_with_either_parser() -> None:
    text = fixture_text(WIRE)
    pair = LivePair()
    pair.client.receive_data(raw_frame(0x1, text.encode() + b"\r\n"), now=1)
    events = pair.pump()
    assert [type(e) for e in events] == [Results, Utterance]  # the fixture is speech_final
    event = events[0]
    with_stdlib = LivePair(config=Config(json_loads=json.loads))
    with_stdlib.client.receive_data(raw_frame(0x1, text.encode()), now=1)
    assert with_stdlib.pump() == events
    assert (
        event.alternatives[0].words[-1].end
        == json.loads(text)["channel"]["alternatives"][0]["words"][-1]["end"]
    )


@pytest.mark.skipif(NATIVE_APPLY_MASK is None, reason="no C mask (speedups not installed)")
@settings(max_examples=300, deadline=None)
@given(
    payload=st.binary(max_size=300)
    | st.integers(0, 5000).map(lambda n: os.urandom(n))
    | st.sampled_from([640, 1023, 1024, 1025, 3200, 65535, 65536]).map(os.urandom),
    key=st.binary(min_size=4, max_size=4),
)
def test_the_c_mask_gives_the_pure_masks_bytes(payload: bytes, key: bytes) -> None:
    assert NATIVE_APPLY_MASK is not None
    assert NATIVE_APPLY_MASK(payload, key) == apply_mask(payload, key)
    native = BinaryFrameWriter(lambda n: key * (n // 4), native=True)
    pure = BinaryFrameWriter(lambda n: key * (n // 4), native=False)
    if payload:
        assert native.frame(payload) == pure.frame(payload)
