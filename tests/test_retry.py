"""retry.py: every retry and wait is bounded, retries only what it is told to, and says the last error."""

from __future__ import annotations

import pytest

from peru_compras.retry import backoff, every, poll, retry


class Flaky(Exception):
    pass


def failing(times: int, calls: list[int]) -> object:
    def action() -> str:
        calls.append(1)
        if len(calls) <= times:
            raise Flaky(f"try {len(calls)}")
        return "done"
    return action


def test_retry_stops_after_its_attempts_and_raises_the_last_error() -> None:
    calls: list[int] = []
    slept: list[float] = []
    with pytest.raises(Flaky, match="try 4"):
        retry(failing(10, calls), retry_on=Flaky, attempts=4, delays=backoff(0.1, cap=0.3), sleep=slept.append)
    assert len(calls) == 4 and slept == pytest.approx([0.1, 0.2, 0.3])  # no sleep after the last try
    calls.clear()
    assert retry(failing(2, calls), retry_on=Flaky, attempts=3, sleep=slept.append) == "done" and len(calls) == 3


def test_only_the_named_errors_are_retried_and_give_up_stops_at_once() -> None:
    calls: list[int] = []
    with pytest.raises(Flaky):
        retry(failing(5, calls), retry_on=KeyError, attempts=5)
    assert len(calls) == 1
    calls.clear()
    with pytest.raises(Flaky):
        retry(failing(5, calls), retry_on=Flaky, attempts=5, give_up=lambda exc: "2" in str(exc))
    assert len(calls) == 2


def test_between_replaces_the_sleep_and_a_deadline_bounds_the_time() -> None:
    seen: list[tuple[int, str]] = []
    calls: list[int] = []
    retry(failing(2, calls), retry_on=Flaky, attempts=3, between=lambda n, exc: seen.append((n, str(exc))))
    assert seen == [(0, "try 1"), (1, "try 2")]
    calls.clear()
    with pytest.raises(Flaky):  # 0.05 s per wait, 0.12 s in all: three tries, never a fourth
        retry(failing(100, calls), retry_on=Flaky, deadline=0.12, delays=every(0.05))
    assert 2 <= len(calls) <= 3
    with pytest.raises(ValueError):
        retry(lambda: None, retry_on=Flaky)  # unbounded: refused
    with pytest.raises(ValueError):
        retry(lambda: None, retry_on=Flaky, attempts=0)


def test_poll_returns_the_first_answer_or_none_when_the_time_is_up() -> None:
    answers = iter([None, None, 7])
    slept: list[float] = []
    assert poll(lambda: next(answers), timeout=10, delays=backoff(0.01), sleep=slept.append) == 7
    assert slept == [0.01, 0.02]
    asked: list[int] = []
    assert poll(lambda: asked.append(1), timeout=0.05, delays=every(0.01)) is None
    assert 2 <= len(asked) <= 10
