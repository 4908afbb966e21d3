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

__all__ = ["CHANNEL", "OUTBOX_LIMIT", "FeedListener", "Member", "Stream"]

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

    def send(self, message: dict[str, Any]) -> None:
        """Queue ``message``; an ``error`` (or ``complete``) is the last one. A client that
        leaves ``OUTBOX_LIMIT`` events unread is ended instead: events are recorded as read
        when they are queued, and the hub does not keep more for one client."""
        if self.ended:
            return
        if message["type"] == "next" and self.outbox.qsize() >= OUTBOX_LIMIT:
            while not self.outbox.empty():
                self.outbox.get_nowait()
            message = {"id": self.operation_id, "type": "error", "payload": [{
                "message": f"{OUTBOX_LIMIT} events waited for your client to read them; the "
                "hub ended this subscription: subscribe again with `after` set to the last "
                "endCursor you received, and read events as they come",
                "extensions": {"code": "SERVICE_UNAVAILABLE", "retryAfter": 0},
            }]}  # fmt: skip
        self.outbox.put_nowait(message)
        LIVE_MESSAGES.labels(message["type"]).inc()
        if message["type"] != "next":
            self.ended = True


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

    def join(self, member: Member, seq: int) -> None:
        """``member`` receives the changes after ``seq``, from now until it leaves."""
        if not self._tasks:
            listen = self._listen() if self.engine.dialect.name == "postgresql" else self._poll()
            self._tasks = [asyncio.create_task(self._deliver()), asyncio.create_task(listen)]
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

    def heard(self, seq: int) -> None:
        """The feed head is at ``seq`` now (NOTIFY, a poll, a publish in this process)."""
        if seq > self.head:
            self.head = seq
            self._wake.set()

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []

    def _enter(self, stream: Stream) -> None:
        """Put ``stream`` in its place, merged with the stream already there, if any."""
        here = self._streams.get((stream.key, stream.seq))
        if here is None:
            here = self._streams[stream.key, stream.seq] = Stream(stream.key, stream.seq)
        for member in stream.live():
            here.members[member] = None
            member.stream = here

    async def _deliver(self) -> None:
        while True:
            await self._wake.wait()
            # Publishes a moment apart become one round of events, and the publisher's own
            # answer (this process heard its commit first) goes out before the round starts.
            await asyncio.sleep(COALESCE_SECONDS)
            self._wake.clear()
            while behind := [s for s in self._streams.values() if s.seq < self.head]:
                for stream in behind:
                    del self._streams[stream.key, stream.seq]
                await asyncio.gather(*(self._event(stream, self.head) for stream in behind))

    async def _event(self, stream: Stream, head: int) -> None:
        async with self._slots:
            LIVE_EVENTS.inc()
            try:
                stream.seq = await self.build(stream, head)
            except Exception:  # the builder ends members it cannot serve; this is a defect
                logger.exception("a live event failed to build")
                for member in stream.live():
                    member.send({"id": member.operation_id, "type": "error", "payload": [
                        {"message": "the hub failed to build this event; subscribe again with "
                         "`after` set to your last endCursor", "extensions": {"code": "INTERNAL"}}
                    ]})  # fmt: skip
        self._enter(stream)

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
        """PostgreSQL: LISTEN on its own connection (not one of the pool's), reading the
        head on (re)connecting and every few poll intervals behind it."""
        import asyncpg  # type: ignore[import-untyped]  # PostgreSQL only

        url = self.engine.url.set(drivername="postgresql")
        failing = False
        while True:
            connection = None
            try:
                connection = await asyncpg.connect(url.render_as_string(hide_password=False))
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
            except Exception as error:  # unreachable, restarting...: said once, tried again
                if not failing:
                    logger.warning("the change feed cannot be heard: %s", _said(error))
                failing = True
            finally:
                if connection is not None:
                    with contextlib.suppress(Exception):
                        await connection.close(timeout=1)
            await asyncio.sleep(self.poll_seconds)

    def _notified(self, _connection: Any, _pid: int, _channel: str, payload: str) -> None:
        if payload.isdigit():
            self.heard(int(payload))


def _said(error: BaseException) -> str:
    said = str(error).strip().splitlines()
    return f"{type(error).__name__}: {said[0] if said else ''}"[:300]
