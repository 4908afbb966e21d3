"""Signed checkpoints on the hub's own schedule: only when the head moved, never of a broken
log, one signer among processes, failures logged once; `hub serve --checkpoint-every`."""

import asyncio
import json
import logging
import os
import subprocess
import urllib.request
from dataclasses import replace
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from hub.audit import AccessLog, verify, verify_after
from hub.checkpoint import CheckpointSchedule, create_key, load_checkpoint, load_key
from hub.db import create_engine, upgrade
from hub.settings import Settings
from tests.conftest import BACKENDS
from tests.test_audit import build_log, entry, head, sql, unlock
from tests.test_serve import HUB, free_port, readyz, wait_for


@pytest.fixture
def signing(tmp_path: Path) -> Settings:
    """Where the key and the checkpoints are; combine with a database's settings."""
    key = tmp_path / "signing.pem"
    create_key(key)
    return Settings(
        audit_signing_key=key, checkpoint_dir=tmp_path / "checkpoints", checkpoint_seconds=60
    )


def scheduled(database: Settings, signing: Settings) -> Settings:
    return replace(
        database,
        audit_signing_key=signing.audit_signing_key,
        checkpoint_dir=signing.checkpoint_dir,
        checkpoint_seconds=signing.checkpoint_seconds,
    )


def append(settings: Settings, numbers: range) -> None:
    async def run() -> None:
        engine = create_engine(settings)
        log = AccessLog(engine)
        for number in numbers:
            await log.append(entry(number))
        await engine.dispose()

    asyncio.run(run())


def files(directory: Path) -> list[str]:
    return sorted(path.name for path in directory.iterdir())


@pytest.mark.parametrize("empty_database", BACKENDS, indirect=True)
def test_the_head_is_signed_when_it_moved_and_only_then(
    empty_database: Settings, signing: Settings
) -> None:
    build_log(empty_database, records=3)
    settings = scheduled(empty_database, signing)

    async def run() -> list[Path | None]:
        schedule = CheckpointSchedule(settings)
        written = [await schedule.tick(), await schedule.tick()]
        await asyncio.to_thread(append, empty_database, range(4, 6))
        written += [await schedule.tick(), await schedule.tick()]
        await schedule.stop()
        return written

    directory = signing.checkpoint_dir
    assert asyncio.run(run()) == [
        directory / "checkpoint-000000003.json",
        None,
        directory / "checkpoint-000000005.json",
        None,
    ]
    assert files(directory) == ["checkpoint-000000003.json", "checkpoint-000000005.json"]
    public_key = load_key(signing.audit_signing_key).public_key()
    for seq in (3, 5):
        checkpoint = load_checkpoint(directory / f"checkpoint-00000000{seq}.json", public_key)
        assert (checkpoint.seq, checkpoint.head_hash) == head(empty_database, seq)

    third, fifth = head(empty_database, 3), head(empty_database, 5)

    async def check() -> tuple[bool, int, int]:
        engine = create_engine(empty_database)
        whole = await verify(engine, *fifth)
        async with engine.connect() as connection:
            segment = await verify_after(connection, *third)
        await engine.dispose()
        return whole.ok, segment.records, segment.head_seq

    assert asyncio.run(check()) == (True, 2, 5)


TAMPERING = [
    ("a record after the checkpoint changed", ["UPDATE access_record SET purpose = '改' WHERE seq = 5"],
     "the access log is broken at record 5: record 5 was changed after it was written: its hash does not match"),
    ("the signed record rewritten", ["UPDATE access_record SET hash = 'f' || substr(hash, 2) WHERE seq = 4"],
     "the access log is broken at record 4: record 4 differs from the last checkpoint: the chain was rewritten"),
    ("the log truncated before the checkpoint", ["DELETE FROM access_record WHERE seq >= 4"],
     "the access log is broken at record 4: the log ends at record 3, before the last checkpoint's record 4: it was truncated"),
    ("a record after the checkpoint removed", ["DELETE FROM access_record WHERE seq = 5"],
     "the access log is broken at record 6: record 6 follows record 4: records are missing"),
]  # fmt: skip


