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

    @classmethod
    async def create(cls, access: Access, loaders: Loaders) -> Context:
        """A context with the departments read (one statement) for records to point at."""
        from hub.schema.types import Department

        rows = await loaders.departments()
        access.departments = {code: Department(**row._mapping) for code, row in rows.items()}
        return cls(access, loaders)


Info = strawberry.Info[Context, None]
