"""Requests that are wrong somewhere: the body, its content type, or the headers.

Bodies: arbitrary bytes, arbitrary JSON values, JSON objects whose ``query``,
``variables``, ``operationName`` and ``extensions`` are of every JSON type, deep nesting,
NaN and infinities, numbers beyond any type, other encodings, and escapes that JSON accepts
but no record may keep (NUL, lone surrogates, controls) spliced into the query, a variable,
a variable's name and a string literal. Headers: purposes and case references with
percent-encoded NUL, invalid UTF-8 and overlong ones; content types that are not JSON;
no, malformed and oversized credentials.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from urllib.parse import quote

from hypothesis import strategies as st

__all__ = ["JSON_VALUES", "Malformed", "malformed_requests"]


@dataclass(frozen=True)
class Malformed:
    """A request that is wrong somewhere: its body, its content type or its headers."""

    body: bytes
    content_type: bytes | None = b"application/json"
    purpose: bytes | None = None
    case: bytes | None = None
    authorization: str = "token"  # "token": a valid one; "none"; or this header verbatim

    def describe(self) -> str:
        """The request, its body cut short, for a failure's message."""
        body = self.body if len(self.body) <= 300 else self.body[:300] + b"..."
        return (
            f"body {body!r} ({len(self.body)} bytes), content type {self.content_type!r}, "
            f"purpose {self.purpose!r}, case {self.case!r}, authorization {self.authorization!r}"
        )

    def headers(self, token: str) -> dict[bytes, bytes]:
        headers: dict[bytes, bytes] = {}
        if self.content_type is not None:
            headers[b"Content-Type"] = self.content_type
        if self.purpose is not None:
            headers[b"X-Hub-Purpose"] = self.purpose
        if self.case is not None:
            headers[b"X-Hub-Case"] = self.case
        if self.authorization == "token":
            headers[b"Authorization"] = f"Bearer {token}".encode()
        elif self.authorization != "none":
            headers[b"Authorization"] = self.authorization.encode("latin-1", "replace")
        return headers


_SCALAR_JSON = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=40))
JSON_VALUES = st.recursive(
    _SCALAR_JSON,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12,
)  # fmt: skip
_DOCUMENTS = st.sampled_from([
    "{ departments { code } }", "{ __typename }", "query Q { departments { code } }",
    "mutation { __typename }", "subscription { changes { endCursor } }", "{", "", "   ",
    'query($u: String!) { enterprise(uscc: $u) { name } }', "{ enterprise }",
    "{ departments { code } } query B { __typename }",
])  # fmt: skip
_ESCAPES = st.sampled_from([
    "\\u0000", "\\ud800", "\\udfff", "\\ud83d", "\\u001b[31m", "\\uffff", "\\u202e", "\\u0085",
])  # fmt: skip
_HEADER_TEXT = st.one_of(
    st.sampled_from([
        b"%00", b"law-enforcement%00", b"%FF%FE", b"%ED%A0%80", b"%C0%80", b"\xff\xfe",
        b"rectification-check: %E6%95%B4%E6%94%B9", b"%", b"%%%", b"%1", b"x" * 600,
        b"%E6" * 400, b"%09", b"%20", b"%0A%0D", b"%7F", b"%C2%85",
    ]),
    # Any text, percent-encoded as the hub asks (raw bytes below 0x20 cannot cross HTTP).
    st.text(max_size=30).map(lambda value: quote(value, errors="surrogatepass").encode()),
)  # fmt: skip


def _request_objects() -> st.SearchStrategy[bytes]:
    members = st.fixed_dictionaries(
        {},
        optional={
            "query": st.one_of(_DOCUMENTS, JSON_VALUES),
            "variables": JSON_VALUES,
            "operationName": st.one_of(JSON_VALUES, st.sampled_from(["Q", "B", "", "1x", "Q" * 300])),
            "extensions": JSON_VALUES,
        },
    )  # fmt: skip
    return members.map(lambda payload: json.dumps(payload, allow_nan=True).encode())


