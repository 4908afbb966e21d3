"""Who may read which field of which department's records: the policy files (files.py),
decided once per version (decisions.py), with a department's part in a record
(relations.py)."""

from hub.policy.decisions import Decision, Policy, PolicyStore, Scope, lint, load_policy
from hub.policy.files import (
    ROLES,
    CatalogEntry,
    PolicyError,
    Problem,
    SharedFields,
    Sharing,
)
from hub.policy.relations import RELATED_TYPES, Relation, Relations

__all__ = [
    "RELATED_TYPES",
    "ROLES",
    "CatalogEntry",
    "Decision",
    "Policy",
    "PolicyError",
    "PolicyStore",
    "Problem",
    "Relation",
    "Relations",
    "Scope",
    "SharedFields",
    "Sharing",
    "lint",
    "load_policy",
]
