"""Publishing: a department's records into the hub, a batch at a time, all or nothing.

A batch is one kind of record of one owner. The policy decides whether the publisher may
write the owner's records of that kind (a ``write`` line; by default a department writes
only its own). Each record is keyed by (owner, sourceId): publishing it again unchanged
changes nothing, with changes makes a new version, and every version is kept in
``record_version`` with who published it and when. Retraction is a version too.

Publishers take the feed head first: it serializes them across processes and numbers the
versions, so the change feed (``seq``) is in commit order. A batch with any problem is
rolled back whole and raises InvalidRecords naming every problem.
"""

from hub.publishing.follow import readers_of
from hub.publishing.versions import Change, Published, Publisher, lock_feed
from hub.publishing.write import MAX_BATCH, publish, retract

__all__ = [
    "MAX_BATCH",
    "Change",
    "Published",
    "Publisher",
    "lock_feed",
    "publish",
    "readers_of",
    "retract",
]
