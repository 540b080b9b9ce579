"""A client core and an emulator core joined in memory, on one virtual clock.

Both are sans-I/O, so a whole Deepgram session runs with no socket and no sleeping:
bytes move when a test pumps, and time moves only when it advances (firing every
deadline of both sides on the way, as the adapters and the server would).
"""

from __future__ import annotations

from dgproto import Event, StreamConnection
from dgproto.emulator import EmulatorConnection


class MemoryPipe:
    """A client core (``ListenConnection`` or ``FluxConnection``) <-> ``EmulatorConnection``.

    ``events`` collects the client's events.
    """

    def __init__(self, client: StreamConnection, server: EmulatorConnection, *, now: float) -> None:
        self.now = now
        self.client = client
        self.server = server
        self.events: list[Event] = []
        client.connect(now=now)
        self.pump()

    def pump(self) -> None:
        """Move bytes both ways (and EOFs, when one side closes) until both are quiet."""
        client, server = self.client, self.server
        for _ in range(10_000):
            moved = False
            if out := client.data_to_send():
                server.receive_data(out, now=self.now)
                moved = True
            if client.should_close_transport and not server.should_close_transport:
                server.receive_eof(now=self.now)
            if out := server.data_to_send():
                client.receive_data(out, now=self.now)
                moved = True
            if server.should_close_transport and not client.should_close_transport:
                client.receive_eof(now=self.now)
                moved = True
            self.events += client.events()
            if not moved:
                return
        raise AssertionError("the pipe never went quiet")  # pragma: no cover

    def advance(self, seconds: float) -> None:
        """Let ``seconds`` pass, firing both sides' deadlines in time order."""
        target = self.now + seconds
        while True:
            due = min((t for t in self.timers() if t is not None and t <= target), default=None)
            if due is None:
                break
            self.now = max(self.now, due)
            self.fire()
            self.pump()
        self.now = target
        self.pump()

    def timers(self) -> list[float | None]:
        """Every deadline in play (a subclass adds its own)."""
        return [self.client.get_timer(), self.server.get_timer()]

    def fire(self) -> None:
        """Run every handler whose deadline may have passed at ``self.now``."""
        self.client.handle_timer(now=self.now)
        self.server.handle_timer(now=self.now)