@pytest.mark.parametrize("empty_database", BACKENDS, indirect=True)
@pytest.mark.parametrize(
    ("case", "statements", "problem"), TAMPERING, ids=[t[0] for t in TAMPERING]
)
def test_a_broken_log_is_not_signed_and_the_broken_record_is_logged(
    empty_database: Settings,
    signing: Settings,
    caplog: pytest.LogCaptureFixture,
    case: str,
    statements: list[str],
    problem: str,
) -> None:
    build_log(empty_database, records=4)
    settings = scheduled(empty_database, signing)

    def tamper() -> None:
        append(empty_database, range(5, 7))
        for statement in unlock(empty_database) + statements:
            sql(empty_database, statement)

    async def run() -> list[object]:
        schedule = CheckpointSchedule(settings)
        done = [await schedule.tick(), await asyncio.to_thread(tamper)]
        done += [await schedule.tick(), await schedule.tick()]
        await schedule.stop()
        return done

    with caplog.at_level(logging.INFO, logger="hub.checkpoint"):
        done = asyncio.run(run())
    assert done == [signing.checkpoint_dir / "checkpoint-000000004.json", None, None, None]
    assert files(signing.checkpoint_dir) == ["checkpoint-000000004.json"]
    refusal = (
        f"{problem}; no checkpoint is signed until it is explained (the last one signed is of "
        f"record 4 in {signing.checkpoint_dir})"
    )
    assert [(r.levelname, r.getMessage()) for r in caplog.records if r.name == "hub.checkpoint"] == [
        ("INFO", f"access-log checkpoint written to {signing.checkpoint_dir}/checkpoint-000000004.json"),
        ("ERROR", refusal),  # every period, as an alarm
        ("ERROR", refusal),
    ]  # fmt: skip


