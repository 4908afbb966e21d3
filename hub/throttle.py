"""Per-client limits: requests in flight, cost per second, live subscriptions.

One process serves every department on one event loop, so one client's heavy load is
everyone's latency. Each authenticated client (``Principal.client``: ``client:12``,
``jwt:<sub>``) gets, in this process:

- at most ``concurrency`` requests in flight at once;
- a token bucket of cost (hub/schema/cost.py: the fields a request would resolve) that
  refills at ``cost_per_second`` up to ``burst``: a request is admitted when the bucket holds
  its cost, which it then takes. Tiny requests cost 1, so an honest system never notices;
  100-enterprise dossiers sent back to back from many connections run out within seconds;
- at most ``subscriptions`` live subscriptions.

And the process runs at most ``cost_in_flight`` of cost at once (``Workload``): a heavy
request beyond it waits its turn, first come first served, without a database connection,
instead of running alongside. One event loop gains no speed from running ten dossiers at
once, but each holds its answer in memory, and the allocator keeps the high-water mark: a
served hub stayed 91 MB above its baseline after sixteen dossiers at a time, 25 MB taking
turns (and finished them in less than half the time); and every step of every dossier
running delays the requests of everyone else. Requests costing at most a hundredth of it
never wait. With the defaults, a client flooding dossiers from eight connections raised
another client's p99 from 20 ms to 0.4 s (7.6 s without these limits; bench/run.py).

Over a limit, ``RateLimited`` says which limit, its value and when to try again. The limits
are per process: several processes behind a load balancer multiply them. A client's state
is dropped as soon as it is indistinguishable from a new one (nothing in flight, no
subscription, bucket full again), so memory stays bounded by the clients active in the last
few seconds. Admission is decided at once, with an injectable clock; only the workload
awaits.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from hub.errors import RateLimited

__all__ = ["Limits", "Throttle", "Ticket", "Workload"]


@dataclass(frozen=True, slots=True)
class Limits:
    concurrency: int = 16
    cost_per_second: int = 30_000
    burst: int = 200_000
    subscriptions: int = 20
    cost_in_flight: int = 50_000  # for the whole process


@dataclass(slots=True)
class _Client:
    tokens: float
    updated: float
    in_flight: int = 0
    subscriptions: int = 0


class Ticket:
    """An admitted request or subscription; ``release`` when it ends (twice is harmless)."""

    __slots__ = ("_release", "cost")

    def __init__(self, cost: int, release: Callable[[], None]) -> None:
        self.cost = cost
        self._release: Callable[[], None] | None = release

    def release(self) -> None:
        release, self._release = self._release, None
        if release is not None:
            release()


class Workload:
    """The cost of the requests running in this process, at most ``capacity`` at once."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.running = 0
        self._waiting: deque[tuple[int, asyncio.Future[None]]] = deque()

    def __len__(self) -> int:
        """Requests waiting their turn."""
        return len(self._waiting)

    def ready(self, cost: int) -> bool:
        """Whether a request of ``cost`` would start at once."""
        return cost <= self.capacity // 100 or (not self._waiting and self._fits(cost))

    async def enter(self, cost: int) -> None:
        """Wait until ``cost`` fits (one request runs whatever it costs); then it runs."""
        if self.ready(cost):
            self.running += cost
            return
        turn = asyncio.get_running_loop().create_future()
        self._waiting.append((cost, turn))
        try:
            await turn
        except BaseException:  # the caller went away while waiting
            if turn.done() and not turn.cancelled():
                self.leave(cost)  # its turn had come: pass it on
            elif (cost, turn) in self._waiting:
                self._waiting.remove((cost, turn))
                self._start_waiting()  # the head may have been what held the others back
            raise

    def leave(self, cost: int) -> None:
        self.running -= cost
        self._start_waiting()

    def _fits(self, cost: int) -> bool:
        return self.running == 0 or self.running + cost <= self.capacity

    def _start_waiting(self) -> None:
        while self._waiting and self._fits(self._waiting[0][0]):
            cost, turn = self._waiting.popleft()
            if not turn.cancelled():
                self.running += cost
                turn.set_result(None)


