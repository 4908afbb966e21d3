"""The errors a user of the hub can meet, each with a stable code.

    HubError                  code               what the caller should do
     ├── Unauthenticated      UNAUTHENTICATED    send a valid bearer token
     ├── Forbidden            FORBIDDEN          ask for access, or state a purpose
     ├── BadUserInput         BAD_USER_INPUT     fix the request as the message says
     │    └── InvalidUSCC                        correct the credit code
     ├── QueryTooComplex      QUERY_TOO_COMPLEX  ask for less in one request
     └── NotFound             NOT_FOUND          check the identifier

Anything else raised while serving a request is a defect: callers see only
``INTERNAL`` with a reference, and the details go to the server log.
"""

from __future__ import annotations

from typing import Any, ClassVar

__all__ = [
    "INTERNAL",
    "BadUserInput",
    "Forbidden",
    "HubError",
    "InvalidUSCC",
    "NotFound",
    "QueryTooComplex",
    "Unauthenticated",
]

INTERNAL = "INTERNAL"


class HubError(Exception):
    """An error whose message is safe to show the caller and says what to do."""

    code: ClassVar[str] = INTERNAL

    def __init__(self, message: str, **context: Any) -> None:
        super().__init__(message)
        self.message = message
        self.context = context

    def extensions(self) -> dict[str, Any]:
        return {"code": self.code, **self.context}


class BadUserInput(HubError):
    code = "BAD_USER_INPUT"


class InvalidUSCC(BadUserInput):
    """A unified social credit code that breaks GB 32100-2015."""

    def __init__(self, value: str, problem: str) -> None:
        super().__init__(
            f"{value!r} is not a valid unified social credit code: {problem}",
            uscc=value,
        )
        self.problem = problem


class NotFound(HubError):
    code = "NOT_FOUND"


class Unauthenticated(HubError):
    """No valid credential: answered with HTTP 401 and no data."""

    code = "UNAUTHENTICATED"


class Forbidden(HubError):
    """A field or record the caller's department may not read; the rest of the answer stands."""

    code = "FORBIDDEN"

    def __init__(self, owner: str, field: str, reason: str) -> None:
        super().__init__(
            f"{field} of {owner}'s records is withheld: {reason}",
            owner=owner,
            field=field,
            reason=reason,
        )
        self.owner, self.field, self.reason = owner, field, reason

    def __reduce__(self) -> tuple[type[Forbidden], tuple[str, str, str]]:
        return (Forbidden, (self.owner, self.field, self.reason))


class QueryTooComplex(HubError):
    code = "QUERY_TOO_COMPLEX"
