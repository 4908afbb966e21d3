"""The errors a user of the hub can meet, each with a stable code.

    HubError                  code               what the caller should do
     ├── Unauthenticated      UNAUTHENTICATED    send a valid bearer token
     ├── Forbidden            FORBIDDEN          ask for access (a share request, a policy)
     │    └── PurposeRequired PURPOSE_REQUIRED   state the purpose in X-Hub-Purpose
     ├── BadUserInput         BAD_USER_INPUT     fix the request as the message says
     │    ├── InvalidUSCC                        correct the credit code
     │    └── InvalidRecords                     fix the records named, publish again
     ├── QueryTooComplex      QUERY_TOO_COMPLEX  ask for less in one request
     ├── RateLimited          RATE_LIMITED       slow down; retry after the seconds given
     ├── ServiceUnavailable   SERVICE_UNAVAILABLE retry after the seconds given (the
     │                                           operator is told: the database is away)
     ├── NotFound             NOT_FOUND          check the identifier
     │    └── DocumentNotFound PERSISTED_QUERY_NOT_FOUND  register the document, or send
     │                                           its text (clients retry with it on this code)
     └── DocumentNotTrusted   TRUSTED_DOCUMENT_REQUIRED  send a registered document's id

Anything else raised while serving a request is a defect: callers see only
``INTERNAL`` with a reference, and the details go to the server log.
"""

from __future__ import annotations

from functools import partial
from typing import Any, ClassVar

__all__ = [
    "INTERNAL",
    "BadUserInput",
    "DocumentNotFound",
    "DocumentNotTrusted",
    "Forbidden",
    "HubError",
    "InvalidRecords",
    "InvalidUSCC",
    "NotFound",
    "PurposeRequired",
    "QueryTooComplex",
    "RateLimited",
    "ServiceUnavailable",
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


class InvalidRecords(BadUserInput):
    """A batch that cannot be published: nothing of it was. Each problem names the record
    (index in the batch, source id), the field and what is wrong."""

    SHOWN = 5

    def __init__(self, problems: list[Any], total: int) -> None:
        rejected = len({problem.index for problem in problems})
        shown = "; ".join(str(problem) for problem in problems[: self.SHOWN])
        more = f"; and {len(problems) - self.SHOWN} more" if len(problems) > self.SHOWN else ""
        super().__init__(
            f"{rejected} of {total} records cannot be published, so none was: {shown}{more}",
            problems=[problem.as_dict() for problem in problems],
        )
        self.problems = problems


class NotFound(HubError):
    code = "NOT_FOUND"


class DocumentNotFound(NotFound):
    """A document id that names no document registered for the caller's client. The code is
    the one Apollo Client, urql and others know: with it they send the document's text."""

    code = "PERSISTED_QUERY_NOT_FOUND"


class DocumentNotTrusted(HubError):
    """A document not registered for the caller, on a hub that runs registered documents
    only (HUB_TRUSTED_DOCUMENTS): nothing of it ran."""

    code = "TRUSTED_DOCUMENT_REQUIRED"


class Unauthenticated(HubError):
    """No valid credential: answered with HTTP 401 and no data."""

    code = "UNAUTHENTICATED"


class Forbidden(HubError):
    """A field or record the caller's department may not read; the rest of the answer stands."""

    code = "FORBIDDEN"

    def __init__(
        self, owner: str, field: str, reason: str, *, writing: bool = False, action: str = ""
    ) -> None:
        """``writing``: publishing was refused; ``action``: another act, e.g. deciding a
        share request; else a field was withheld."""
        super().__init__(
            f"{action} is forbidden: {reason}"
            if action
            else f"publishing {owner}'s {field} records is forbidden: {reason}"
            if writing
            else f"{field} of {owner}'s records is withheld: {reason}",
            owner=owner,
            field=field,
            reason=reason,
        )
        self.owner, self.field, self.reason = owner, field, reason
        self.writing, self.action = writing, action

    def __reduce__(self) -> tuple[Any, ...]:
        # copy() of an exception rebuilds it from its args: keep every attribute.
        rebuild = partial(Forbidden, writing=self.writing, action=self.action)
        return rebuild, (self.owner, self.field, self.reason)


class PurposeRequired(Forbidden):
    """A conditional field asked for without a stated purpose."""

    code = "PURPOSE_REQUIRED"

    def __reduce__(self) -> tuple[Any, ...]:
        return PurposeRequired, (self.owner, self.field, self.reason)


class QueryTooComplex(HubError):
    """A document over a limit: depth, aliases, tokens, or its cost against the budget."""

    code = "QUERY_TOO_COMPLEX"


class RateLimited(HubError):
    """A client over one of its limits in this process (hub/throttle.py): HTTP 429 with
    ``Retry-After``; nothing of the request was run."""

    code = "RATE_LIMITED"

    def __init__(self, message: str, *, limit: str, value: int, retry_after: int) -> None:
        super().__init__(message, limit=limit, value=value, retryAfter=retry_after)
        self.limit, self.value, self.retry_after = limit, value, retry_after

    def __reduce__(self) -> tuple[Any, ...]:
        rebuild = partial(
            RateLimited, limit=self.limit, value=self.value, retry_after=self.retry_after
        )
        return rebuild, (self.message,)


class ServiceUnavailable(HubError):
    """The database cannot be reached or written just now (an operator's condition, not a
    defect): HTTP 503 with ``Retry-After``; nothing was served without its record."""

    code = "SERVICE_UNAVAILABLE"
    RETRY_AFTER = 5  # seconds

    def __init__(self) -> None:
        super().__init__(
            "the hub cannot reach its database just now; nothing was read or written: try "
            f"again in {self.RETRY_AFTER} seconds",
            retryAfter=self.RETRY_AFTER,
        )

    def __reduce__(self) -> tuple[Any, ...]:
        return ServiceUnavailable, ()
