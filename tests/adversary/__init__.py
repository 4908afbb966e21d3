"""An adversary of the hub, shared by tests/test_fuzz.py and the long run in bench/fuzz.py.

- ``documents``: queries and mutations generated from the hub's own schema by
  hypothesis-graphql, steered towards the data (real USCCs, department codes, source ids,
  districts, cursors) so that they reach records, with aliases so that nothing can depend on
  response keys;
- ``malformed``: requests that are wrong somewhere: bodies that are not JSON, JSON that is
  not a GraphQL request, parameters or headers that hold what no record may keep;
- ``secrets``: the values each caller must never see, a scanner that finds them anywhere in
  an answer, and ``judge``, what any answer must be (a 200 or a 4xx, every error coded).
"""

from tests.adversary.documents import documents, pools, root_fields
from tests.adversary.malformed import Malformed, malformed_requests
from tests.adversary.secrets import (
    CODES,
    Caller,
    Ground,
    Scanner,
    Secrets,
    callers,
    ground_of,
    judge,
    read_ground,
)

__all__ = [
    "CODES",
    "Caller",
    "Ground",
    "Malformed",
    "Scanner",
    "Secrets",
    "callers",
    "documents",
    "ground_of",
    "judge",
    "malformed_requests",
    "pools",
    "read_ground",
    "root_fields",
]
