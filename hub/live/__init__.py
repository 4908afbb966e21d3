"""Live subscriptions: the feed listener and its streams (listener.py), and the events built
once per stream and sent to each subscriber with its own access record (events.py)."""

from hub.live.listener import CHANNEL, OUTBOX_LIMIT, SLOW, FeedListener, Member, Stream

__all__ = ["CHANNEL", "OUTBOX_LIMIT", "SLOW", "FeedListener", "Member", "Stream"]
