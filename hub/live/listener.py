"""Live subscriptions: one feed listener per process, and the fan-out of what it hears.

Publishing numbers record versions under the feed head (publishing/versions.py) and, on
PostgreSQL, announces each new head with NOTIFY as it commits. One listener per process
hears it (LISTEN, with a slow poll behind it for anything said while it reconnected; a poll
of the head on SQLite, which has no NOTIFY) and wakes the streams behind that head.

A stream is the subscriptions that would receive the same event: one document with the same
variables, from callers with the same view (department, role, purpose), at the same place in
the feed. Its event is built once, on a database connection held only while it is built
(``Build``: hub/live/events.py), and reaches each member with an access record of
its own. Between events a subscription holds no connection, only its place in a stream; its
messages wait in an outbox of its own, so a slow client holds up no one else's, and one that
falls too far behind is ended with an error that tells it to resume from its last cursor.
Streams whose members stand at the same place after an event merge into one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from hub import models
from hub.metrics import LIVE_EVENTS, LIVE_MESSAGES

__all__ = ["CHANNEL", "OUTBOX_LIMIT", "SLOW", "FeedListener", "Member", "Stream"]

logger = logging.getLogger("hub.live")

CHANNEL = "hub_feed"  # NOTIFY hub_feed, '<new head>' (publishing/versions.py)
OUTBOX_LIMIT = 100  # events waiting for one slow client before it is ended
COALESCE_SECONDS = 0.02  # a round of events starts this long after the head moves
SAFETY_POLLS = 5  # on PostgreSQL, the head is also read every this many poll intervals


@dataclass(eq=False)
class Member:
    """One live subscription: its stream's key and the messages waiting to be sent to it."""

    key: Hashable
    operation_id: str
    # What the stream's event builder needs to know of it (subscriptions.Subscriber).
    subscriber: Any
    outbox: asyncio.Queue[dict[str, Any]] = field(default_factory=asyncio.Queue)
    stream: Stream | None = None
    ended: bool = False

    @property
    def behind(self) -> bool:
        """Whether ``OUTBOX_LIMIT`` events wait for the client: it gets no more but SLOW."""
        return self.outbox.qsize() >= OUTBOX_LIMIT

    def send(self, message: dict[str, Any]) -> None:
        """Queue ``message`` after those waiting; an ``error`` is the last one."""
        if self.ended:
            return
        self.outbox.put_nowait(message)
        LIVE_MESSAGES.labels(message["type"]).inc()
        if message["type"] != "next":
            self.ended = True


# Why a subscription whose client leaves OUTBOX_LIMIT events unread is ended.
SLOW = {
    "message": f"{OUTBOX_LIMIT} events waited for your client to read them; the hub ended this "
    "subscription: subscribe again with `after` set to the last endCursor you received, and "
    "read events as they come",
    "extensions": {"code": "SERVICE_UNAVAILABLE", "retryAfter": 0},
}


@dataclass(eq=False)
class Stream:
    """Members that receive the same events: same key, same place in the feed."""

    key: Hashable
    seq: int
    members: dict[Member, None] = field(default_factory=dict)  # in joining order

    def live(self) -> list[Member]:
        return [member for member in self.members if not member.ended]


# Builds and sends one event of a stream: the changes after stream.seq (known committed up to
# the head given); returns where the stream stands after it.
Build = Callable[[Stream, int], Awaitable[int]]


