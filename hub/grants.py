"""Grants as decisions use them: which conditional fields a department reads of another's
records, for which purpose, enterprises and days (the workflow that makes them is sharing.py).

A conditional field of another department's record is served only under an active grant
that covers the field, the record's enterprise and the request's stated purpose (policy.py
must also allow the field with a purpose: policies say who may receive it at all, grants
say that the owner agreed). Every approval and revocation moves the grant version, which
every hub process reads once per request, so a decision made in one process holds in all
of them at once; grants start and expire by the day in China, and the day is in the version.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, cast

from sqlalchemy import Row, Select, Table, select

from hub import models
from hub.errors import BadUserInput, InvalidUSCC
from hub.records import CHINA, today
from hub.uscc import parse_uscc

__all__ = ["GRANT", "HEAD", "GrantBook", "GrantRule", "Grants", "Scope", "china_day", "describe"]

GRANT = cast(Table, models.ShareGrant.__table__)
HEAD = cast(Table, models.GrantHead.__table__)

Rows = Callable[[Select[Any]], Awaitable[Sequence[Row[Any]]]]


def china_day(moment: datetime | None) -> date | None:
    return None if moment is None else moment.astimezone(CHINA).date()


@dataclass(frozen=True, slots=True)
class Scope:
    """Which enterprises: all when both are empty, else these districts and these USCCs."""

    regions: tuple[str, ...] = ()
    usccs: tuple[str, ...] = ()

    @classmethod
    def stored(cls, regions: str, usccs: str) -> Scope:
        return cls(tuple(r for r in regions.split("\n") if r), tuple(usccs.split()))

    @classmethod
    def of(cls, regions: Iterable[str] | None, usccs: Iterable[str] | None) -> Scope:
        """A scope from a caller's lists: districts as given, USCCs checked."""
        clean = sorted({r.strip() for r in regions or () if r.strip()})
        codes = []
        for value in usccs or ():
            try:
                codes.append(parse_uscc(value))
            except InvalidUSCC as error:
                raise BadUserInput(error.message, argument="scope.usccs") from None
        return cls(tuple(clean), tuple(sorted(set(codes))))

    @property
    def everything(self) -> bool:
        return not self.regions and not self.usccs

    def covers(self, uscc: str | None, region: str | None) -> bool:
        return (
            self.everything or uscc in self.usccs or (region is not None and region in self.regions)
        )

    def within(self, wider: Scope) -> bool:
        """Whether this scope asks for no enterprise that ``wider`` does not."""
        if wider.everything:
            return True
        if self.everything:
            return False
        return set(self.regions) <= set(wider.regions) and set(self.usccs) <= set(wider.usccs)

    def columns(self) -> dict[str, str]:
        return {"regions": "\n".join(self.regions), "usccs": " ".join(self.usccs)}

    def __str__(self) -> str:
        if self.everything:
            return "all enterprises"
        parts = [*self.regions, *(f"enterprise {uscc}" for uscc in self.usccs)]
        return ", ".join(parts)


@dataclass(frozen=True, slots=True)
class GrantRule:
    """A grant as decisions use it."""

    id: int
    requester: str
    owner: str
    fields: frozenset[str]
    purpose: str
    scope: Scope
    valid_from: date
    valid_until: date
    revoked_at: datetime | None = None
    revoke_reason: str | None = None

    def state(self, day: date) -> str:
        if self.revoked_at is not None:
            return "revoked"
        if day > self.valid_until:
            return "expired"
        if day < self.valid_from:
            return "not yet valid"
        return "active"

    @classmethod
    def of(cls, row: Any) -> GrantRule:
        return cls(
            row.id, row.requester, row.owner, frozenset(row.fields.split()), row.purpose,
            Scope.stored(row.regions, row.usccs), row.valid_from, row.valid_until,
            row.revoked_at, row.revoke_reason,
        )  # fmt: skip


@dataclass(frozen=True, slots=True)
class GrantBook:
    """Every grant, as of one grant version and one day."""

    version: str
    day: date
    grants: tuple[GrantRule, ...] = ()
    _index: dict[tuple[str, str, str], list[GrantRule]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for grant in self.grants:
            for coordinate in grant.fields:
                self._index.setdefault((grant.requester, grant.owner, coordinate), []).append(grant)

    def about(self, requester: str, owner: str, coordinate: str) -> list[GrantRule]:
        return self._index.get((requester, owner, coordinate), [])

    def match(
        self,
        requester: str,
        owner: str,
        coordinate: str,
        purpose: str | None,
        uscc: str | None,
        region: str | None,
    ) -> tuple[GrantRule | None, str]:
        """The grant that opens ``coordinate`` here, or None and which condition failed."""
        grants = self.about(requester, owner, coordinate)
        active = [g for g in grants if g.state(self.day) == "active"]
        for grant in active:
            if grant.purpose == purpose and grant.scope.covers(uscc, region):
                return grant, f"allowed by grant {grant.id}"
        for_purpose = [g for g in active if g.purpose == purpose]
        if for_purpose:
            scopes = "; ".join(f"grant {g.id}: {g.scope}" for g in for_purpose)
            return None, f"out of scope: enterprise {uscc} is not within {scopes}"
        if active:
            purposes = ", ".join(sorted({g.purpose for g in active}))
            return None, (
                f"wrong purpose: grants of {coordinate} are for {purposes}, not "
                f"{purpose or 'the purpose stated'}; start X-Hub-Purpose with one of them"
            )
        ended = sorted(grants, key=lambda g: g.id, reverse=True)
        for grant in ended:
            state = grant.state(self.day)
            if state == "revoked":
                return None, (
                    f"revoked: grant {grant.id} was revoked on {china_day(grant.revoked_at)} "
                    f"({grant.revoke_reason})"
                )
            if state == "expired":
                return None, f"expired: grant {grant.id} ended on {grant.valid_until}"
            if state == "not yet valid":
                return None, f"not yet valid: grant {grant.id} starts on {grant.valid_from}"
        return None, (
            f"no grant: {coordinate} of {owner}'s records is shared on condition; file a share "
            f"request (requestShare) with {owner} stating your purpose"
        )


def describe(book: GrantBook, requester: str, owner: str, coordinate: str) -> tuple[list[int], str]:
    """The active grants that open a conditional field, and in words what they allow or
    what is missing."""
    active = [g for g in book.about(requester, owner, coordinate) if g.state(book.day) == "active"]
    if active:
        return [g.id for g in active], "; ".join(
            f"grant {g.id}: for {g.purpose}, {g.scope}, until {g.valid_until}" for g in active
        )
    return [], book.match(requester, owner, coordinate, None, None, None)[1]


class Grants:
    """The current grant book of this process: reloaded when the grant version or the day
    changes. Each request reads the version: with its client (clients.ClientLookup), or in a
    statement of its own when ``version`` is not given."""

    def __init__(self) -> None:
        self._book = GrantBook("", date.min)

    async def current(self, rows: Rows, version: int | None = None) -> GrantBook:
        if version is None:
            (head,) = await rows(select(HEAD.c.version).where(HEAD.c.id == 1))
            version = head.version
        day = today()
        stamp = f"{version}@{day.isoformat()}"
        if self._book.version != stamp:
            grants = tuple(GrantRule.of(row) for row in await rows(select(GRANT)))
            self._book = GrantBook(stamp, day, grants)
        return self._book
