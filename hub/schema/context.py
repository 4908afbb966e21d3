"""What every resolver may use during one request."""

from __future__ import annotations

from dataclasses import dataclass

import strawberry

from hub.schema.access import Access
from hub.schema.loaders import Loaders

__all__ = ["Context", "Info"]


@dataclass(slots=True)
class Context:
    access: Access
    loaders: Loaders


Info = strawberry.Info[Context, None]