class FeedListener:
    """The process's one listener to the change feed, and its streams of subscribers."""

    def __init__(
        self, engine: AsyncEngine, build: Build, poll_seconds: float, concurrency: int
    ) -> None:
        self.engine = engine
        self.build = build
        self.poll_seconds = poll_seconds
        self.head = 0  # every change up to here is committed
        self._streams: dict[tuple[Hashable, int], Stream] = {}
        self._wake = asyncio.Event()
        self._slots = asyncio.Semaphore(concurrency)  # events built at once, a connection each
        self._tasks: list[asyncio.Task[None]] = []
        self._building: set[asyncio.Task[None]] = set()

    def join(self, member: Member, seq: int) -> None:
        """``member`` receives the changes after ``seq``, from now until it leaves."""
        if not self._tasks or any(task.done() for task in self._tasks):  # first, or died
            listen = self._listen() if self.engine.dialect.name == "postgresql" else self._poll()
            for task in self._tasks:
                task.cancel()
            self._tasks = [asyncio.create_task(self._deliver()), asyncio.create_task(listen)]
            for task in self._tasks:
                task.add_done_callback(_said_if_died)
        self._enter(Stream(member.key, seq, {member: None}))
        if seq < self.head:  # resuming from an earlier cursor: its changes are there already
            self._wake.set()

    def leave(self, member: Member) -> None:
        member.ended = True
        stream = member.stream
        if stream is not None:
            stream.members.pop(member, None)
            if not stream.members and self._streams.get((stream.key, stream.seq)) is stream:
                del self._streams[stream.key, stream.seq]

    @property
    def streams(self) -> int:
        return len(self._streams)

    @property
    def members(self) -> int:
        """Subscriptions waiting for events (not counting those of events being built)."""
        return sum(len(stream.live()) for stream in self._streams.values())

    def heard(self, seq: int) -> None:
        """The feed head is at ``seq`` now (NOTIFY, a poll, a publish in this process)."""
        if seq > self.head:
            self.head = seq
            self._wake.set()

    async def stop(self) -> None:
        tasks = [*self._tasks, *self._building]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []

    def _enter(self, stream: Stream) -> None:
        """Put ``stream`` in its place, merged with the stream already there, if any; a
        stream whose members have all ended is gone."""
        members = stream.live()
        if not members:
            return
        here = self._streams.get((stream.key, stream.seq))
        if here is None:
            here = self._streams[stream.key, stream.seq] = Stream(stream.key, stream.seq)
        for member in members:
            here.members[member] = None
            member.stream = here

    async def _deliver(self) -> None:
        """Start the event of each stream behind the head, each in a task of its own: a
        stream catching up from an old cursor holds up no other."""
        while True:
            await self._wake.wait()
            # Publishes a moment apart become one round of events, and the publisher's own
            # answer (this process heard its commit first) goes out before the round starts.
            await asyncio.sleep(COALESCE_SECONDS)
            self._wake.clear()
            for stream in [s for s in self._streams.values() if s.seq < self.head]:
                del self._streams[stream.key, stream.seq]
                task = asyncio.create_task(self._event(stream, self.head))
                self._building.add(task)
                task.add_done_callback(self._building.discard)

    async def _event(self, stream: Stream, head: int) -> None:
        async with self._slots:
            if stream.live():
                LIVE_EVENTS.inc()
                try:
                    stream.seq = await self.build(stream, head)
                except Exception:  # the builder ends members it cannot serve: a defect
                    logger.exception("a live event failed to build")
                    for member in stream.live():
                        member.send({"id": member.operation_id, "type": "error", "payload": [{
                            "message": "the hub failed to build this event; subscribe again "
                            "with `after` set to your last endCursor",
                            "extensions": {"code": "INTERNAL"},
                        }]})  # fmt: skip
        self._enter(stream)
        if stream.seq < self.head:  # more pages, or a head that moved meanwhile
            self._wake.set()

    async def _read_head(self) -> None:
        async with self.engine.connect() as connection:
            seq = (await connection.execute(
                select(models.FeedHead.seq).where(models.FeedHead.id == 1)
            )).scalar_one()  # fmt: skip
        self.heard(int(seq))

    async def _poll(self) -> None:
        """SQLite: read the head every poll interval."""
        failing = False
        while True:
            try:
                await self._read_head()
                failing = False
            except Exception as error:  # the database is away: said once, tried again
                if not failing:
                    logger.warning("the change feed cannot be read: %s", _said(error))
                failing = True
            await asyncio.sleep(self.poll_seconds)

    async def _listen(self) -> None:
        """PostgreSQL: LISTEN on a connection of its own (not one of the pool's), reading the
        head on (re)connecting and every few poll intervals behind it; while it cannot
        listen, the head is read through the pool every poll interval instead."""
        import asyncpg  # type: ignore[import-untyped]  # PostgreSQL only

        # What the engine's driver connects with, less SQLAlchemy's own options.
        _, options = self.engine.dialect.create_connect_args(self.engine.url)
        for own in ("prepared_statement_cache_size", "prepared_statement_name_func",
                    "async_creator_fn"):  # fmt: skip
            options.pop(own, None)
        failing = False
        while True:
            connection = None
            try:
                connection = await asyncpg.connect(**options, timeout=10)
                lost = asyncio.Event()
                connection.add_termination_listener(lambda _, lost=lost: lost.set())
                await connection.add_listener(CHANNEL, self._notified)
                while not lost.is_set():
                    self.heard(int(await connection.fetchval(
                        "SELECT seq FROM feed_head WHERE id = 1", timeout=10
                    )))  # fmt: skip
                    failing = False
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(lost.wait(), self.poll_seconds * SAFETY_POLLS)
            except Exception as error:  # unreachable, restarting, a pooler...: said once
                if not failing:
                    logger.warning("the change feed cannot be heard (LISTEN %s), so it is "
                                   "read every %g s: %s", CHANNEL, self.poll_seconds,
                                   _said(error))  # fmt: skip
                failing = True
            finally:
                if connection is not None:
                    with contextlib.suppress(Exception):
                        await connection.close(timeout=1)
            await asyncio.sleep(self.poll_seconds)
            with contextlib.suppress(Exception):  # events go on at the poll's pace meanwhile
                await self._read_head()

    def _notified(self, _connection: Any, _pid: int, _channel: str, payload: str) -> None:
        if payload.isdigit():
            self.heard(int(payload))


def _said_if_died(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        logger.error("the feed listener stopped; it restarts at the next subscription",
                     exc_info=task.exception())  # fmt: skip


def _said(error: BaseException) -> str:
    said = str(error).strip().splitlines()
    return f"{type(error).__name__}: {said[0] if said else ''}"[:300]
