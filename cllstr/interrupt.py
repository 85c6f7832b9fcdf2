"""Ctrl-C at a safe point: :class:`StopRequest` turns the first SIGINT into a flag that a long loop (training steps,
synthesis chunks) reads between units of work, so the unit under way finishes, what was done is saved consistently,
and no interrupt lands inside a finaliser; a second Ctrl-C interrupts at once."""

from __future__ import annotations

import signal
import threading
from typing import Any

__all__ = ["StopRequest"]


class StopRequest:
    """Install on construction (main thread only; elsewhere it never fires), restore with :meth:`close`.

    Attributes:
        requested: A SIGINT arrived since construction.
    """

    def __init__(self) -> None:
        self.requested = False
        self._previous: Any = None
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handle)

    def _handle(self, signum: int, frame: Any) -> None:
        self.requested = True
        signal.signal(signal.SIGINT, self._previous)

    def check(self) -> None:
        """Raise ``KeyboardInterrupt`` when a stop was requested (call it between units of work)."""
        if self.requested:
            raise KeyboardInterrupt

    def close(self) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
            self._previous = None

    def __enter__(self) -> StopRequest:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
