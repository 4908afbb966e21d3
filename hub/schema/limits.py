"""What a document may hold: limits of depth, aliases and tokens, answered as
QUERY_TOO_COMPLEX, and plain text in its strings, answered as BAD_USER_INPUT; caches of
documents for short queries only.

strawberry's limiters report plain validation errors; ``too_complex`` runs the same rules
against a context that gives their errors the hub's code. A string literal may spell NUL or
a lone surrogate with an escape (``"\\u0000"``) that no check of the raw text sees: the
parsed values are checked as variables are (params.py).

Departments send the same few queries over and over, so parsed and validated documents are
cached; but a cache keyed on whole query texts holds whatever it is sent: 300 distinct
queries padded to 900 KB with a comment grew the process by 518 MB (270 MB without a
credential, through the access record's hash). Queries longer than ``MAX_CACHED_QUERY``
are parsed and validated each time and never cached.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

import orjson
from graphql import (
    ASTValidationRule,
    GraphQLError,
    StringValueNode,
    ValidationContext,
    ValidationRule,
)
from strawberry.extensions import (
    AddValidationRules,
    MaxAliasesLimiter,
    MaxTokensLimiter,
    ParserCache,
    QueryDepthLimiter,
    SchemaExtension,
    ValidationCache,
)

from hub.errors import QueryTooComplex
from hub.text import problem

__all__ = [
    "MAX_ALIASES",
    "MAX_CACHED_QUERY",
    "MAX_DEPTH",
    "MAX_TOKENS",
    "PlainStrings",
    "ShortParserCache",
    "ShortValidationCache",
    "cacheable",
    "limit_rules",
    "limits",
]

MAX_DEPTH = 10  # a full dossier is 6 deep; introspection does not count
MAX_ALIASES = 30
MAX_TOKENS = 5000  # a full dossier query is about 300
MAX_CACHED_QUERY = 10_000  # characters; a full dossier query has about 1,100
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


class PlainStrings(ValidationRule):
    """String literals hold text a record can keep: no NUL, controls or lone surrogates."""

    def enter_string_value(self, node: StringValueNode, *_: Any) -> None:
        if found := problem(node.value, prose=True):
            self.report_error(GraphQLError(f"A string of the document {found}.", node))


def limit_rules() -> list[type[ASTValidationRule]]:
    """The depth and alias limits as validation rules with coded errors."""
    return [
        too_complex(rule)
        for limiter in (QueryDepthLimiter(max_depth=MAX_DEPTH), MaxAliasesLimiter(MAX_ALIASES))
        for rule in limiter.validation_rules
    ]


def limits() -> list[Callable[[], SchemaExtension]]:
    rules = [*limit_rules(), PlainStrings]
    return [lambda: AddValidationRules(rules), lambda: MaxTokensLimiter(MAX_TOKENS)]


def cacheable(query: str | None) -> bool:
    """Whether a query is short enough for the caches of documents."""
    return query is not None and len(query) <= MAX_CACHED_QUERY


MAX_CACHED_VARIABLES = 512  # bytes of JSON


def variables_key(variables: Mapping[str, Any] | None) -> bytes | None:
    """A request's variables as a key of what is remembered per document and variables
    (its cost, its arguments): their JSON with sorted keys; None past MAX_CACHED_VARIABLES
    or where JSON cannot say them (an integer past 64 bits)."""
    try:
        encoded = orjson.dumps(variables or {}, option=orjson.OPT_SORT_KEYS)
    except TypeError:  # orjson.JSONEncodeError
        return None
    return encoded if len(encoded) <= MAX_CACHED_VARIABLES else None


class ShortParserCache(ParserCache):
    """ParserCache for short queries; strawberry parses longer ones itself, uncached."""

    def on_parse(self) -> Iterator[None]:
        if cacheable(self.execution_context.query):
            yield from super().on_parse()
        else:
            yield


class ShortValidationCache(ValidationCache):
    """ValidationCache for short queries; strawberry validates longer ones itself."""

    def on_validate(self) -> Iterator[None]:
        if cacheable(self.execution_context.query):
            yield from super().on_validate()
        else:
            yield
