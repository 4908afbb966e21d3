"""Where each GraphQL type's rows come from: Core columns labelled as the type's fields, the
tables they are in, and the caller's relations to a record as columns of its own statement.

Reads use Core selects, not ORM entities; every owned record carries its enterprise's USCC
and district as stored now (``_owned``), so decisions and the access record never take them
from where a record appears in an answer.

Every source about an enterprise also says how its rows are kept to one enterprise's
(``Source.own``, the USCC bound as ``own_enterprise`` when the statement runs): an
enterprise's own credential reads through statements narrowed so (loaders.Statements), so
that whatever asked, nothing of another enterprise is read for it.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from sqlalchemy import (
    ColumnElement,
    FromClause,
    Select,
    String,
    and_,
    bindparam,
    exists,
    or_,
    select,
)

from hub import models
from hub.conflicts import OPEN

__all__ = [
    "ACCEPTANCE",
    "ACTION_CODE",
    "ASSISTANT",
    "CREDIT_RECORD",
    "CREDIT_REPAIR",
    "DEPARTMENT",
    "ENTERPRISE",
    "FINDING",
    "INSPECTION",
    "INSPECTION_PLAN",
    "OWN_ENTERPRISE",
    "PARTICIPANT",
    "PENALTY",
    "RECORDS",
    "RECTIFICATION",
    "VERSION",
    "Source",
    "own_enterprise_id",
    "relations",
]


def _columns(model: type[models.Base], *names: str, **labels: str) -> list[ColumnElement[Any]]:
    table = model.__table__
    return [table.c[name] for name in names] + [
        table.c[column].label(label) for label, column in labels.items()
    ]


# The USCC of the enterprise whose own credential reads (see Source.own), bound by name.
OWN_ENTERPRISE = "own_enterprise"
_OWN = bindparam(OWN_ENTERPRISE, type_=String(18))


class Source:
    """Where a type's rows come from: its labelled columns, the tables they are in, and how
    its rows are kept to one enterprise's (``own``: None for rows about no enterprise)."""

    def __init__(
        self,
        columns: list[ColumnElement[Any]],
        tables: FromClause,
        own: ColumnElement[bool] | None = None,
    ) -> None:
        self.columns = columns
        self.tables = tables
        self.own = own
        # Built once: statements are immutable (each ``where`` makes a new one), and a
        # dossier starts ~10 of them per request.
        self._select = select(*columns).select_from(tables)

    def select(self) -> Select[Any]:
        """``SELECT columns FROM tables``."""
        return self._select


_ENTERPRISE = models.Enterprise.__table__
RECORD = ("id", "source_id", "version")
OWNER = {"owner_code": "owner"}


def _plain(
    model: type[models.Base],
    *names: str,
    own: ColumnElement[bool] | None = None,
    **labels: str,
) -> Source:
    return Source(_columns(model, *names, **labels), model.__table__, own)


def own_enterprise_id(column: ColumnElement[int]) -> ColumnElement[bool]:
    """``column``, an enterprise's id, is that of the enterprise bound as own_enterprise: the
    ``own`` condition of a statement about enterprises by id (see Source.own)."""
    own = select(_ENTERPRISE.c.id).where(_ENTERPRISE.c.uscc == _OWN).scalar_subquery()
    return column == own


def _of_own(model: type[models.Base]) -> Select[Any]:
    """The ids of ``model``'s records about the enterprise bound as own_enterprise."""
    table = model.__table__
    return (
        select(table.c.id)
        .join(_ENTERPRISE, _ENTERPRISE.c.id == table.c.enterprise_id)
        .where(_ENTERPRISE.c.uscc == _OWN)
    )


def _owned(model: type[models.Base], *names: str, via: str | None = None, **labels: str) -> Source:
    """A record's columns with its enterprise's USCC and district as stored now, joined
    directly or through the record it is about (``via``, a table name: acceptances and
    credit repairs). Decisions and the access record take the enterprise from these, never
    from where a record appears in an answer, so no alias can misfile a read."""
    table = model.__table__
    enterprise: list[ColumnElement[Any]] = [
        _ENTERPRISE.c.uscc.label("enterprise_uscc"),
        _ENTERPRISE.c.region.label("enterprise_region"),
    ]
    if via is None:
        joined = table.join(_ENTERPRISE, _ENTERPRISE.c.id == table.c.enterprise_id)
    else:
        parent = models.Base.metadata.tables[via]
        joined = table.join(parent, parent.c.id == table.c[f"{via}_id"]).join(
            _ENTERPRISE, _ENTERPRISE.c.id == parent.c.enterprise_id
        )
    # The enterprise is joined already: its own USCC keeps the rows to its records.
    own = _ENTERPRISE.c.uscc == _OWN
    return Source(_columns(model, *RECORD, *names, **OWNER, **labels) + enterprise, joined, own)


