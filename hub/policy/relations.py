"""A department's part in a record, which the policy may let open fields of it.

Departments act as one on an enterprise: they inspect together (综合查一次), help it rectify
(联合帮扶整改), settle orders that contradict each other (标准打架) and hand cases on (案件移送).
Their part in a record is a fact of the data (the participants of an inspection, the
assisting departments of an order, a recorded conflict, the department a case went to), so a
policy line can name it where it names a caller: ``p, participant, *, inspection-findings,
read, allow``. The loaders read each record's relations to the caller with the record itself
(one column per relation, in the same statement), and decisions stay per (caller, owner,
Type.field, relations) per policy version: never a policy call per record.
"""

from __future__ import annotations

from enum import StrEnum

__all__ = ["RELATED_TYPES", "Relation", "Relations"]


class Relation(StrEnum):
    PARTICIPANT = "participant"  # takes part in a joint inspection (综合查一次)
    ASSISTING = "assisting"  # helps the enterprise carry out an order (联合帮扶整改)
    CONFLICTING = "conflicting"  # its own open order conflicts with this one (标准打架)
    TRANSFEREE = "transferee"  # the case was transferred to it (案件移送)

    @property
    def description(self) -> str:
        return DESCRIPTIONS[self]


DESCRIPTIONS = {
    Relation.PARTICIPANT: "a participant of the joint inspection (综合查一次)",
    Relation.ASSISTING: "an assisting department of the rectification (联合帮扶整改)",
    Relation.CONFLICTING: "a department whose order conflicts with this one (标准打架)",
    Relation.TRANSFEREE: "the department the case was transferred to (案件移送)",
}

# The record types each relation is a part in; a finding is decided with its inspection,
# an acceptance with the rectification it accepts.
RELATED_TYPES: dict[Relation, tuple[str, ...]] = {
    Relation.PARTICIPANT: ("Inspection", "Finding"),
    Relation.ASSISTING: ("Rectification", "Acceptance"),
    Relation.CONFLICTING: ("Rectification",),
    Relation.TRANSFEREE: ("Penalty",),
}

# The caller's relations to one record, as a sorted tuple of relation names: a cache key.
Relations = tuple[str, ...]
