"""The connection's receive path gives wsproto's outcome (see tests/inbound_diff.py)."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .helpers import raw_frame
from .inbound_diff import compare
from .test_inbound import CASES, streams


@pytest.mark.parametrize("name", sorted(CASES))
@pytest.mark.parametrize("with_101", [False, True])
def test_named_streams_match_wsproto(name: str, with_101: bool) -> None:
    compare(CASES[name], 1 << 20, with_101=with_101)
    compare(CASES[name], 4, with_101=with_101)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    chunks=streams(),
    max_size=st.sampled_from([1 << 20, 1 << 20]) | st.integers(1, 80),
    with_101=st.booleans(),
)
def test_any_stream_split_anywhere_matches_wsproto(
    chunks: list[bytes], max_size: int, with_101: bool
) -> None:
    compare(chunks, max_size, with_101=with_101)


def test_a_real_results_frame_decodes_like_wsproto_did() -> None:
    from .helpers import fixture_text

    text = fixture_text("listen_v1_results_final_speech_final_wire_capture.json").encode()
    compare([raw_frame(0x1, text), raw_frame(0x1, text + b"\n")], 1 << 20, with_101=True)
