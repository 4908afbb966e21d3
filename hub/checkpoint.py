"""Signed checkpoints of the access log's head, for departments and auditors to keep.

A checkpoint says "on this day the log had N records ending in this hash", signed with the
hub's Ed25519 key. Anyone holding one can later prove the log was not truncated or
rewritten since, even by someone able to recompute every hash in the chain.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from hub.audit import canonical, timestamp

__all__ = ["Checkpoint", "CheckpointError", "create_key", "load_checkpoint", "load_key", "sign"]

PURPOSE = "hub access log checkpoint"


class CheckpointError(Exception):
    """A checkpoint or key that cannot be used; the message says why."""


@dataclass(frozen=True, slots=True)
class Checkpoint:
    seq: int
    head_hash: str
    signed_at: str


def create_key(path: Path) -> None:
    """A new Ed25519 signing key in PEM, readable by its owner only."""
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600)
    path.write_bytes(pem)


def load_key(path: Path) -> Ed25519PrivateKey:
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (OSError, ValueError) as error:
        raise CheckpointError(f"cannot read the signing key {path}: {error}") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise CheckpointError(f"{path} is not an Ed25519 private key")
    return key


def _public_pem(key: Ed25519PublicKey) -> str:
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()


def sign(key: Ed25519PrivateKey, seq: int, head_hash: str) -> dict[str, Any]:
    """A checkpoint document: the signed statement plus the public key that verifies it."""
    statement = {
        "purpose": PURPOSE,
        "seq": seq,
        "head_hash": head_hash,
        "signed_at": timestamp(datetime.now(UTC)),
    }
    return {
        **statement,
        "signature": base64.b64encode(key.sign(canonical(statement))).decode(),
        "public_key": _public_pem(key.public_key()),
    }


def load_checkpoint(path: Path, public_key: Ed25519PublicKey) -> Checkpoint:
    """The checkpoint in ``path`` if ``public_key`` verifies its signature."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
        statement = {k: document[k] for k in ("purpose", "seq", "head_hash", "signed_at")}
        signature = base64.b64decode(document["signature"], validate=True)
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise CheckpointError(f"{path} is not a checkpoint of this hub: {error}") from None
    if statement["purpose"] != PURPOSE:
        raise CheckpointError(f"{path} is not a checkpoint of the hub's access log")
    try:
        public_key.verify(signature, canonical(statement))
    except InvalidSignature:
        raise CheckpointError(
            f"the signature of {path} does not verify with the hub's key: the checkpoint was "
            "altered, or signed with another key"
        ) from None
    return Checkpoint(int(statement["seq"]), str(statement["head_hash"]), statement["signed_at"])
