"""Credentials: no data without a valid one, and a 401 that says which check failed."""

import asyncio
import base64
import hashlib
import hmac
import json
import time
from collections.abc import Iterator
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from starlette.testclient import TestClient

from hub.app import create_app
from hub.clients import create_client, revoke_client
from hub.db import create_engine
from hub.domain import Role
from hub.settings import Settings
from tests.conftest import without_trace

QUERY = {"query": "{ departments { code } }"}
SECRET = "a-shared-secret-of-at-least-32-bytes!"


def unauthenticated(response: Any) -> str:
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == 'Bearer realm="hub"'
    answer = response.json()
    assert "data" not in answer
    (error,) = answer["errors"]
    assert error["extensions"] == {"code": "UNAUTHENTICATED"}
    message: str = error["message"]
    return message


@pytest.mark.parametrize(
    ("authorization", "message"),
    [
        (
            None,
            "the request has no Authorization header: send 'Authorization: Bearer <token>' with "
            "a client token from the hub's administrator or a JWT from your identity provider",
        ),
        ("Basic bWFya2V0OnNlY3JldA==", "the Authorization header uses the 'Basic' scheme; use 'Bearer <token>'"),
        ("Bearer", "the bearer token is empty; send 'Authorization: Bearer <token>'"),
        (
            "Bearer hub_this-is-not-a-real-token",
            "the bearer token is not a token of this hub; check that it was copied whole, or ask "
            "the hub's administrator for a new one",
        ),
        (
            "Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln",
            "the bearer token is not a client token of this hub, and this hub accepts no JWTs "
            "(no key is configured)",
        ),
    ],
)  # fmt: skip
def test_bad_credentials_get_401_and_no_data(
    hub: TestClient, authorization: str | None, message: str
) -> None:
    headers = {"Authorization": authorization} if authorization is not None else {}
    assert unauthenticated(hub.post("/graphql", json=QUERY, headers=headers)) == message


def test_introspection_needs_credentials_too(hub: TestClient, tokens: dict[str, str]) -> None:
    query = {"query": "{ __schema { queryType { name } } }"}
    unauthenticated(hub.post("/graphql", json=query))
    response = hub.post(
        "/graphql", json=query, headers={"Authorization": f"Bearer {tokens['fire']}"}
    )
    assert without_trace(response.json()) == {
        "data": {"__schema": {"queryType": {"name": "Query"}}}
    }


def test_revocation_takes_effect_on_the_next_request(
    hub: TestClient, demo_database: Settings
) -> None:
    async def new_client() -> tuple[int, str]:
        engine = create_engine(demo_database)
        new = await create_client(engine, department="fire", name="to revoke", role=Role.DEPARTMENT)
        await engine.dispose()
        return new.id, new.token

    async def revoke(client_id: int) -> None:
        engine = create_engine(demo_database)
        await revoke_client(engine, client_id)
        await engine.dispose()

    client_id, token = asyncio.run(new_client())
    headers = {"Authorization": f"Bearer {token}"}
    assert hub.post("/graphql", json=QUERY, headers=headers).status_code == 200
    asyncio.run(revoke(client_id))
    message = unauthenticated(hub.post("/graphql", json=QUERY, headers=headers))
    assert message.startswith(f"client {client_id} (to revoke) was revoked on ")
    assert message.endswith("UTC; ask the hub's administrator for a new token")


@pytest.fixture(scope="module")
def ed25519() -> tuple[Ed25519PrivateKey, str]:
    key = Ed25519PrivateKey.generate()
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return key, public.decode()


@pytest.fixture(scope="module")
def jwt_hubs(
    demo_database: Settings, ed25519: tuple[Ed25519PrivateKey, str]
) -> Iterator[dict[str, TestClient]]:
    """One hub that trusts an HMAC secret, one that trusts an Ed25519 public key."""
    with (
        TestClient(
            create_app(Settings(database_url=demo_database.database_url, jwt_secret=SECRET))
        ) as hmac,
        TestClient(
            create_app(Settings(database_url=demo_database.database_url, jwt_public_key=ed25519[1]))
        ) as signed,
    ):
        yield {"hmac": hmac, "public": signed}


