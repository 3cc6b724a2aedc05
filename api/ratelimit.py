"""Limits on failed authentications per client address (brute-force guessing of tokens).

A token is 256 random bits, so guessing one is hopeless; the limiter still makes
each address pay for every wrong guess, keeps a guesser from loading the token
index and the database pool, and gives operations a signal (429s in the logs).

Rules:

* Only a *presented* token that fails (unknown, malformed, expired, revoked, or
  of a disabled user) counts. A request without ``Authorization`` is no guess
  and is answered 401 as before.
* After :data:`MAX_FAILURES` failures within :data:`WINDOW_S` seconds (or
  ``settings.api.auth_max_failures`` / ``auth_window_s`` where defined), every
  further authenticated request from that address gets 429 with
  ``Retry-After``, *without* the token being looked up: a guess made while
  blocked is never checked, so it can neither succeed nor tell the guesser
  anything. Blocked attempts are not counted, so the block ends
  :data:`WINDOW_S` after the oldest of the failures that caused it.
* A success does not clear the failures: an attacker holding one valid token
  must not reset its budget by interleaving it with guesses.
* The key is ``request.client.host``. ``X-Forwarded-For`` is trusted only when
  the direct peer is one of the configured proxies (``settings.api.trusted_proxies``
  when that field exists; none by default), since any client can write the header.
  Behind a proxy that is not configured all clients share one address and one
  budget: configure the proxy.
* Memory is bounded: at most :data:`MAX_KEYS` addresses are tracked (least
  recently failed evicted first), each with at most ``max_failures`` timestamps,
  and keys whose failures have all left the window are dropped.

The limiter is in-process: with several API workers each has its own count, so
the effective limit is ``workers x MAX_FAILURES``; still a bound, not a leak.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable

from fastapi import HTTPException, Request

MAX_FAILURES = 10
WINDOW_S = 60.0
MAX_KEYS = 10_000


class FailureLimiter:
    """A sliding-window count of failures per key, thread-safe and bounded.

    Parameters
    ----------
    max_failures
        Failures allowed within ``window_s``; the next attempt is refused.
    window_s
        Length of the sliding window in seconds.
    max_keys
        Most keys tracked at once; the least recently failed is evicted beyond.
    clock
        Monotonic seconds (injectable for tests).

    Examples
    --------
    >>> now = [0.0]
    >>> limiter = FailureLimiter(max_failures=2, window_s=10, clock=lambda: now[0])
    >>> limiter.failed("a"); limiter.failed("a")
    >>> limiter.retry_after("a"), limiter.retry_after("b")
    (10.0, None)
    >>> now[0] = 10.0
    >>> limiter.retry_after("a") is None
    True
    """

    def __init__(
        self,
        max_failures: int = MAX_FAILURES,
        window_s: float = WINDOW_S,
        *,
        max_keys: int = MAX_KEYS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_failures < 1 or window_s <= 0 or max_keys < 1:
            raise ValueError("max_failures, window_s and max_keys must be positive")
        self.max_failures = max_failures
        self.window_s = float(window_s)
        self.max_keys = max_keys
        self._clock = clock
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()
        self._lock = threading.Lock()

    def retry_after(self, key: str) -> float | None:
        """Seconds until ``key`` may try again, or None when it may try now."""
        now = self._clock()
        with self._lock:
            times = self._failures.get(key)
            if times is None:
                return None
            self._expire(key, times, now)
            if len(times) < self.max_failures:
                return None
            return max(times[0] + self.window_s - now, 0.0) or None

    def failed(self, key: str) -> None:
        """Count one failure of ``key`` now."""
        now = self._clock()
        with self._lock:
            times = self._failures.pop(key, None)
            if times is None:
                times = deque(maxlen=self.max_failures)
            self._expire(key, times, now)
            times.append(now)
            self._failures[key] = times  # most recently failed last
            while len(self._failures) > self.max_keys:
                self._failures.popitem(last=False)
            self._sweep(now)

    def __len__(self) -> int:
        with self._lock:
            return len(self._failures)

    def _expire(self, key: str, times: deque[float], now: float) -> None:
        while times and times[0] <= now - self.window_s:
            times.popleft()
        if not times:
            self._failures.pop(key, None)

    def _sweep(self, now: float) -> None:
        # Keys are ordered by their last failure: stale ones sit at the front.
        while self._failures:
            key, times = next(iter(self._failures.items()))
            if times[-1] > now - self.window_s:
                break
            del self._failures[key]


def limiter_for(app: object) -> FailureLimiter:
    """The application's limiter (``app.state.auth_limiter``), created on first use."""
    state = app.state  # type: ignore[attr-defined]
    limiter = getattr(state, "auth_limiter", None)
    if limiter is None:
        with _create_lock:
            limiter = getattr(state, "auth_limiter", None)
            if limiter is None:
                # settings.api.auth_max_failures / auth_window_s when layers.settings has them
                api = getattr(getattr(state, "settings", None), "api", None)
                limiter = state.auth_limiter = FailureLimiter(
                    getattr(api, "auth_max_failures", MAX_FAILURES),
                    getattr(api, "auth_window_s", WINDOW_S),
                )
    return limiter


_create_lock = threading.Lock()


def client_address(request: Request, trusted_proxies: Iterable[str] | None = None) -> str:
    """The address a request comes from, for counting failures.

    ``X-Forwarded-For`` is read only when the direct peer is a trusted proxy; the
    address taken is then the rightmost one that is not itself a trusted proxy
    (the leftmost entries are whatever the client wrote).
    """
    peer = request.client.host if request.client else "unknown"
    if trusted_proxies is None:
        settings = getattr(request.app.state, "settings", None)
        trusted_proxies = getattr(getattr(settings, "api", None), "trusted_proxies", None) or ()
    trusted = set(trusted_proxies)
    if peer not in trusted:
        return peer
    forwarded = [
        part.strip()
        for header in request.headers.getlist("x-forwarded-for")
        for part in header.split(",")
        if part.strip()
    ]
    for address in reversed(forwarded):
        if address not in trusted:
            return address
    return peer


def too_many(retry_after_s: float) -> HTTPException:
    """The 429 answer (a problem detail with ``Retry-After``) for a blocked address."""
    seconds = max(1, math.ceil(retry_after_s))
    return HTTPException(
        status_code=429,
        detail=f"too many failed authentications from this address; retry in {seconds} s",
        headers={"Retry-After": str(seconds)},
    )
