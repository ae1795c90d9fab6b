"""Lambda's handling of asynchronous invocations, as local_stack.lambdas.run_event emulates it:
two retries a minute and two minutes apart, events given up past their maximum age, and the
invocation record an on-failure destination receives (pure: a fake clock, no waiting)."""

from __future__ import annotations

from typing import Any

from local_stack.lambdas import AsyncRetryPolicy, run_event

ARN = "arn:aws:lambda:us-east-1:123456789012:function:worker"


class FakeTime:
    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def _run(attempt: Any, policy: AsyncRetryPolicy, records: list[dict[str, Any]], time: FakeTime) -> Any:
    return run_event(
        attempt,
        {"n": 1},
        policy=policy,
        function_arn=ARN,
        request_id="r-1",
        on_failure=records.append,
        sleep=time.sleep,
        clock=lambda: time.now,
    )


def test_a_passing_fault_succeeds_on_the_first_retry_a_minute_later() -> None:
    """Fails once, then works: one wait of 60 s, no record for the destination."""
    outcomes = iter([RuntimeError("blip"), None])

    def attempt() -> None:
        if (outcome := next(outcomes)) is not None:
            raise outcome

    records: list[dict[str, Any]] = []
    time = FakeTime()
    assert _run(attempt, AsyncRetryPolicy(), records, time) is None
    assert time.slept == [60.0] and records == []


def test_an_event_failing_every_attempt_is_run_three_times_then_recorded() -> None:
    """Three attempts, waits of 1 and 2 minutes, then Lambda's record: event, error, condition, count."""
    calls = []

    def attempt() -> None:
        calls.append(1)
        raise ValueError("poison")

    records: list[dict[str, Any]] = []
    time = FakeTime()
    record = _run(attempt, AsyncRetryPolicy(), records, time)
    assert len(calls) == 3 and time.slept == [60.0, 120.0]
    assert records == [record]
    assert record["requestContext"] == {
        "requestId": "r-1",
        "functionArn": f"{ARN}:$LATEST",
        "condition": "RetriesExhausted",
        "approximateInvokeCount": 3,
    }
    assert record["requestPayload"] == {"n": 1}
    assert record["responseContext"]["functionError"] == "Unhandled"
    assert (record["responsePayload"]["errorType"], record["responsePayload"]["errorMessage"]) == (
        "ValueError",
        "poison",
    )


def test_an_event_that_would_be_too_old_for_its_next_retry_is_given_up() -> None:
    """With a 90 s maximum age the second retry (2 minutes on) never runs: EventAgeExceeded after 2."""

    def attempt() -> None:
        raise RuntimeError("down")

    records: list[dict[str, Any]] = []
    time = FakeTime()
    record = _run(attempt, AsyncRetryPolicy(max_event_age_s=90.0), records, time)
    assert time.slept == [60.0]
    assert record["requestContext"]["condition"] == "EventAgeExceeded"
    assert record["requestContext"]["approximateInvokeCount"] == 2


def test_no_retries_configured_means_one_attempt() -> None:
    """retry_attempts 0: the first failure goes straight to the destination."""

    def attempt() -> None:
        raise RuntimeError("once")

    records: list[dict[str, Any]] = []
    time = FakeTime()
    record = _run(attempt, AsyncRetryPolicy(retry_attempts=0), records, time)
    assert time.slept == [] and record["requestContext"]["approximateInvokeCount"] == 1