def test_a_missing_key_or_folder_is_logged_once_and_signing_resumes_when_fixed(
    tmp_path: Path, signing: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    database = Settings(database_url=f"sqlite+aiosqlite:///{tmp_path}/hub.db")
    build_log(database, records=2)
    key = tmp_path / "later.pem"
    blocked = tmp_path / "a-file"
    blocked.write_text("not a folder")
    settings = replace(
        scheduled(database, signing), audit_signing_key=key, checkpoint_dir=blocked / "checkpoints"
    )

    async def run() -> list[Path | None]:
        schedule = CheckpointSchedule(settings)
        schedule.start()  # the first problem is logged at start, not an hour later
        done = [await schedule.tick(), await schedule.tick()]
        create_key(key)
        done += [await schedule.tick(), await schedule.tick()]
        schedule.directory = signing.checkpoint_dir
        done += [await schedule.tick(), await schedule.tick()]
        await schedule.stop()
        return done

    with caplog.at_level(logging.INFO, logger="hub.checkpoint"):
        done = asyncio.run(run())
    written = signing.checkpoint_dir / "checkpoint-000000002.json"
    assert done == [None, None, None, None, written, None]
    unwritable = (
        f"checkpoints cannot be written to {blocked / 'checkpoints'}: [Errno 20] Not a directory"
    )
    assert [(r.levelname, r.getMessage()) for r in caplog.records if r.name == "hub.checkpoint"] == [
        ("INFO", f"signing access-log checkpoints every 60 s into {blocked / 'checkpoints'}"),
        ("ERROR", f"cannot read the signing key {key}: [Errno 2] No such file or directory: "
                  f"'{key}': create the key with `hub audit keygen`; the hub keeps serving"),
        ("ERROR", f"{unwritable}: '{blocked / 'checkpoints'}'; the hub keeps serving"),
        ("INFO", "checkpoints are signed again"),
        ("INFO", f"access-log checkpoint written to {written}"),
    ]  # fmt: skip


def test_scheduled_checkpoints_chain_on_from_those_signed_by_hand(
    tmp_path: Path, signing: Settings
) -> None:
    from typer.testing import CliRunner

    from hub.cli import app

    database = Settings(database_url=f"sqlite+aiosqlite:///{tmp_path}/hub.db")
    build_log(database, records=3)
    env = {
        "HUB_DATABASE_URL": database.database_url,
        "HUB_AUDIT_SIGNING_KEY": str(signing.audit_signing_key),
        "HUB_CHECKPOINT_DIR": str(signing.checkpoint_dir),
    }
    by_hand = CliRunner().invoke(app, ["audit", "checkpoint"], env=env)
    assert by_hand.exit_code == 0, by_hand.output
    settings = scheduled(database, signing)

    async def run() -> list[Path | None]:
        schedule = CheckpointSchedule(settings)
        done = [await schedule.tick()]
        await asyncio.to_thread(append, database, range(4, 5))
        done.append(await schedule.tick())
        await schedule.stop()
        return done

    assert asyncio.run(run()) == [None, signing.checkpoint_dir / "checkpoint-000000004.json"]
    assert files(signing.checkpoint_dir) == [
        "checkpoint-000000003.json",
        "checkpoint-000000004.json",
    ]


@pytest.mark.parametrize("empty_database", BACKENDS[1:], indirect=True)
def test_one_process_signs_for_all_that_share_a_database(
    empty_database: Settings, signing: Settings
) -> None:
    build_log(empty_database, records=2)
    settings = scheduled(empty_database, signing)

    async def run() -> list[str | None]:
        first, second = CheckpointSchedule(settings), CheckpointSchedule(settings)
        done = [await first.tick(), await second.tick()]
        await asyncio.to_thread(append, empty_database, range(3, 4))
        done += [await second.tick(), await first.tick()]
        await first.stop()  # its session ends, and the lock with it: the other takes over
        await asyncio.to_thread(append, empty_database, range(4, 5))
        done.append(await second.tick())
        await second.stop()
        return [path.name if path else None for path in done]

    assert asyncio.run(run()) == [
        "checkpoint-000000002.json",
        None,
        None,
        "checkpoint-000000003.json",
        "checkpoint-000000004.json",
    ]


def test_hub_serve_signs_on_its_schedule_and_witnesses_verify(tmp_path: Path) -> None:
    database = Settings(database_url=f"sqlite+aiosqlite:///{tmp_path}/serve.db")
    upgrade(database)
    environment = {**os.environ, "HUB_DATABASE_URL": database.database_url}
    key = tmp_path / "signing.pem"
    create_key(key)
    public_key = tmp_path / "hub.pub"
    public_key.write_bytes(
        load_key(key)
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    checkpoints = tmp_path / "checkpoints"
    env = {**environment, "HUB_AUDIT_SIGNING_KEY": str(key), "HUB_CHECKPOINT_DIR": str(checkpoints)}
    port = free_port()
    process = subprocess.Popen(
        [HUB, "serve", "--port", str(port), "--checkpoint-every", "1"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        wait_for(lambda: readyz(port)["status"] == "ready")
        with pytest.raises(urllib.error.HTTPError) as refused:  # no token: refused, and recorded
            urllib.request.urlopen(
                urllib.request.Request(
                    f"http://127.0.0.1:{port}/graphql",
                    data=json.dumps({"query": "{ departments { code } }"}).encode(),
                    headers={"Content-Type": "application/json"},
                ),
                timeout=5,
            )
        assert refused.value.code == 401
        wait_for(lambda: (checkpoints / "checkpoint-000000001.json").exists())
    finally:
        process.terminate()
        output, _ = process.communicate(timeout=10)
    assert f"signing access-log checkpoints every 1 s into {checkpoints}" in output
    assert f"access-log checkpoint written to {checkpoints}/checkpoint-000000001.json" in output
    witness = subprocess.run(
        [HUB, "audit", "verify", "--checkpoint", str(checkpoints / "checkpoint-000000001.json"),
         "--public-key", str(public_key)],
        env={**environment, "COLUMNS": "200"}, capture_output=True, text=True, timeout=60,
        check=False,
    )  # fmt: skip
    assert witness.returncode == 0, witness.stderr
    assert " ".join(witness.stderr.split()).startswith(
        "the access log is intact: 1 records, head 1 "
    )
    assert witness.stderr.rstrip().endswith("agreeing with the checkpoint of record 1")
    assert (
        sql(Settings(database_url=env["HUB_DATABASE_URL"]), "SELECT count(*) FROM access_record")[
            0
        ][0]
        == 1
    )