def _spliced() -> st.SearchStrategy[bytes]:
    """Valid-looking requests with something spliced in where JSON's own checks miss it."""
    escape_in_query = _ESCAPES.map(
        lambda escape: ('{"query": "{ departments { code } } # ' + escape + '"}').encode()
    )
    escape_in_variables = st.tuples(_ESCAPES, st.sampled_from(["u", "k" + "\\u0000"])).map(
        lambda pair: (
            '{"query": "query($u: String!) { enterprise(uscc: $u) { name } }", '
            f'"variables": {{"{pair[1]}": "9133{pair[0]}"}}}}'
        ).encode()
    )
    escape_in_literal = _ESCAPES.map(
        lambda escape: ('{"query": "{ enterprise(uscc: \\"' + escape.replace("\\", "\\\\")
                        + '\\") { name } }"}').encode()
    )  # fmt: skip
    deep = st.integers(1, 5000).flatmap(
        lambda depth: st.sampled_from([
            b"[" * depth + b"]" * depth,
            b'{"query": "{ __typename }", "variables": {"v": ' + b"[" * depth + b"]" * depth + b"}}",
            b'{"query": "' + b"{ departments " * min(depth, 400) + b"}" * min(depth, 400) + b'"}',
            b'{"query": "{ __typename }", "extensions": ' + b'{"a":' * depth + b"1" + b"}" * depth + b"}",
        ])
    )  # fmt: skip
    numbers = st.sampled_from([
        b'{"query": "{ __typename }", "variables": {"n": NaN}}',
        b'{"query": "{ __typename }", "variables": {"n": -Infinity}}',
        b'{"query": "{ __typename }", "variables": {"n": 1e999999}}',
        b'{"query": "{ enterprises(first: 1) { totalCount } }", "variables": {"n": ' + b"9" * 5000 + b"}}",
        b'{"query": "query($n: Int!) { enterprises(first: $n) { totalCount } }", "variables": {"n": 1e300}}',
        b'{"query": "query($n: Int!) { enterprises(first: $n) { totalCount } }", "variables": {"n": 99999999999999999999}}',
        b'{"query": "{ enterprises(first: 99999999999999999999) { totalCount } }"}',
        b'{"query": "query($d: Decimal!) { __typename }", "variables": {"d": 1e308}}',
    ])  # fmt: skip
    encodings = st.sampled_from([
        '{"query": "{ departments { code } }"}'.encode("utf-16"),
        b'\xef\xbb\xbf{"query": "{ departments { code } }"}',
        b'{"query": "{ departments { code } }"}\x00',
        b'{"query": "\xff\xfe"}', b'{"query": "\xed\xa0\x80"}', b"", b"null", b"[]", b'"{}"',
        b'{"query": "{ departments { code } }", "query": 1}',
    ])  # fmt: skip
    # Past HUB_MAX_REQUEST_BYTES (1,000,000 by default): refused with 413 before parsing.
    oversized = st.sampled_from([
        b'{"query": "{ __typename }", "variables": {"v": "' + b"x" * 1_000_001 + b'"}}',
        b"[" * 1_000_001,
    ])  # fmt: skip
    return st.one_of(oversized, escape_in_query, escape_in_variables, escape_in_literal, deep, numbers,
                     encodings)  # fmt: skip


def malformed_requests() -> st.SearchStrategy[Malformed]:
    bodies = st.one_of(
        st.binary(max_size=200),
        JSON_VALUES.map(lambda value: json.dumps(value, allow_nan=True).encode()),
        _request_objects(),
        _spliced(),
    )
    content_types = st.one_of(
        st.just(b"application/json"),
        st.sampled_from([
            None, b"text/plain", b"application/graphql", b"multipart/form-data; boundary=x",
            b"application/json; charset=latin-1", b"APPLICATION/JSON", b"application/json;",
            b"application/x-www-form-urlencoded", b"", b"application/jsonx",
        ]),
    )  # fmt: skip
    authorizations = st.sampled_from(
        ["token", "token", "none", "Bearer", "Bearer x", "Basic Zm9vOmJhcg==", "Bearer é",
         "bearer hub_" + "A" * 43, "Bearer " + "x" * 5000]
    )  # fmt: skip
    return st.builds(
        Malformed,
        bodies,
        content_types,
        st.none() | _HEADER_TEXT,
        st.none() | _HEADER_TEXT,
        authorizations,
    )
