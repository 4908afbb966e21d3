"""Per-client limits, decided at once against an injected clock."""

import asyncio

import pytest

from hub.errors import RateLimited
from hub.throttle import Limits, Throttle, Workload


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def throttle(**limits: int) -> tuple[Throttle, Clock]:
    clock = Clock()
    return Throttle(Limits(**limits), clock), clock


def refused(call: object) -> RateLimited:
    with pytest.raises(RateLimited) as error:
        call()  # type: ignore[operator]
    return error.value


def test_tiny_requests_are_never_throttled() -> None:
    limiter, clock = throttle()
    for _second in range(3):
        for _ in range(5_000):  # thousands of `{ __typename }` a second, one at a time
            limiter.admit("client:1", 1).release()
        clock.now += 1
    assert len(limiter) == 1


def test_requests_in_flight_are_capped_per_client() -> None:
    limiter, _ = throttle(concurrency=2)
    first, second = limiter.admit("client:1", 1), limiter.admit("client:1", 1)
    error = refused(lambda: limiter.admit("client:1", 1))
    assert error.message == (
        "client:1 has 2 requests in flight, the most one client may have at once "
        "(HUB_CLIENT_CONCURRENCY=2); wait for answers before sending more, retry after 1 s"
    )
    assert error.extensions() == {
        "code": "RATE_LIMITED",
        "limit": "HUB_CLIENT_CONCURRENCY",
        "value": 2,
        "retryAfter": 1,
    }
    limiter.admit("client:2", 1)  # another client is not affected
    first.release()
    first.release()  # releasing twice frees one slot only
    third = limiter.admit("client:1", 1)
    refused(lambda: limiter.admit("client:1", 1))
    second.release()
    third.release()


def test_cost_drains_the_bucket_which_refills_with_time() -> None:
    limiter, clock = throttle(cost_per_second=1_000, burst=3_000)
    for _ in range(3):
        limiter.admit("client:1", 1_000).release()
    error = refused(lambda: limiter.admit("client:1", 2_500))
    assert error.retry_after == 3  # 2,500 needed at 1,000 a second
    assert error.message == (
        "this request costs 2,500 and client:1 has 0 left of HUB_CLIENT_COST_PER_SECOND=1,000 "
        "(burst 3,000); retry after 3 s, or ask for fewer enterprises per page (first) or "
        "fewer fields"
    )
    assert error.extensions()["limit"] == "HUB_CLIENT_COST_PER_SECOND"
    limiter.admit("client:2", 3_000).release()  # each client has its own bucket
    clock.now += 2.25
    assert refused(lambda: limiter.admit("client:1", 2_500)).retry_after == 1  # at least 1
    clock.now += 0.25
    limiter.admit("client:1", 2_500).release()
    clock.now += 60
    for _ in range(3):  # never more than a full bucket, however long it rested
        limiter.admit("client:1", 1_000).release()
    refused(lambda: limiter.admit("client:1", 1))


def test_refused_requests_take_nothing() -> None:
    limiter, clock = throttle(concurrency=1, cost_per_second=100, burst=100)
    held = limiter.admit("client:1", 60)
    refused(lambda: limiter.admit("client:1", 10))  # in flight: refused, not charged
    held.release()
    refused(lambda: limiter.admit("client:1", 50))  # over what is left: not charged
    limiter.admit("client:1", 40).release()
    clock.now += 1
    limiter.admit("client:1", 100).release()


def test_a_request_dearer_than_the_burst_waits_for_a_full_bucket_only() -> None:
    limiter, clock = throttle(cost_per_second=10, burst=100)
    limiter.admit("client:1", 5_000).release()  # a full bucket admits it
    assert refused(lambda: limiter.admit("client:1", 5_000)).retry_after == 10
    clock.now += 10
    limiter.admit("client:1", 5_000).release()


