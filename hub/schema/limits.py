"""Query limits: depth, aliases and tokens, answered as QUERY_TOO_COMPLEX.

strawberry's limiters report plain validation errors; ``too_complex`` runs the same rules
against a context that gives their errors the hub's code.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from graphql import ASTValidationRule, GraphQLError, ValidationContext, ValidationRule
from strawberry.extensions import (
    AddValidationRules,
    MaxAliasesLimiter,
    MaxTokensLimiter,
    QueryDepthLimiter,
    SchemaExtension,
)

from hub.errors import QueryTooComplex

__all__ = ["MAX_ALIASES", "MAX_DEPTH", "MAX_TOKENS", "limit_rules", "limits"]

MAX_DEPTH = 10  # a full dossier is 6 deep; introspection does not count
MAX_ALIASES = 30
MAX_TOKENS = 5000  # a full dossier query is about 300
# graphql-core's parser says this on MAX_TOKENS; not a secret.
TOKEN_LIMIT_MESSAGE = "Document contains more than"  # noqa: S105


class _Coding:
    """A ValidationContext whose reported errors carry QueryTooComplex."""

    def __init__(self, context: ValidationContext) -> None:
        self._context = context

    def report_error(self, error: GraphQLError) -> None:
        self._context.report_error(
            GraphQLError(error.message, error.nodes, original_error=QueryTooComplex(error.message))
        )

    def __getattr__(self, name: str) -> Any:
        return getattr(self._context, name)


def too_complex(rule: type[ASTValidationRule]) -> type[ASTValidationRule]:
    """``rule`` (one that checks the whole document when created) with coded errors."""

    class Coded(ValidationRule):
        def __init__(self, context: ValidationContext) -> None:
            super().__init__(context)
            rule(_Coding(context))  # type: ignore[arg-type]

    return Coded


def limit_rules() -> list[type[ASTValidationRule]]:
    """The depth and alias limits as validation rules with coded errors."""
    return [
        too_complex(rule)
        for limiter in (QueryDepthLimiter(max_depth=MAX_DEPTH), MaxAliasesLimiter(MAX_ALIASES))
        for rule in limiter.validation_rules
    ]


def limits() -> list[Callable[[], SchemaExtension]]:
    rules = limit_rules()
    return [lambda: AddValidationRules(rules), lambda: MaxTokensLimiter(MAX_TOKENS)]