def claims(**changes: Any) -> dict[str, Any]:
    base = {
        "sub": "ecology-dispatch",
        "dept": "ecology",
        "role": "department",
        "exp": int(time.time()) + 300,
    }
    base.update(changes)
    return {key: value for key, value in base.items() if value is not None}


def post_jwt(hub: TestClient, token: str) -> Any:
    return hub.post(
        "/graphql",
        json={"query": '{ myAccess(owner: "market", type: "Enterprise") { field decision } }'},
        headers={"Authorization": f"Bearer {token}"},
    )


def test_valid_jwts_are_accepted(
    jwt_hubs: dict[str, TestClient], ed25519: tuple[Ed25519PrivateKey, str]
) -> None:
    for hub, token in [
        (jwt_hubs["hmac"], jwt.encode(claims(), SECRET, algorithm="HS256")),
        (jwt_hubs["public"], jwt.encode(claims(), ed25519[0], algorithm="EdDSA")),
    ]:
        response = post_jwt(hub, token)
        assert response.status_code == 200
        access = {
            entry["field"]: entry["decision"] for entry in response.json()["data"]["myAccess"]
        }
        assert access["Enterprise.name"] == "ALLOWED"  # as ecology, from the dept claim
        assert access["Enterprise.legalRepresentative"] == "CONDITIONAL"


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unsigned(payload: dict[str, Any]) -> str:
    header = b64(json.dumps({"alg": "none", "typ": "JWT"}).encode())
    return f"{header}.{b64(json.dumps(payload).encode())}."


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda key: jwt.encode(claims(exp=int(time.time()) - 120), SECRET, algorithm="HS256"),
         "the JWT has expired; get a new one from your identity provider"),
        (lambda key: jwt.encode(claims(exp=int(time.time()) - 10), SECRET, algorithm="HS256"), None),
        (lambda key: jwt.encode(claims(), "another-secret-of-at-least-32-bytes", algorithm="HS256"),
         "the JWT's signature does not verify with the hub's key"),
        (lambda key: unsigned(claims()),
         "the JWT's signing algorithm is not accepted here; use one of HS256, HS384, HS512"),
        (lambda key: jwt.encode(claims(), key, algorithm="EdDSA"),
         "the JWT's signing algorithm is not accepted here; use one of HS256, HS384, HS512"),
        (lambda key: jwt.encode(claims(dept=None), SECRET, algorithm="HS256"),
         "the JWT lacks the required claim 'dept'"),
        (lambda key: jwt.encode(claims(exp=None), SECRET, algorithm="HS256"),
         "the JWT lacks the required claim 'exp'"),
        (lambda key: jwt.encode(claims(dept="treasury"), SECRET, algorithm="HS256"),
         "the JWT's dept 'treasury' is not a department of the hub"),
        (lambda key: jwt.encode(claims(role="root"), SECRET, algorithm="HS256"),
         "the JWT's role 'root' is not one of department, auditor, admin, enterprise"),
        (lambda key: "not.a.jwt", "the JWT is not valid: Invalid header padding"),
        # Validly signed, yet hostile: claims of the wrong type or size never reach a record.
        (lambda key: jwt.encode(claims(dept=["market"]), SECRET, algorithm="HS256"),
         "the JWT's dept ['market'] is not a department of the hub"),
        (lambda key: jwt.encode(claims(dept={"a": 1}), SECRET, algorithm="HS256"),
         "the JWT's dept {'a': 1} is not a department of the hub"),
        (lambda key: jwt.encode(claims(role=["admin"]), SECRET, algorithm="HS256"),
         "the JWT's role ['admin'] is not one of department, auditor, admin, enterprise"),
        (lambda key: jwt.encode(claims(sub="x" * 201), SECRET, algorithm="HS256"),
         "the JWT's sub must be text of 1 to 128 characters naming the caller"),
        (lambda key: jwt.encode(claims(sub="a\x00b"), SECRET, algorithm="HS256"),
         "the JWT's sub holds a control character (U+0000 at position 2)"),
        (lambda key: jwt.encode(claims(dept="\x1b[31mmarket"), SECRET, algorithm="HS256"),
         "the JWT's dept '\\x1b[31mmarket' is not a department of the hub"),
        # A developer's credential is a department's: a string or another role is no claim.
        (lambda key: jwt.encode(claims(developer="yes"), SECRET, algorithm="HS256"),
         "the JWT's developer claim must be true or false, and true only with role department"),
        (lambda key: jwt.encode(claims(role="auditor", developer=True), SECRET, algorithm="HS256"),
         "the JWT's developer claim must be true or false, and true only with role department"),
        (lambda key: jwt.encode(claims(developer=True), SECRET, algorithm="HS256"), None),
    ],
)  # fmt: skip
def test_bad_jwts_get_401(
    jwt_hubs: dict[str, TestClient],
    ed25519: tuple[Ed25519PrivateKey, str],
    make: Any,
    message: str | None,
) -> None:
    response = post_jwt(jwt_hubs["hmac"], make(ed25519[0]))
    if message is None:  # within the allowed clock skew
        assert response.status_code == 200
    else:
        assert unauthenticated(response) == message