def test_live_subscriptions_are_capped_per_client() -> None:
    limiter, _ = throttle(subscriptions=2, concurrency=1)
    first, second = limiter.subscribe("client:1", 500), limiter.subscribe("client:1")
    assert first.cost == 500
    error = refused(lambda: limiter.subscribe("client:1"))
    assert error.message == (
        "client:1 already has 2 live subscriptions, the most one client may have "
        "(HUB_CLIENT_SUBSCRIPTIONS=2); complete one before subscribing again, or subscribe "
        "once to several kinds and owners"
    )
    limiter.admit("client:1", 1).release()  # subscriptions are not requests in flight
    limiter.subscribe("client:2").release()
    second.release()
    limiter.subscribe("client:1")
    first.release()


def test_state_of_idle_clients_is_forgotten() -> None:
    limiter, clock = throttle(cost_per_second=1_000, burst=2_000)
    busy = limiter.admit("client:busy", 1)
    live = limiter.subscribe("client:live")
    for n in range(1_000):
        limiter.admit(f"jwt:{n}", 1_500).release()
    assert len(limiter) == 1_002
    clock.now += 1  # buckets not full yet: forgetting them would give them a fresh burst
    limiter.admit("client:new", 1).release()
    assert len(limiter) == 1_003
    clock.now += 1
    limiter.admit("client:new", 1).release()
    assert len(limiter) == 3  # busy, live and new
    busy.release()
    live.release()
    clock.now += 2
    limiter.admit("client:other", 1).release()
    assert len(limiter) == 1
    # A forgotten client starts with a full bucket, as it would have had anyway.
    limiter.admit("jwt:1", 2_000).release()


def test_heavy_requests_take_turns_in_the_process_and_small_ones_never_wait() -> None:
    async def scenario() -> list[str]:
        workload, started = Workload(capacity=100), []

        async def request(name: str, cost: int) -> None:
            await workload.enter(cost)
            started.append(name)

        first = asyncio.create_task(request("a:60", 60))
        await asyncio.sleep(0)
        waiting = [asyncio.create_task(request(n, c)) for n, c in (("b:60", 60), ("c:30", 30))]
        small = asyncio.create_task(request("d:1", 1))
        await asyncio.sleep(0)
        # c would fit beside a, but b came first: no overtaking, or b might wait forever.
        assert (started, len(workload), workload.running) == (["a:60", "d:1"], 2, 61)
        workload.leave(60)
        await asyncio.gather(first, small, *waiting)
        assert workload.running == 91
        for cost in (60, 30, 1):
            workload.leave(cost)
        huge = asyncio.create_task(request("e:500", 500))  # more than the capacity: alone
        await huge
        return started

    assert asyncio.run(scenario()) == ["a:60", "d:1", "b:60", "c:30", "e:500"]


def test_a_request_that_goes_away_while_waiting_gives_up_its_turn() -> None:
    async def scenario() -> None:
        workload = Workload(capacity=100)
        await workload.enter(80)
        gone = asyncio.create_task(workload.enter(50))
        later = asyncio.create_task(workload.enter(20))
        await asyncio.sleep(0)
        assert len(workload) == 2
        gone.cancel()
        await asyncio.gather(gone, return_exceptions=True)
        await later  # 80 + 20 fit once the one ahead of it has gone
        assert (len(workload), workload.running) == (0, 100)

    asyncio.run(scenario())


def test_start_waits_for_the_workload_without_what_a_waiting_request_must_not_hold() -> None:
    async def scenario() -> None:
        limiter, _ = throttle(cost_in_flight=100, concurrency=4)
        released: list[str] = []

        async def close_connection() -> None:
            released.append("connection")

        first = await limiter.start(limiter.admit("client:1", 90), close_connection)
        assert released == []  # started at once: kept its connection
        second = asyncio.create_task(limiter.start(limiter.admit("client:2", 90), close_connection))
        await asyncio.sleep(0)
        assert released == ["connection"]
        assert not second.done()
        first.release()
        ticket = await second
        assert limiter.workload.running == 90
        ticket.release()
        ticket.release()
        assert limiter.workload.running == 0
        # The client's slots came back too: four more fit.
        tickets = [limiter.admit("client:2", 1) for _ in range(4)]
        for held in tickets:
            held.release()

    asyncio.run(scenario())
