"""Results decoding: one real 9-word ``Results`` from text (or from its frame) to an event.

The message is a wire capture (``listen_v1_results_final_speech_final_wire_capture.json``,
1268 bytes). Every variant reads all nine words (``word``, ``start``, ``end``,
``confidence``), as an app would, so lazy parsers cannot win by not parsing.

From text, side by side:

* ``json.loads`` alone (the floor) and ``orjson.loads`` alone;
* dgproto ``decode_message(text)`` + words, with ``json.loads`` and with ``orjson.loads``
  (``Config.json_loads``);
* the official SDK (deepgram-sdk 7.x): ``json.loads`` + ``construct_type`` into its
  pydantic models, exactly as its socket client does for every message.

From the received frame (an unmasked server text frame) to the event, **the measure
that counts** (issue 13: it includes the framing and plumbing ``decode_message`` alone
leaves out, which is kept above as a breakdown row):

* dgproto ``conn.receive_data(frame, now=t)`` + ``conn.next_event()`` + words, without
  the speedups (``Config(json_loads=json.loads)``) and with them (the default when orjson
  is installed: ``dgproto._json.default_loads``);
* wsproto ``receive_data`` + ``events()`` + ``json.loads`` (framing plus the floor);
* websockets sans-I/O ``receive_data`` + ``events_received()`` + the SDK's parse (the
  framing the SDK's websockets client does, plus its decode).

Targets (issue 13): frame -> event + words <= 1.5x bare ``json.loads`` of the same text
with the standard library, <= 1x with the speedups, and the SDK's decode path (text ->
its models + words) >= 5x slower than dgproto's frame path.

Run alone: ``python -m benchmarks.bench_decode [--quick]``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from wsproto.events import TextMessage

from dgproto import Config, Results
from dgproto._messages import decode_message

from ._common import compare_trials, fixture_text, standalone_main
from ._peers import open_dgproto, open_websockets, open_wsproto, server_text_frame

FIXTURE = "listen_v1_results_final_speech_final_wire_capture.json"

JSON = "json.loads"
DECODE = "dgproto decode_message + words"
SDK = "deepgram-sdk json.loads + construct_type + words"
FRAME = "dgproto frame -> event + words (json.loads)"
FRAME_FAST = "dgproto frame -> event + words (speedups: orjson)"
SDK_FRAME = "websockets frame + deepgram-sdk parse + words"


def load_text() -> str:
    return fixture_text(FIXTURE)


def sdk_parser() -> Callable[[str], Any] | None:
    """The official SDK's receive path, or None when deepgram-sdk is not installed."""
    try:
        from deepgram.core.unchecked_base_model import construct_type
        from deepgram.listen.v1.socket_client import V1SocketClientResponse
    except ImportError:
        return None

    def parse(text: str) -> Any:
        return construct_type(type_=V1SocketClientResponse, object_=json.loads(text))  # type: ignore[arg-type]

    return parse


def orjson_loads() -> Callable[[str], Any] | None:
    try:
        import orjson  # type: ignore[import-not-found, unused-ignore]
    except ImportError:
        return None
    loads: Callable[[str], Any] = orjson.loads
    return loads


def _words(event: object) -> object:
    assert isinstance(event, Results)
    return [(w.word, w.start, w.end, w.confidence) for w in event.alternatives[0].words]


def _frame_path(loads: Callable[[str], Any] | None, frame: bytes) -> Callable[[], object]:
    conn, _ = open_dgproto(Config(json_loads=loads) if loads is not None else None)
    receive_data = conn.receive_data
    next_event = conn.next_event

    def run() -> object:
        receive_data(frame, now=1.0)
        words = _words(next_event())
        # a driver drains the queue: the first pass also queues the Utterance it ends
        while next_event() is not None:
            pass
        return words

    return run


def variants(text: str) -> dict[str, Callable[[], object]]:
    frame = server_text_frame(text)
    fast = orjson_loads()
    sdk = sdk_parser()

    def bare_loads() -> object:
        return json.loads(text)

    def dgproto_words() -> object:
        return _words(decode_message(text))

    found: dict[str, Callable[[], object]] = {JSON: bare_loads, DECODE: dgproto_words}
    if fast is not None:
        found["orjson.loads"] = lambda: fast(text)
        found["dgproto decode_message(orjson) + words"] = lambda: _words(decode_message(text, fast))
    if sdk is not None:

        def sdk_words() -> object:
            message = sdk(text)
            return [
                (w.word, w.start, w.end, w.confidence)
                for w in message.channel.alternatives[0].words
            ]

        found[SDK] = sdk_words

    found[FRAME] = _frame_path(json.loads, frame)
    if fast is not None:
        found[FRAME_FAST] = _frame_path(None, frame)  # the default: orjson when installed

    ws, _ = open_wsproto()

    def wsproto_frame() -> object:
        ws.receive_data(frame)
        return [json.loads(event.data) for event in ws.events() if isinstance(event, TextMessage)]

    found["wsproto frame + json.loads"] = wsproto_frame
    pair = open_websockets()
    if pair is not None and sdk is not None:
        client = pair[0]

        def websockets_sdk_frame() -> object:
            client.receive_data(frame)
            out = []
            for received in client.events_received():
                message = sdk(received.data.decode())
                out.append(
                    [
                        (w.word, w.start, w.end, w.confidence)
                        for w in message.channel.alternatives[0].words
                    ]
                )
            return out

        found[SDK_FRAME] = websockets_sdk_frame
    return found


def run(*, quick: bool = False) -> dict[str, Any]:
    text = load_text()
    seconds = 2.0 if quick else 15.0
    timings = compare_trials(lambda: variants(text), seconds=seconds, trials=1 if quick else 3)
    rows = [
        {
            "variant": name,
            **timings.row(name),
            "x_json_loads": round(timings.ratio(name, JSON), 2),
        }
        for name in timings.names()
    ]
    ours = timings.ratio(FRAME, JSON)
    targets: list[dict[str, Any]] = [
        {
            "name": "inbound: dgproto frame -> event + words (stdlib) / json.loads",
            "measured": round(ours, 2),
            "target": "<= 1.5x",
            "met": ours <= 1.5,
        },
        {
            "name": "decode (breakdown): dgproto decode_message + words / json.loads",
            "measured": round(timings.ratio(DECODE, JSON), 2),
            "target": "context",
            "met": None,
        },
    ]
    if FRAME_FAST in timings:
        fast = timings.ratio(FRAME_FAST, JSON)
        targets.append(
            {
                "name": "inbound: dgproto frame -> event + words (speedups) / json.loads",
                "measured": round(fast, 2),
                "target": "<= 1x",
                "met": fast <= 1.0,
            }
        )
    if SDK in timings:
        speedup = timings.ratio(SDK, FRAME)
        targets.append(
            {
                "name": "inbound: deepgram-sdk decode (text -> models + words) / dgproto frame "
                "-> event + words (stdlib)",
                "measured": round(speedup, 2),
                "target": ">= 5x",
                "met": speedup >= 5.0,
            }
        )
    if SDK_FRAME in timings:
        speedup = timings.ratio(SDK_FRAME, FRAME)
        targets.append(
            {
                "name": "decode (context): websockets+SDK frame path / dgproto frame path",
                "measured": round(speedup, 2),
                "target": "context",
                "met": None,
            }
        )
    return {
        "fixture": FIXTURE,
        "bytes": len(text.encode()),
        "rows": rows,
        "targets": targets,
        "seconds": seconds,
    }


def main() -> None:
    standalone_main(run, __doc__)


if __name__ == "__main__":
    main()
