"""Trusted documents on the request path: a request names its document by text or by id,
and with HUB_TRUSTED_DOCUMENTS on, department and enterprise systems run only documents
registered for them."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest

from hub.params import BadRequest, asked_for

QUERY = "query Names { departments { code } }"
DIGEST = hashlib.sha256(QUERY.encode()).hexdigest()


@pytest.mark.parametrize(
    ("payload", "text", "digest"),
    [
        ({"query": QUERY}, QUERY, None),
        ({"documentId": f"sha256:{DIGEST}"}, None, DIGEST),
        ({"documentId": DIGEST.upper()}, None, DIGEST),  # a bare digest, any case
        ({"extensions": {"persistedQuery": {"version": 1, "sha256Hash": DIGEST}}}, None, DIGEST),
        # Apollo's retry: the text with its hash, which must agree.
        ({"query": QUERY, "extensions": {"persistedQuery": {"version": 1, "sha256Hash": DIGEST}}},
         QUERY, DIGEST),
        ({"query": QUERY, "documentId": f"sha256:{DIGEST}",
          "extensions": {"persistedQuery": {"version": 1, "sha256Hash": DIGEST}}}, QUERY, DIGEST),
    ],
)  # fmt: skip
def test_a_request_names_its_document_by_text_or_id(
    payload: dict[str, Any], text: str | None, digest: str | None
) -> None:
    asked = asked_for(payload)
    assert (asked.query, asked.digest) == (text, digest)


@pytest.mark.parametrize(
    ("payload", "said"),
    [
        ({}, 'or "documentId" the id (sha256:<hex>) of a document registered'),
        ({"documentId": "sha256:abc"}, '"documentId" must be "sha256:" and the 64 hexadecimal'),
        ({"documentId": 7}, '"documentId" must be "sha256:"'),
        ({"documentId": f"md5:{DIGEST}"}, '"documentId" must be "sha256:"'),
        ({"documentId": f"sha256:{DIGEST}\n"}, '"documentId" must be "sha256:"'),
        ({"extensions": {"persistedQuery": {"version": 2, "sha256Hash": DIGEST}}},
         '"extensions.persistedQuery" must be {"version": 1'),
        ({"extensions": {"persistedQuery": {"version": 1, "sha256Hash": ["x"]}}},
         '"extensions.persistedQuery" must be'),
        ({"extensions": {"persistedQuery": "yes"}}, '"extensions.persistedQuery" must be'),
        ({"query": "{ departments { code } }", "documentId": f"sha256:{DIGEST}"},
         "the document's id is not the sha256 of the query sent with it"),
        ({"documentId": f"sha256:{DIGEST}",
          "extensions": {"persistedQuery": {"version": 1, "sha256Hash": "0" * 64}}},
         '"documentId" and "extensions.persistedQuery" name different documents'),
    ],
)  # fmt: skip
def test_a_malformed_document_id_is_refused_saying_what_to_send(
    payload: dict[str, Any], said: str
) -> None:
    with pytest.raises(BadRequest) as refused:
        asked_for(payload)
    assert said in refused.value.message
    assert refused.value.status == 400
