"""Supervision drawn from the shared records: each enterprise's three-colour code (三色码)
with its reasons (colours.py), and how many inspections one enterprise bears before the hub
warns (inspections.py). The rules are policy files (hub/policy/supervision.py);
hub/publishing keeps colours and records warnings as records change. Nothing here imports
the database driver or the web framework."""

from hub.supervision.colours import Computed, Facts, Ref, compute
from hub.supervision.inspections import Judgement, Verdict, judge, ordinal, period, within

__all__ = [
    "Computed",
    "Facts",
    "Judgement",
    "Ref",
    "Verdict",
    "compute",
    "judge",
    "ordinal",
    "period",
    "within",
]