# The columns each GraphQL type is built from, labelled as its fields (see types.py).
DEPARTMENT = _plain(models.Department, "code", "name_zh", "name_en")
ENTERPRISE = _plain(
    models.Enterprise,
    "id",
    "uscc",
    "name",
    "legal_representative",
    "address",
    "industry",
    "region",
    "town",
    "registered_on",
    "status",
    "colour",
    "colour_since",
    "colour_reasons",
    own=_ENTERPRISE.c.uscc == _OWN,
    **OWNER,
)
CREDIT_RECORD = _owned(
    models.CreditRecord,
    "enterprise_id",
    "kind",
    "level",
    "reason",
    "issued_on",
    "expires_on",
    "status",
)
CREDIT_REPAIR = _owned(
    models.CreditRepair,
    "credit_record_id",
    "applied_on",
    "decided_on",
    "status",
    "opinion",
    via="credit_record",
)
INSPECTION = _owned(
    models.Inspection, "enterprise_id", "action_code", "kind", "inspected_on", "result"
)
# Whose an administrative-action code is: the inspection holding it, retracted or not, with
# its owner and enterprise (Query.inspectionByActionCode reads it as the caller may after).
ACTION_CODE = _owned(models.Inspection, "action_code", "retracted")
FINDING = _plain(
    models.InspectionFinding,
    "id",
    "inspection_id",
    "category",
    "description",
    own=models.InspectionFinding.__table__.c.inspection_id.in_(_of_own(models.Inspection)),
)
PARTICIPANT = _plain(
    models.InspectionParticipant,
    "department",
    "inspection_id",
    own=models.InspectionParticipant.__table__.c.inspection_id.in_(_of_own(models.Inspection)),
)
PENALTY = _owned(
    models.Penalty,
    "enterprise_id",
    "case_number",
    "violation",
    "legal_basis",
    "amount_fen",
    "decided_on",
    "status",
    "minor_first_offence_exempt",
    "decision_issued",
    "compliance_suggestion_issued",
    "credit_repair_notice_issued",
    transferred_to_code="transferred_to",
)
RECTIFICATION = _owned(
    models.Rectification,
    "enterprise_id",
    "requirement",
    "ordered_on",
    "deadline",
    "status",
    "inspection_id",
    "penalty_id",
    codes="requirement_codes",
    due="deadline",
    state="status",
)
ASSISTANT = _plain(
    models.RectificationAssistant,
    "department",
    "rectification_id",
    own=models.RectificationAssistant.__table__.c.rectification_id.in_(
        _of_own(models.Rectification)
    ),
)
ACCEPTANCE = _owned(
    models.Acceptance, "rectification_id", "accepted_on", "verdict", "opinion", via="rectification"
)
# A plan is listed away from its enterprise's dossier (Query.inspectionPlans), so it names
# its enterprise itself: the USCC as stored now, as every owned record carries it.
_PLAN = _owned(
    models.InspectionPlan, "enterprise_id", "month", "subject", "kind", "status", "inspection_id"
)
INSPECTION_PLAN = Source(
    [*_PLAN.columns, _ENTERPRISE.c.uscc.label("uscc")], _PLAN.tables, _PLAN.own
)
VERSION = _plain(
    models.RecordVersion,
    "seq",
    "kind",
    "record_id",
    "version",
    "change",
    "changed",
    "reason",
    "published_at",
    "publisher",
    "client",
    # A version as filed when published: one filed under another enterprise was about that one.
    own=models.RecordVersion.__table__.c.uscc == _OWN,
)
# Each publishable type's model and columns, for the change feed.
RECORDS: dict[str, tuple[Any, Source]] = {
    "CreditRecord": (models.CreditRecord, CREDIT_RECORD),
    "CreditRepair": (models.CreditRepair, CREDIT_REPAIR),
    "Inspection": (models.Inspection, INSPECTION),
    "Penalty": (models.Penalty, PENALTY),
    "Rectification": (models.Rectification, RECTIFICATION),
    "Acceptance": (models.Acceptance, ACCEPTANCE),
    "InspectionPlan": (models.InspectionPlan, INSPECTION_PLAN),
}


@lru_cache(maxsize=64)
def relations(
    caller: str, record: ColumnElement[int] | None = None
) -> dict[str, dict[str, ColumnElement[Any]]]:
    """Per record type, the caller's relations to a record (see hub/policy/relations.py) as
    conditions on its id: ``record``, or (None) the id column of the type's own table, so
    that they are columns of the row's own statement: no statement of their own, however
    many rows. The change feed correlates them with a version's record id instead.

    Built once per department and kind of use (its aliases cost more to build than the
    statements they are part of: a quarter of a live event's time); don't change what it
    returns."""
    assistant = models.RectificationAssistant.__table__.c
    participant = models.InspectionParticipant.__table__.c
    conflict = models.Conflict.__table__.c
    acceptance = models.Acceptance.__table__.alias("accepted").c
    mine = models.Rectification.__table__.alias("mine").c
    theirs = models.Rectification.__table__.alias("theirs").c
    penalty = models.Penalty.__table__.alias("transferred").c

    def own(model: type[models.Base]) -> ColumnElement[int]:
        return model.__table__.c.id if record is None else record

    def assisting(order: Any) -> ColumnElement[bool]:
        return exists().where(assistant.rectification_id == order, assistant.department == caller)

    order = own(models.Rectification)
    return {
        "Inspection": {
            "participant": exists().where(
                participant.inspection_id == own(models.Inspection),
                participant.department == caller,
            )
        },
        "Rectification": {
            "assisting": assisting(order),
            # While the conflict stands: unsettled, and both orders still to be carried out
            # (the caller's own too, so that an order made up and retracted opens nothing).
            "conflicting": exists().where(
                conflict.settled_at.is_(None),
                or_(
                    and_(
                        conflict.first_id == order,
                        conflict.second_owner == caller,
                        mine.id == conflict.second_id,
                    ),
                    and_(
                        conflict.second_id == order,
                        conflict.first_owner == caller,
                        mine.id == conflict.first_id,
                    ),
                ),
                theirs.id == order,
                # Each status its own comparison: an IN list would be rendered again at
                # every execution (see db.one_of).
                *(or_(*(side.status == status for status in OPEN)) for side in (mine, theirs)),
                *(side.retracted.is_(False) for side in (mine, theirs)),
            ),
        },
        "Acceptance": {
            "assisting": exists().where(
                acceptance.id == own(models.Acceptance),
                assistant.rectification_id == acceptance.rectification_id,
                assistant.department == caller,
            )
        },
        "Penalty": {
            "transferee": exists().where(
                penalty.id == own(models.Penalty), penalty.transferred_to == caller
            )
        },
    }
