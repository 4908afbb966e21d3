"""Who is calling: bearer tokens of registered clients, or JWTs from an identity provider.

Client tokens look like ``hub_<43 url-safe characters>`` and are stored only as SHA-256
digests. JWTs are verified with the configured key and must carry ``sub``, ``dept``,
``role`` and ``exp``; a JWT of role ``enterprise`` also ``uscc``, the enterprise whose own
credential it is, and a JWT of any other role must not carry one (a token that names an
enterprise but is not held to it is an identity provider's mistake worth refusing). Every
failure is an ``Unauthenticated`` error that says which check failed, never what the hub
knows about other clients.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import jwt

from hub.domain import DEPARTMENTS, Role
from hub.errors import InvalidUSCC, Unauthenticated
from hub.settings import Settings
from hub.text import escaped, problem
from hub.uscc import parse_uscc

__all__ = [
    "CLIENT_TOKEN_PREFIX",
    "Authenticator",
    "Principal",
    "client_token_hash",
    "hash_token",
    "new_token",
]

CLIENT_TOKEN_PREFIX = "hub_"  # noqa: S105 - a prefix, not a secret
# Clocks of the identity provider and the hub may differ a little.
JWT_LEEWAY_SECONDS = 30
HMAC_ALGORITHMS = ["HS256", "HS384", "HS512"]
MAX_SUBJECT = 128  # "jwt:<sub>" names the client in access records and versions
PUBLIC_KEY_ALGORITHMS = [
    "RS256",
    "RS384",
    "RS512",
    "PS256",
    "PS384",
    "PS512",
    "ES256",
    "ES384",
    "ES512",
    "EdDSA",
]
DEPARTMENT_CODES = frozenset(department.code for department in DEPARTMENTS)


@dataclass(frozen=True, slots=True)
class Principal:
    """The authenticated caller."""

    client: str  # "client:12" for a registered client, "jwt:<sub>" for a JWT
    name: str
    department: str  # an enterprise's credential: its registration authority
    role: Role
    enterprise: str | None = None  # the USCC of the enterprise, for role enterprise only
    # A developer's credential: may send unregistered documents (hub/trusted.py).
    developer: bool = False

    @property
    def subject(self) -> str:
        """Who policies speak of: the department, or the role for auditors, admins and
        enterprises."""
        return self.department if self.role is Role.DEPARTMENT else self.role.value


@dataclass(frozen=True, slots=True)
class ClientRecord:
    id: int
    name: str
    department: str
    role: Role
    revoked_at: datetime | None
    enterprise: str | None = None  # the USCC, for role enterprise
    developer: bool = False


FindClient = Callable[[str], Awaitable[ClientRecord | None]]


def new_token() -> str:
    return CLIENT_TOKEN_PREFIX + secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def client_token_hash(authorization: str | None) -> str | None:
    """The hash of the hub client token in an ``Authorization`` value, if it holds one."""
    scheme, _, token = (authorization or "").partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token.startswith(CLIENT_TOKEN_PREFIX):
        return None
    return hash_token(token)


class Authenticator:
    def __init__(self, settings: Settings) -> None:
        self._jwt_key: str | None = settings.jwt_secret or settings.jwt_public_key
        self._jwt_algorithms = HMAC_ALGORITHMS if settings.jwt_secret else PUBLIC_KEY_ALGORITHMS
        self._audience = settings.jwt_audience
        self._issuer = settings.jwt_issuer

    async def authenticate(self, authorization: str | None, find_client: FindClient) -> Principal:
        """The caller behind an ``Authorization`` header value, or Unauthenticated."""
        if not authorization:
            raise Unauthenticated(
                "the request has no Authorization header: send 'Authorization: Bearer <token>' "
                "with a client token from the hub's administrator or a JWT from your identity "
                "provider"
            )
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer":
            raise Unauthenticated(
                f"the Authorization header uses the {scheme!r} scheme; use 'Bearer <token>'"
            )
        token = token.strip()
        if not token:
            raise Unauthenticated("the bearer token is empty; send 'Authorization: Bearer <token>'")
        if token.startswith(CLIENT_TOKEN_PREFIX):
            return await self._client(token, find_client)
        return self._jwt(token)

    async def _client(self, token: str, find_client: FindClient) -> Principal:
        client = await find_client(hash_token(token))
        if client is None:
            raise Unauthenticated(
                "the bearer token is not a token of this hub; check that it was copied whole, "
                "or ask the hub's administrator for a new one"
            )
        if client.revoked_at is not None:
            raise Unauthenticated(
                f"client {client.id} ({client.name}) was revoked on "
                f"{client.revoked_at:%Y-%m-%d %H:%M} UTC; ask the hub's administrator for a new "
                "token"
            )
        return Principal(f"client:{client.id}", client.name, client.department, client.role,
                         client.enterprise, client.developer)  # fmt: skip

    def _jwt(self, token: str) -> Principal:
        if self._jwt_key is None:
            raise Unauthenticated(
                "the bearer token is not a client token of this hub, and this hub accepts no "
                "JWTs (no key is configured)"
            )
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                self._jwt_key,
                algorithms=self._jwt_algorithms,
                audience=self._audience,
                issuer=self._issuer,
                leeway=JWT_LEEWAY_SECONDS,
                options={"require": ["sub", "dept", "role", "exp"]},
            )
        except jwt.ExpiredSignatureError:
            raise Unauthenticated(
                "the JWT has expired; get a new one from your identity provider"
            ) from None
        except jwt.MissingRequiredClaimError as error:
            raise Unauthenticated(f"the JWT lacks the required claim {error.claim!r}") from None
        except jwt.InvalidAlgorithmError:
            raise Unauthenticated(
                f"the JWT's signing algorithm is not accepted here; use one of "
                f"{', '.join(self._jwt_algorithms)}"
            ) from None
        except jwt.InvalidSignatureError:
            raise Unauthenticated(
                "the JWT's signature does not verify with the hub's key"
            ) from None
        except jwt.InvalidTokenError as error:
            raise Unauthenticated(f"the JWT is not valid: {error}") from None
        subject, department, role = claims["sub"], claims["dept"], claims["role"]
        # A validly signed token is still the identity provider's data: its claims are checked
        # like any caller's value before they name anyone in a record.
        if not isinstance(subject, str) or not subject.strip() or len(subject) > MAX_SUBJECT:
            raise Unauthenticated(
                f"the JWT's sub must be text of 1 to {MAX_SUBJECT} characters naming the caller"
            )
        if found := problem(subject):
            raise Unauthenticated(f"the JWT's sub {found}")
        if not isinstance(department, str) or department not in DEPARTMENT_CODES:
            shown = escaped(repr(department))[:80]
            raise Unauthenticated(f"the JWT's dept {shown} is not a department of the hub")
        if not isinstance(role, str) or role not in {r.value for r in Role}:
            raise Unauthenticated(
                f"the JWT's role {escaped(repr(role))[:80]} is not one of "
                f"{', '.join(r.value for r in Role)}"
            )
        developer = claims.get("developer", False)
        if not isinstance(developer, bool) or (developer and Role(role) is not Role.DEPARTMENT):
            raise Unauthenticated(
                "the JWT's developer claim must be true or false, and true only with role "
                "department"
            )
        return Principal(f"jwt:{subject}", subject, department, Role(role),
                         _enterprise(Role(role), claims), developer)  # fmt: skip


def _enterprise(role: Role, claims: dict[str, Any]) -> str | None:
    """The enterprise a JWT's ``uscc`` claim names: required for role enterprise, refused
    for every other role."""
    if role is not Role.ENTERPRISE:
        if "uscc" in claims:
            raise Unauthenticated(
                f"the JWT's role is {role.value} but it carries a uscc claim: only tokens of "
                "role enterprise name an enterprise; ask your identity provider to leave it out"
            )
        return None
    uscc = claims.get("uscc")
    if not isinstance(uscc, str):
        raise Unauthenticated(
            "the JWT's role is enterprise but it lacks a uscc claim (text): an enterprise's "
            "token names its unified social credit code"
        )
    try:
        return parse_uscc(uscc)
    except InvalidUSCC as error:
        raise Unauthenticated(f"the JWT's uscc claim: {escaped(error.message)[:200]}") from None
