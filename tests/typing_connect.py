"""Checked by mypy --strict (``tests/test_typing_connect.py``), never run: each adapter's
``connect`` overloads tell the type checker which stream a user gets.

mypy sees the adapters as the ``transports`` folder (installed, they are
``dgproto.transports``), so that is what this module imports."""

from __future__ import annotations

from typing_extensions import assert_type

from dgproto import FluxOptions, LiveOptions, ReconnectPolicy
from transports import asyncio as aio
from transports import sync
from transports import trio as tr

FLUX = FluxOptions(model="flux-general-en", encoding="linear16", sample_rate=16000)
LIVE = LiveOptions(model="nova-3")


async def asyncio_streams(flag: bool) -> None:
    async with aio.connect(FLUX, api_key="k") as flux:
        assert_type(flux, aio.FluxStream)
        await flux.configure(thresholds={"eot_threshold": 0.8})
        await flux.force_end_turn()
    async with aio.connect(FLUX, reconnect=True) as flux_again:
        assert_type(flux_again, aio.FluxReconnectingStream)
    async with aio.connect(FLUX, reconnect=ReconnectPolicy()) as flux_policy:
        assert_type(flux_policy, aio.FluxReconnectingStream)
    async with aio.connect(LIVE, url="ws://127.0.0.1:1") as live:
        assert_type(live, aio.ListenStream)
        await live.finalize()
    async with aio.connect() as default:
        assert_type(default, aio.ListenStream)
    async with aio.connect(LIVE, reconnect=True) as live_again:
        assert_type(live_again, aio.ReconnectingStream)
    async with aio.connect(LIVE, reconnect=flag) as either:
        assert_type(
            either,
            aio.ListenStream | aio.ReconnectingStream | aio.FluxStream | aio.FluxReconnectingStream,
        )


async def trio_streams() -> None:
    async with tr.connect(FLUX) as flux:
        assert_type(flux, tr.FluxStream)
    async with tr.connect(FLUX, reconnect=True) as flux_again:
        assert_type(flux_again, tr.FluxReconnectingStream)
    async with tr.connect(LIVE) as live:
        assert_type(live, tr.ListenStream)
    async with tr.connect(LIVE, reconnect=True) as live_again:
        assert_type(live_again, tr.ReconnectingStream)


def sync_streams() -> None:
    with sync.connect(FLUX) as flux:
        assert_type(flux, sync.FluxStream)
        flux.force_end_turn()
    with sync.connect(FLUX, reconnect=True) as flux_again:
        assert_type(flux_again, sync.FluxReconnectingStream)
    with sync.connect(LIVE) as live:
        assert_type(live, sync.ListenStream)
    with sync.connect(LIVE, reconnect=True) as live_again:
        assert_type(live_again, sync.ReconnectingStream)


def misuse() -> None:
    with sync.connect(FLUX) as flux:
        flux.finalize()  # type: ignore[attr-defined]
    with sync.connect(LIVE) as live:
        live.force_end_turn()  # type: ignore[attr-defined]
