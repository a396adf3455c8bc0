"""Bounded retries and bounded waits, written once: every loop that tries again or polls goes through here
(the node client, the transaction sender, the local chain, the batch).

:func:`retry` runs an action until it succeeds, at most `attempts` times and within `deadline` seconds,
retrying only the exceptions named; the last one propagates, so the caller turns it into its own message.
:func:`poll` asks a question until it has an answer or the time is up. Both wait with a schedule from
:func:`backoff` (exponential, capped) or :func:`every` (constant). Nothing here retries for ever.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")
Schedule = Callable[[int], float]


def backoff(first: float, *, factor: float = 2.0, cap: float = math.inf) -> Schedule:
    """Wait `first` seconds after the first failure, `factor` times longer after each next one, at most `cap`."""
    return lambda failures: min(first * factor**failures, cap)


def every(seconds: float) -> Schedule:
    """The same wait each time."""
    return lambda failures: seconds


def retry(action: Callable[[], T], *, retry_on: type[BaseException] | tuple[type[BaseException], ...],
          attempts: int | None = None, deadline: float | None = None, delays: Schedule | None = None,
          give_up: Callable[[BaseException], bool] | None = None,
          between: Callable[[int, BaseException], None] | None = None,
          sleep: Callable[[float], None] = time.sleep) -> T:
    """`action()`, tried again after an exception of a `retry_on` type for which `give_up` (if given) is
    false: at most `attempts` tries in all, and no new try once `deadline` seconds have passed (at least one
    of the two bounds is required). Between tries it sleeps ``delays(n)`` (n = failures so far, from 0), or
    calls ``between(n, exc)`` instead (e.g. to wait for blocks); no `delays`: no wait. The last exception
    propagates unchanged."""
    if attempts is None and deadline is None:
        raise ValueError("retry needs attempts or a deadline")
    if attempts is not None and attempts < 1:
        raise ValueError("attempts must be at least 1")
    ends = None if deadline is None else time.monotonic() + deadline
    failures = 0
    while True:
        try:
            return action()
        except retry_on as exc:
            if give_up is not None and give_up(exc):
                raise
            failures += 1
            wait = delays(failures - 1) if delays is not None and between is None else 0.0
            if (attempts is not None and failures >= attempts) or (ends is not None and time.monotonic() + wait > ends):
                raise
            if between is not None:
                between(failures - 1, exc)
            elif wait:
                sleep(wait)


def poll(check: Callable[[], T | None], *, timeout: float, delays: Schedule,
         sleep: Callable[[float], None] = time.sleep) -> T | None:
    """`check()` until it answers something other than None (returned), asked once at least and again while
    `timeout` seconds have not passed; None when the time is up. It sleeps ``delays(n)`` between asks."""
    ends = time.monotonic() + timeout
    asked = 0
    while True:
        answer = check()
        if answer is not None:
            return answer
        if time.monotonic() > ends:
            return None
        sleep(delays(asked))
        asked += 1


def wait_out_node(action: Callable[[], T], *, what: str = "", patience: float = 60.0) -> T:
    """Run `action` (`what`: what it does, for the reader), waiting out a node that went away: 0.25 s,
    doubling to 4 s, for at most `patience` seconds; then its NodeUnavailable goes to the caller."""
    from .errors import NodeUnavailable

    return retry(action, retry_on=NodeUnavailable, deadline=patience, delays=backoff(0.25, cap=4.0))