class Throttle:
    def __init__(self, limits: Limits, clock: Callable[[], float] = time.monotonic) -> None:
        self.limits = limits
        self.clock = clock
        self.workload = Workload(limits.cost_in_flight)
        self._clients: dict[str, _Client] = {}
        self._swept = clock()

    def __len__(self) -> int:
        """Clients whose state is kept (for tests and the curious)."""
        return len(self._clients)

    def admit(self, client: str, cost: int) -> Ticket:
        """Admit a request of ``cost`` from ``client``, or raise RateLimited."""
        state = self._state(client)
        limits = self.limits
        if state.in_flight >= limits.concurrency:
            raise RateLimited(
                f"{client} has {state.in_flight} requests in flight, the most one client may "
                f"have at once (HUB_CLIENT_CONCURRENCY={limits.concurrency}); wait for answers "
                "before sending more, retry after 1 s",
                limit="HUB_CLIENT_CONCURRENCY",
                value=limits.concurrency,
                retry_after=1,
            )
        # A request may never need more than a full bucket, or it would wait forever.
        charge = min(cost, limits.burst)
        if state.tokens < charge:
            wait = max(1, math.ceil((charge - state.tokens) / limits.cost_per_second))
            raise RateLimited(
                f"this request costs {cost:,} and {client} has {int(state.tokens):,} left of "
                f"HUB_CLIENT_COST_PER_SECOND={limits.cost_per_second:,} (burst {limits.burst:,}); "
                f"retry after {wait} s, or ask for fewer enterprises per page (first) or fewer "
                "fields",
                limit="HUB_CLIENT_COST_PER_SECOND",
                value=limits.cost_per_second,
                retry_after=wait,
            )
        state.tokens -= charge
        state.in_flight += 1

        def release() -> None:
            state.in_flight -= 1

        return Ticket(cost, release)

    async def start(self, ticket: Ticket, before_waiting: Callable[[], Awaitable[None]]) -> Ticket:
        """The admitted request's turn in the workload: at once, or after ``before_waiting``
        (which releases what a waiting request must not hold) and a wait. The ticket
        returned releases both; if the wait ends otherwise, ``ticket`` is released."""
        cost, workload = ticket.cost, self.workload
        try:
            if not workload.ready(cost):
                await before_waiting()
            await workload.enter(cost)
        except BaseException:
            ticket.release()
            raise

        def release() -> None:
            ticket.release()
            workload.leave(cost)

        return Ticket(cost, release)

    def subscribe(self, client: str, cost: int = 0) -> Ticket:
        """Admit one more live subscription of ``client``, or raise RateLimited.

        Its ``cost`` (of each event) is noted, not charged: events come as records change,
        and a feed must not fall behind because it is busy."""
        state = self._state(client)
        limit = self.limits.subscriptions
        if state.subscriptions >= limit:
            raise RateLimited(
                f"{client} already has {state.subscriptions} live subscriptions, the most one "
                f"client may have (HUB_CLIENT_SUBSCRIPTIONS={limit}); complete one before "
                "subscribing again, or subscribe once to several kinds and owners",
                limit="HUB_CLIENT_SUBSCRIPTIONS",
                value=limit,
                retry_after=1,
            )
        state.subscriptions += 1

        def release() -> None:
            state.subscriptions -= 1

        return Ticket(cost, release)

    def _state(self, client: str) -> _Client:
        now = self.clock()
        if now - self._swept >= 1:
            self._sweep(now)
        state = self._clients.get(client)
        if state is None:
            state = self._clients[client] = _Client(tokens=self.limits.burst, updated=now)
        else:
            refill = (now - state.updated) * self.limits.cost_per_second
            state.tokens = min(self.limits.burst, state.tokens + refill)
            state.updated = now
        return state

    def _sweep(self, now: float) -> None:
        """Forget clients that are as good as new: nothing running and the bucket full."""
        self._swept = now
        full_after = self.limits.burst / self.limits.cost_per_second
        idle = [
            client
            for client, state in self._clients.items()
            if not state.in_flight and not state.subscriptions and now - state.updated >= full_after
        ]
        for client in idle:
            del self._clients[client]