def test_a_public_key_hub_refuses_hmac_tokens_signed_with_that_key(
    jwt_hubs: dict[str, TestClient], ed25519: tuple[Ed25519PrivateKey, str]
) -> None:
    # The classic algorithm confusion: an HMAC "signature" keyed with the public key itself.
    header, payload = json.dumps({"alg": "HS256"}), json.dumps(claims())
    signing_input = f"{b64(header.encode())}.{b64(payload.encode())}"
    signature = hmac.new(ed25519[1].encode(), signing_input.encode(), hashlib.sha256).digest()
    forged = f"{signing_input}.{b64(signature)}"
    assert unauthenticated(post_jwt(jwt_hubs["public"], forged)).startswith(
        "the JWT's signing algorithm is not accepted here; use one of RS256"
    )


def test_an_enterprise_jwt_names_its_enterprise_and_no_other_jwt_does(
    jwt_hubs: dict[str, TestClient], demo_database: Settings
) -> None:
    """A JWT of role enterprise must carry a valid ``uscc`` claim, and reads that enterprise
    only; one of any other role carrying one is refused rather than trusted or ignored."""
    hub = jwt_hubs["hmac"]
    uscc = "9133010985H96UB001"

    def ask(claim: dict[str, Any], query: str = "{ myEnterprise { uscc name } }") -> Any:
        token = jwt.encode(claims(**claim), SECRET, algorithm="HS256")
        return hub.post("/graphql", json={"query": query},
                        headers={"Authorization": f"Bearer {token}"})  # fmt: skip

    served = ask({"role": "enterprise", "uscc": uscc.lower()})
    assert served.status_code == 200
    assert without_trace(served.json()) == {
        "data": {"myEnterprise": {"uscc": uscc, "name": "杭州恒华化工有限公司"}}
    }
    other = ask({"role": "enterprise", "uscc": uscc}, '{ enterprise(uscc: "91330112CP4FMGA07H") '
                "{ name } }")  # fmt: skip
    assert [e["extensions"]["field"] for e in other.json()["errors"]] == ["Query.enterprise"]
    for claim, message in [
        ({"role": "enterprise"},
         "the JWT's role is enterprise but it lacks a uscc claim (text): an enterprise's token "
         "names its unified social credit code"),
        ({"role": "enterprise", "uscc": 913301},
         "the JWT's role is enterprise but it lacks a uscc claim (text): an enterprise's token "
         "names its unified social credit code"),
        ({"role": "enterprise", "uscc": "9133010985H96UB00\x00"},
         "the JWT's uscc claim: '9133010985H96UB00\\x00' is not a valid unified social credit "
         "code: character '\\x00' at position 18 is not allowed; use digits and capital "
         "letters except I, O, Z, S and V"),
        ({"role": "department", "uscc": uscc},
         "the JWT's role is department but it carries a uscc claim: only tokens of role "
         "enterprise name an enterprise; ask your identity provider to leave it out"),
        ({"role": "auditor", "uscc": None}, None),
    ]:  # fmt: skip
        response = ask(claim, "{ departments { code } }")
        if message is None:
            assert response.status_code == 200
        else:
            assert unauthenticated(response) == message, claim
