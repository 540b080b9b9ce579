"""FluxOptions: the /v2/listen query on LiveOptions' rules (ranges from deepgram-sdk 7.17)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dgproto import FluxOptions, LiveOptions

MODEL = "flux-general-en"


@pytest.mark.parametrize(
    ("field", "good", "bad"),
    [
        ("eot_threshold", [0.5, 0.7, 1.0, 1], [0.49, 1.01, True, "0.7", float("nan")]),
        ("eager_eot_threshold", [0.3, 0.9], [0.29, 0.91, "x"]),
        ("eot_timeout_ms", [500, 5000, 60000], [499, 60001, 5000.0, False]),
        ("sample_rate", [8000, 16000], [0, -1, 1.5]),
        ("encoding", ["linear16", "mulaw", "ogg-opus"], ["flac", "LINEAR16", 1]),
    ],
)
def test_ranges_and_choices(field: str, good: list[Any], bad: list[Any]) -> None:
    for value in good:
        assert getattr(FluxOptions(model=MODEL, **{field: value}), field) == value
    for value in bad:
        with pytest.raises(ValueError, match=f"FluxOptions.{field} must be"):
            FluxOptions(model=MODEL, **{field: value})


def test_every_parameter_goes_to_the_query_in_declaration_order() -> None:
    options = FluxOptions(
        model=MODEL,
        encoding="linear16",
        sample_rate=16000,
        eot_threshold=0.75,
        eager_eot_threshold=0.4,
        eot_timeout_ms=3000,
        keyterm=["Deepgram", "two words"],
        language_hint=["en", "es"],
        profanity_filter=True,
        numerals=False,
        redact=["numbers"],
        mip_opt_out=True,
        tag=["a"],
        params={"future": ["1", "2"]},
    )
    assert options.to_query() == (
        "model=flux-general-en&encoding=linear16&sample_rate=16000&eot_threshold=0.75"
        "&eager_eot_threshold=0.4&eot_timeout_ms=3000&keyterm=Deepgram&keyterm=two%20words"
        "&language_hint=en&language_hint=es&profanity_filter=true&numerals=false"
        "&redact=numbers&mip_opt_out=true&tag=a&future=1&future=2"
    )
    assert FluxOptions.from_query(options.to_query()) == options
    assert "language" not in {name for name, _ in options.to_params()}  # Flux has none


def test_model_is_required_and_params_follow_liveoptions_rules() -> None:
    with pytest.raises(TypeError):
        FluxOptions()  # type: ignore[call-arg]
    with pytest.raises(ValueError, match=r"FluxOptions\.model is required"):
        FluxOptions.from_query("encoding=linear16")
    with pytest.raises(ValueError, match=r"FluxOptions\.model must be a non-empty str"):
        FluxOptions(model="")
    with pytest.raises(
        ValueError, match=r"collides with the typed field FluxOptions\.eot_threshold"
    ):
        FluxOptions(model=MODEL, eot_threshold=0.8, params={"eot_threshold": "0.9"})
    with pytest.raises(ValueError, match=r"FluxOptions\.keyterm must be a list of strings"):
        FluxOptions(model=MODEL, keyterm="Deepgram")  # type: ignore[arg-type]
    unknown = FluxOptions(model="flux-general-multi", params={"eot_threshold": "0.95"})
    assert unknown.to_query() == "model=flux-general-multi&eot_threshold=0.95"
    assert repr(FluxOptions(model=MODEL, keyterm=[])) == "FluxOptions(model='flux-general-en')"
    assert repr(LiveOptions(model="nova-3")) == "LiveOptions(model='nova-3')"


@given(
    eot=st.floats(0.5, 1.0),
    eager=st.none() | st.floats(0.3, 0.9),
    timeout=st.none() | st.integers(500, 60000),
    terms=st.lists(
        st.text(min_size=1).filter(lambda t: not any(0xD800 <= ord(c) < 0xE000 for c in t)),
        max_size=3,
    ),
)
def test_query_round_trips(
    eot: float, eager: float | None, timeout: int | None, terms: list[str]
) -> None:
    options = FluxOptions(
        model=MODEL,
        eot_threshold=eot,
        eager_eot_threshold=eager,
        eot_timeout_ms=timeout,
        keyterm=terms,
    )
    assert FluxOptions.from_query(options.to_query()) == options
