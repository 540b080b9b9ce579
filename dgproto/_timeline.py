"""What ``dgproto replay FILE`` prints: a recording's transcript and its timeline.

Reading a recording should not need a network or the emulator: this turns one into the
final transcript an app would have built and a one-line-per-milestone summary
(handshake, finals, KeepAlives, Finalize replies, close), each line stamped with its
wall time since open and the audio clock. Pure: the CLI reads the file and prints.
"""

from __future__ import annotations

from typing import Any

from ._recording import FrameRecord, Recording

__all__ = ["render", "timeline", "transcript"]


def _alternative(message: dict[str, Any]) -> dict[str, Any]:
    channel = message.get("channel")
    alternatives = channel.get("alternatives") if isinstance(channel, dict) else None
    first = alternatives[0] if isinstance(alternatives, list) and alternatives else None
    return first if isinstance(first, dict) else {}


def _finals(recording: Recording) -> list[tuple[FrameRecord, dict[str, Any]]]:
    out = []
    for frame in recording.frames:
        message = frame.json() if frame.direction == "recv" else None
        if (
            isinstance(message, dict)
            and message.get("type") == "Results"
            and message.get("is_final")
        ):
            out.append((frame, message))
    return out


def transcript(recording: Recording) -> str:
    """The finals' transcripts in order, joined by spaces (empty finals skipped)."""
    parts = [str(_alternative(m).get("transcript") or "") for _, m in _finals(recording)]
    return " ".join(p for p in parts if p)


def _stamp(frame: FrameRecord) -> str:
    audio = "   -   " if frame.audio is None else f"{frame.audio:7.3f}"
    return f"{frame.t:8.3f}s  audio {audio}s  "


def _describe(frame: FrameRecord, pending_finalizes: list[int]) -> str | None:
    """One timeline line for a frame, or ``None`` for audio and other routine frames."""
    if frame.kind == "close":
        who = "client" if frame.direction == "send" else "server"
        reason = f" {frame.reason!r}" if frame.reason else ""
        return f"close {frame.code}{reason} from {who}"
    message = frame.json()
    kind = frame.message_type
    if frame.direction == "send":
        if kind == "Finalize":
            pending_finalizes.append(1)
        return kind if kind in ("KeepAlive", "Finalize", "CloseStream", "Configure") else None
    if kind == "Results" and message.get("is_final"):
        start = float(message.get("start") or 0.0)
        end = start + float(message.get("duration") or 0.0)
        flags = " speech_final" if message.get("speech_final") else ""
        if message.get("from_finalize"):
            flags += " from_finalize"
            if pending_finalizes:
                pending_finalizes.pop()
                flags += " (Finalize reply)"
        text = _alternative(message).get("transcript") or ""
        return f"final [{start:.2f}-{end:.2f}]{flags} {text!r}"
    if kind in ("UtteranceEnd", "Metadata", "Error", "SpeechStarted"):
        return kind
    return None


def timeline(recording: Recording) -> list[str]:
    """The milestones of a session, one line each, in wire order."""
    request, response = recording.request, recording.response
    lines = [f"{request.t:8.3f}s  request {request.method} {request.path}"]
    if response is None:
        lines.append("(no handshake answer recorded)")
    else:
        request_id = response.header("dg-request-id") or "-"
        answer = "accepted" if response.status == 101 else "rejected"
        line = f"{response.t:8.3f}s  handshake {response.status} {answer} (request id {request_id})"
        if response.body:
            line += f": {response.body.decode('utf-8', errors='replace')}"
        lines.append(line)
    pending: list[int] = []
    for frame in recording.frames:
        described = _describe(frame, pending)
        if described is not None:
            lines.append(_stamp(frame) + described)
    return lines


def render(recording: Recording) -> str:
    """The whole printout: the transcript, a blank line, then the timeline."""
    text = transcript(recording) or "(no final transcript)"
    return "\n".join([text, "", *timeline(recording)]) + "\n"
