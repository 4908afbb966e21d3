"""Trusted documents on the request path: which document a request runs, and whether its
caller may run one that is not registered.

A request names its document by text (``query``), by id (``documentId`` "sha256:<hex>", or
``extensions.persistedQuery.sha256Hash``), or both (params.py holds them equal). An id runs
the document registered under it for the caller's client (`hub documents register`), and
the access record names it. With HUB_TRUSTED_DOCUMENTS on, department and enterprise
systems run registered documents only: text is accepted when it is a registered document
(its sha256 is one of the client's), anything else is refused before it is priced, read or
run. Developer credentials (`hub clients create --developer`), auditors and admins keep
free queries, for GraphiQL and investigations; their reads pass the same policy and record.

Documents belong to a client's name, not to one token: a system that rotates its token (a
new client of the same name) keeps its documents. A JWT's caller is "jwt:<sub>".
"""

from __future__ import annotations

from hub.auth import Principal
from hub.documents import find
from hub.domain import Role
from hub.errors import DocumentNotFound, DocumentNotTrusted
from hub.params import Asked, Params, text_digest
from hub.schema.loaders import Reader

__all__ = ["Documents", "holder"]

# The roles whose systems read enterprise data on their own: held to registered documents.
HELD = frozenset({Role.DEPARTMENT, Role.ENTERPRISE})


def holder(principal: Principal) -> str:
    """Whose documents a caller runs: its client's name, or "jwt:<sub>" for a JWT."""
    return principal.client if principal.client.startswith("jwt:") else principal.name


class Documents:
    """Resolves what a request asks for into the document it runs."""

    def __init__(self, required: bool) -> None:
        self.required = required

    def held(self, principal: Principal) -> bool:
        """Whether this caller may run registered documents only."""
        return self.required and principal.role in HELD and not principal.developer

    async def resolve(self, asked: Asked, principal: Principal, reader: Reader) -> Params:
        """The request to run; DocumentNotFound for an id the caller's client has not
        registered, DocumentNotTrusted for text a held caller has not registered."""
        held = self.held(principal)
        if asked.digest is None:
            assert asked.query is not None  # noqa: S101 - params.py: text or an id, or both
            if not held:
                return asked.running(asked.query, None)
            digest = text_digest(asked.query)
            if await find(reader, holder(principal), digest) is None:
                raise DocumentNotTrusted(
                    "this hub runs only documents registered for your system: send the "
                    "documentId of a registered document (`hub documents list` shows them), "
                    "or ask the hub's operator to register this one with `hub documents "
                    f"register FILE --client {holder(principal)}` (its id would be "
                    f"sha256:{digest})",
                    documentId=f"sha256:{digest}",
                )
            return asked.running(asked.query, f"sha256:{digest}")
        text = await find(reader, holder(principal), asked.digest)
        if text is not None:
            return asked.running(text, f"sha256:{asked.digest}")
        if asked.query is not None and not held:  # an automatic persisted query's retry
            return asked.running(asked.query, None)
        raise DocumentNotFound(
            f"no document sha256:{asked.digest} is registered for your system: check the id "
            "(`hub documents list` shows the registered ones), have it registered with `hub "
            f"documents register FILE --client {holder(principal)}`"
            + ("" if held else ", or send its text as query"),
            documentId=f"sha256:{asked.digest}",
        )
