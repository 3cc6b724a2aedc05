"""Waiting for a condition without sleeping blind (shared by the fault tests)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

_PAUSE = threading.Event()  # never set: pauses between polls


def wait_for(condition: Callable[[], object], timeout_s: float) -> bool:
    """Poll ``condition`` every 50 ms until it holds or the time is up."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        _PAUSE.wait(0.05)
    return bool(condition())
