"""``FluxConnection``: the sans-I/O client core for Deepgram Flux (``/v2/listen``).

The WebSocket session (handshake, auth, rejections, close classification, pings,
deadlines, the outbound FIFO, audio frames) is ``_session.Session``, shared with
``ListenConnection``. Flux adds its options (``FluxOptions``), its message registry
(``decode_flux_message``), its legality table (``FLUX_TRANSITIONS``), and two commands:
``configure`` and ``force_end_turn``.

Flux has no ``KeepAlive`` and no ``Finalize`` (either ends the session with
``UNPARSABLE_CLIENT_MESSAGE``, research/protocol.md §5.1), so this class offers neither;
an idle Flux stream stays open on WebSocket pings (``Config.ping_interval``). A Flux
``Error`` message is fatal: it arrives as ``ServerError`` and the server's close frame
follows, whose ``Closed.error_code`` is the Error's ``code`` when the close reason names
none.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from ._audio import bytes_per_second
from ._config import Config
from ._events import Event, FluxConnected, ServerError
from ._flux_messages import decode_flux_message, encode_flux_configure, encode_force_end_turn
from ._flux_options import FluxOptions
from ._options import Auth
from ._session import USER_AGENT, Session, Tracking, classify_close
from ._state import FLUX_TRANSITIONS, Input

__all__ = ["FLUX_DEFAULT_CONFIG", "FluxConnection"]

#: Without ``config=``: pings every 5 s. Flux has no KeepAlive, and an idle stream stays
#: open only on WebSocket pings (research/protocol.md §5.1, NET ``Client.cs``), so they
#: stay on here even if ``Config``'s own default ever changes.
FLUX_DEFAULT_CONFIG = Config(ping_interval=5.0)


class FluxConnection(Session):
    """A Deepgram Flux turn-taking stream, as a pure state machine.

    Driven exactly like ``ListenConnection`` (the ``StreamConnection`` surface); events
    are ``Connected`` (HTTP 101), ``FluxConnected``, ``TurnInfo``, ``ConfigureSuccess`` /
    ``ConfigureFailure``, ``ServerWarning``, ``ServerError``, ``UnknownMessage``,
    ``MalformedMessage`` and, last, ``Closed``.
    """

    def __init__(
        self,
        *,
        options: FluxOptions,
        auth: Auth | None = None,
        host: str = "api.deepgram.com",
        path: str = "/v2/listen",
        config: Config | None = None,
        extra_headers: Sequence[tuple[str, str]] = (),
        user_agent: str = USER_AGENT,
        tracking: Tracking | None = None,
    ) -> None:
        if not isinstance(options, FluxOptions):
            raise TypeError(f"options must be FluxOptions, got {type(options).__name__}")
        self.options = options
        super().__init__(
            options=options,
            auth=auth,
            host=host,
            path=path,
            config=config if config is not None else FLUX_DEFAULT_CONFIG,
            extra_headers=extra_headers,
            user_agent=user_agent,
            table=FLUX_TRANSITIONS,
            decode=decode_flux_message,
            bytes_per_second=bytes_per_second(options.encoding, options.sample_rate, 1),
            tracking=tracking,
        )
        self._fatal_code: str | None = None

    def configure(
        self,
        thresholds: Mapping[str, float] | None = None,
        keyterms: Sequence[str] | None = None,
        language_hints: Sequence[str] | None = None,
        numerals: bool | None = None,
        *,
        now: float,
    ) -> None:
        """Send ``Configure``; ``ConfigureSuccess`` (or ``ConfigureFailure``) answers it.

        ``thresholds`` may hold ``eot_threshold`` (0.5-1.0), ``eager_eot_threshold``
        (0.3-0.9) and ``eot_timeout_ms`` (500-60000), checked like ``FluxOptions``;
        ``keyterms`` and ``language_hints`` replace the lists in force. Bad values raise
        ``ValueError`` and send nothing.
        """
        text = encode_flux_configure(thresholds, keyterms, language_hints, numerals)
        self._command(Input.CONFIGURE)
        self._send_text(text, now=now)

    def force_end_turn(self, *, now: float) -> None:
        """End the current turn now: Flux answers with ``EndOfTurn`` (``trigger="manual"``)."""
        self._command(Input.FORCE_END_TURN)
        self._send_text(encode_force_end_turn(), now=now)

    # ------------------------------------------------------------------ session hooks

    def _on_message(self, event: Event) -> None:
        if isinstance(event, ServerError):
            self._fatal_code = event.code
        elif isinstance(event, FluxConnected) and self._request_id is None:
            self._request_id = event.request_id

    def _classify(self, code: int, reason: str) -> tuple[str | None, bool]:
        error_code, retryable = classify_close(code, reason)
        return error_code or self._fatal_code, retryable
