"""Signed checkpoints of the access log's head, for departments and auditors to keep.

A checkpoint says "on this day the log had N records ending in this hash", signed with the
hub's Ed25519 key. Anyone holding one can later prove the log was not truncated or
rewritten since, even by someone able to recompute every hash in the chain.

While serving, the hub signs on its own schedule (CheckpointSchedule, ``HUB_CHECKPOINT_SECONDS``)
into a folder that witnesses collect from: at each period's end, if the head moved since the
newest checkpoint there, it walks only the records after that checkpoint (the first time the
whole log) and signs the new head; a broken chain is never signed, its first broken record is
logged instead. Periods are aligned to the clock, so restarts do not postpone them. Several hub
processes share one PostgreSQL database: the one holding a session advisory lock signs, the
others take over when its connection ends. Files are named by sequence number, zero-padded so
they sort, and written whole (a temporary file renamed) so a witness never copies half of one.
A failure (no key, a folder that cannot be written, an unreachable database) is logged once
and never stops serving.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import os
import re
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from hub.audit import GENESIS, canonical, timestamp, verify_after
from hub.db import create_engine
from hub.settings import Settings

__all__ = [
    "BrokenLog",
    "Checkpoint",
    "CheckpointError",
    "CheckpointSchedule",
    "checkpoint_head",
    "checkpoint_path",
    "create_key",
    "latest_checkpoint",
    "load_checkpoint",
    "load_key",
    "sign",
    "write_checkpoint",
]

PURPOSE = "hub access log checkpoint"
FILE_NAME = re.compile(r"checkpoint-(\d+)\.json")
# Any constant shared by every hub process: the key of the signer's advisory lock.
SIGNER_LOCK = 0x4855_4243_4B50_5400  # "HUBCKPT"

logger = logging.getLogger("hub.checkpoint")


class CheckpointError(Exception):
    """A checkpoint or key that cannot be used; the message says why."""


class BrokenLog(CheckpointError):
    """The chain is broken after the last checkpoint: nothing is signed."""


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


def checkpoint_path(directory: Path, seq: int) -> Path:
    return directory / f"checkpoint-{seq:09d}.json"


def write_checkpoint(path: Path, document: dict[str, Any]) -> None:
    """Write ``document`` to ``path`` whole or not at all: a reader never sees half of it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with temporary.open("w", encoding="utf-8") as stream:
            stream.write(json.dumps(document, indent=2) + "\n")
            stream.flush()
            os.fsync(stream.fileno())
        temporary.replace(path)
    finally:
        temporary.unlink(missing_ok=True)


def latest_checkpoint(directory: Path, public_key: Ed25519PublicKey) -> Checkpoint | None:
    """The newest checkpoint in ``directory`` that ``public_key`` verifies, if any."""
    numbered = []
    for path in directory.glob("checkpoint-*.json"):
        if match := FILE_NAME.fullmatch(path.name):
            numbered.append((int(match[1]), path))
    for _, path in sorted(numbered, reverse=True):
        try:
            return load_checkpoint(path, public_key)
        except CheckpointError as error:  # another key's, or damaged: an older one still anchors
            logger.warning("%s; it is passed over", error)
    return None


async def checkpoint_head(
    connection: AsyncConnection, key: Ed25519PrivateKey, directory: Path
) -> Path | None:
    """Sign the log's head into ``directory`` if it moved since the newest checkpoint there,
    after checking the records since; None when it did not move. Raises BrokenLog."""
    last = latest_checkpoint(directory, key.public_key())
    signed_seq, signed_hash = (last.seq, last.head_hash) if last else (0, GENESIS)
    result = await verify_after(connection, signed_seq, signed_hash)
    if not result.ok:
        raise BrokenLog(
            f"the access log is broken at record {result.broken_seq}: {result.problem}; no "
            f"checkpoint is signed until it is explained (the last one signed is of record "
            f"{signed_seq} in {directory})"
        )
    if result.head_seq == signed_seq:
        return None
    path = checkpoint_path(directory, result.head_seq)
    write_checkpoint(path, sign(key, result.head_seq, result.head_hash))
    return path


class CheckpointSchedule:
    """Signs the access log's head every ``settings.checkpoint_seconds`` while the hub serves.

    It reads through an engine of its own, so that holding the signer's lock never takes a
    connection from the requests' pool.
    """

    def __init__(self, settings: Settings) -> None:
        self.seconds = settings.checkpoint_seconds
        self.key_path = settings.audit_signing_key
        self.directory = settings.checkpoint_dir
        self.engine: AsyncEngine = create_engine(settings, pooled=False)
        self._leader: AsyncConnection | None = None
        self._failure: str | None = None
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        logger.info(
            "signing access-log checkpoints every %d s into %s", self.seconds, self.directory
        )
        try:
            load_key(self.key_path)
            self.directory.mkdir(parents=True, exist_ok=True)
            if not os.access(self.directory, os.W_OK):
                raise PermissionError(f"{self.directory} is not writable")
        except CheckpointError as error:
            self._fail(f"{error}: create the key with `hub audit keygen`")
        except OSError as error:
            self._fail(f"checkpoints cannot be written to {self.directory}: {error}")
        self._task = asyncio.create_task(self._run(), name="access-log checkpoints")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._resign()
        await self.engine.dispose()

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.seconds - time.time() % self.seconds)
            await self.tick()

    async def tick(self) -> Path | None:
        """One period's work: the checkpoint written, or None. Logs failures; never raises."""
        try:
            key = load_key(self.key_path)
        except CheckpointError as error:
            self._fail(f"{error}: create the key with `hub audit keygen`")
            return None
        try:
            async with self._signing_connection() as connection:
                if connection is None:
                    return None  # another hub process signs
                path = await checkpoint_head(connection, key, self.directory)
        except BrokenLog as error:
            logger.error("%s", error)  # an alarm, repeated every period until explained
            return None
        except OSError as error:
            self._fail(f"checkpoints cannot be written to {self.directory}: {error}")
            return None
        except SQLAlchemyError as error:
            self._fail(f"checkpoints wait for the database: {error.__class__.__name__}: {error}")
            return None
        except Exception:  # a defect must not end the schedule, nor serving
            logger.exception("signing a checkpoint failed")
            return None
        if self._failure is not None:
            logger.info("checkpoints are signed again")
            self._failure = None
        if path is not None:
            logger.info("access-log checkpoint written to %s", path)
        return path

    def _fail(self, message: str) -> None:
        if message != self._failure:
            logger.error("%s; the hub keeps serving", message)
            self._failure = message

    @contextlib.asynccontextmanager
    async def _signing_connection(self) -> AsyncIterator[AsyncConnection | None]:
        """A connection to sign through, or None while another process holds the lock."""
        if self.engine.dialect.name != "postgresql":
            async with self.engine.connect() as connection:
                yield connection
            return
        if self._leader is None:
            connection = await self.engine.connect()
            try:
                lock = text("SELECT pg_try_advisory_lock(:key)")
                took = (await connection.execute(lock, {"key": SIGNER_LOCK})).scalar()
                await connection.commit()
            except BaseException:
                await connection.close()
                raise
            if not took:
                await connection.close()
                yield None
                return
            self._leader = connection
        try:
            yield self._leader
            await self._leader.rollback()  # read only: end the transaction, keep the session
        except BaseException:
            await self._resign()
            raise

    async def _resign(self) -> None:
        """Close the signer's connection: its session ends, and the lock with it."""
        leader, self._leader = self._leader, None
        if leader is not None:
            with contextlib.suppress(Exception):
                await leader.close()
