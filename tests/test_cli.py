"""The `hub` command as an operator uses it, on a real SQLite file."""

import asyncio
import csv
import io
import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from hub.cli import app
from hub.schema import sdl
from hub.text import escaped
from tests.conftest import BACKENDS, HEAD

runner = CliRunner()


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {"HUB_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/cli.db"}


def test_upgrade_then_demo_load_then_refuse_to_load_twice(env: dict[str, str]) -> None:
    result = runner.invoke(app, ["db", "upgrade"], env=env)
    assert result.exit_code == 0, result.output
    assert f"database at revision {HEAD}" in result.output

    result = runner.invoke(app, ["demo", "load", "--enterprises", "25", "--seed", "3"], env=env)
    assert result.exit_code == 0, result.output
    assert "loaded 25 enterprise," in " ".join(result.output.split())

    result = runner.invoke(app, ["demo", "load", "--enterprises", "25"], env=env)
    assert result.exit_code == 1
    assert "already holds 25 enterprises" in " ".join(result.output.split())

    result = runner.invoke(app, ["demo", "load", "--if-empty"], env=env)
    assert result.exit_code == 0
    assert "demo not loaded" in result.output


def test_demo_load_rejects_a_bad_reference_day(env: dict[str, str]) -> None:
    result = runner.invoke(app, ["demo", "load", "--as-of", "2026-02-30"], env=env)
    assert result.exit_code == 2
    assert "'2026-02-30' is not a day like 2026-11-01" in result.output


def test_bad_configuration_is_reported_without_a_traceback(env: dict[str, str]) -> None:
    result = runner.invoke(app, ["db", "upgrade"], env={**env, "HUB_MAX_REQUEST_BYTES": "big"})
    assert result.exit_code == 2
    assert "HUB_MAX_REQUEST_BYTES must be a whole number of bytes, not 'big'" in " ".join(
        result.output.split()
    )
    assert "Traceback" not in result.output


def test_schema_export_prints_the_committed_schema(tmp_path: Path) -> None:
    result = runner.invoke(app, ["schema", "export"])
    assert result.exit_code == 0
    assert result.output == sdl()
    target = tmp_path / "schema.graphql"
    assert runner.invoke(app, ["schema", "export", "--output", str(target)]).exit_code == 0
    assert target.read_text(encoding="utf-8") == sdl()


def flat(output: str) -> str:
    return " ".join(output.split())


def test_clients_create_list_revoke(env: dict[str, str]) -> None:
    assert runner.invoke(app, ["db", "upgrade"], env=env).exit_code == 0
    result = runner.invoke(
        app, ["clients", "create", "--department", "ecology", "--name", "ecology dispatch"], env=env
    )
    assert result.exit_code == 0, result.output
    token = result.stdout.strip().splitlines()[-1]
    assert token.startswith("hub_")
    assert len(token) == 47
    assert "client 1 (ecology dispatch, ecology, department) created" in flat(result.output)

    auditor = runner.invoke(
        app,
        [
            "clients",
            "create",
            "--department",
            "market",
            "--name",
            "audit office",
            "--role",
            "auditor",
        ],
        env=env,
    )
    assert auditor.exit_code == 0

    listed = runner.invoke(app, ["clients", "list"], env={**env, "COLUMNS": "200"})
    assert "ecology dispatch" in listed.output
    assert "audit office" in listed.output
    assert token not in listed.output  # tokens are never shown again

    revoked = runner.invoke(app, ["clients", "revoke", "1"], env=env)
    assert revoked.exit_code == 0
    assert "client 1 (ecology dispatch) revoked at" in flat(revoked.output)
    missing = runner.invoke(app, ["clients", "revoke", "9"], env=env)
    assert missing.exit_code == 1
    assert "there is no client 9; `hub clients list` shows them" in flat(missing.output)
    unknown = runner.invoke(
        app, ["clients", "create", "--department", "treasury", "--name", "x"], env=env
    )
    assert unknown.exit_code == 1
    assert "unknown department 'treasury'" in flat(unknown.output)


def test_policy_lint_and_explain(env: dict[str, str]) -> None:
    lint = runner.invoke(app, ["policy", "lint"], env=env)
    assert lint.exit_code == 0
    assert "is sound: version" in flat(lint.output)

    explain = runner.invoke(
        app,
        ["policy", "explain", "--department", "market", "--owner", "ecology",
         "--field", "Acceptance.verdict"],
        env=env,
    )  # fmt: skip
    assert explain.exit_code == 0
    assert "ALLOWED market reading Acceptance.verdict of ecology's records" in flat(explain.output)
    assert "p, market, ecology, acceptance-results, read, allow" in flat(explain.output)

    # A department's part in a record: denied as such, with the relation that would open it;
    # allowed as a participant, naming the relation.
    findings = ["policy", "explain", "--department", "fire", "--owner", "market",
                "--field", "Inspection.findings"]  # fmt: skip
    denied = flat(runner.invoke(app, findings, env=env).output)
    assert "DENIED fire reading Inspection.findings of market's records" in denied
    assert "open to a participant of the joint inspection (综合查一次) by policy.csv:" in denied
    opened = flat(runner.invoke(app, [*findings, "--relation", "participant"], env=env).output)
    assert "ALLOWED fire reading Inspection.findings of market's records as participant" in opened
    assert "opened by the relation: participant" in opened
    wrong = runner.invoke(app, [*findings, "--relation", "neighbour"], env=env)
    assert wrong.exit_code == 2
    assert "neighbour" in flat(wrong.output)

    conditional = runner.invoke(
        app,
        ["policy", "explain", "--department", "market", "--owner", "ecology",
         "--field", "Acceptance.opinion"],
        env=env,
    )  # fmt: skip
    assert "CONDITIONAL market reading Acceptance.opinion" in flat(conditional.output)
    assert "state the purpose of the request in the X-Hub-Purpose header" in flat(
        conditional.output
    )

    assert "the grants could not be read" in flat(conditional.output)  # no database yet

    # With the demo data's grant (market reads ecology's opinions for rectification-check):
    assert runner.invoke(app, ["db", "upgrade"], env=env).exit_code == 0
    assert runner.invoke(app, ["demo", "load", "--enterprises", "5"], env=env).exit_code == 0
    conditional = runner.invoke(
        app,
        ["policy", "explain", "--department", "market", "--owner", "ecology",
         "--field", "Acceptance.opinion"],
        env=env,
    )  # fmt: skip
    assert "conditional, open under grant 1: for rectification-check, all enterprises" in flat(
        conditional.output
    )
    for purpose, verdict in (
        ("rectification-check: 整改核查", "SERVED under the grants: allowed by grant 1"),
        ("整改核查", "WITHHELD under the grants: wrong purpose: grants of Acceptance.opinion are "
         "for rectification-check"),
    ):  # fmt: skip
        with_purpose = runner.invoke(
            app,
            ["policy", "explain", "--department", "market", "--owner", "ecology",
             "--field", "Acceptance.opinion", "--purpose", purpose],
            env=env,
        )  # fmt: skip
        assert "ALLOWED" in with_purpose.output
        assert verdict in flat(with_purpose.output)

    unknown = runner.invoke(
        app,
        ["policy", "explain", "--department", "market", "--owner", "ecology", "--field", "X.y"],
        env=env,
    )
    assert unknown.exit_code == 2
    assert "'X.y' is not a catalogued Type.field" in flat(unknown.output)
    for option in ("--department", "--owner"):
        words = ["--department", "market", "--owner", "ecology", "--field", "Penalty.amount"]
        words[words.index(option) + 1] = "mars"
        wrong = runner.invoke(app, ["policy", "explain", *words], env=env)
        assert wrong.exit_code == 2
        assert "'mars' is not a department" in flat(wrong.output)

    version = runner.invoke(app, ["--version"], env=env)
    assert (version.exit_code, version.output.strip()) == (0, "hub 0.1.0")


def test_audit_commands(env: dict[str, str], tmp_path: Path) -> None:
    import sqlite3

    from hub.settings import Settings
    from tests.test_audit import build_log

    build_log(Settings(database_url=env["HUB_DATABASE_URL"]), records=5)
    env = {**env, "HUB_AUDIT_SIGNING_KEY": str(tmp_path / "signing.pem"), "COLUMNS": "200"}

    intact = runner.invoke(app, ["audit", "verify"], env=env)
    assert intact.exit_code == 0
    assert "the access log is intact: 5 records, head 5" in flat(intact.output)

    unsigned = runner.invoke(app, ["audit", "checkpoint"], env=env)
    assert unsigned.exit_code == 1
    assert "create one with `hub audit keygen`" in flat(unsigned.output)
    assert runner.invoke(app, ["audit", "keygen"], env=env).exit_code == 0
    checkpoint = tmp_path / "checkpoint.json"
    signed = runner.invoke(app, ["audit", "checkpoint", "--output", str(checkpoint)], env=env)
    assert signed.exit_code == 0
    assert "checkpoint of record 5 written to" in flat(signed.output)
    against = runner.invoke(app, ["audit", "verify", "--checkpoint", str(checkpoint)], env=env)
    assert against.exit_code == 0
    assert "agreeing with the checkpoint of record 5" in flat(against.output)

    exported = runner.invoke(app, ["audit", "export", "--format", "jsonl"], env=env)
    lines = [json.loads(line) for line in exported.stdout.splitlines()]
    assert [line["seq"] for line in lines] == [1, 2, 3, 4, 5]
    assert lines[0]["served"][0]["type"] == "Penalty"
    as_csv = runner.invoke(
        app, ["audit", "export", "--format", "csv", "--since", "2026-11-01T08:00:03"], env=env
    )
    assert as_csv.stdout.splitlines()[0].startswith("seq,recorded_at,client,department")
    assert len(as_csv.stdout.splitlines()) == 1 + 3
    found = runner.invoke(
        app,
        ["audit", "search", "--enterprise", "91110000600037341L", "--field", "Penalty.amount"],
        env=env,
    )
    assert "5 access records" in flat(found.output)
    assert "market" in found.output

    # An insider edits one byte of record 3 directly in the database.
    database = sqlite3.connect(env["HUB_DATABASE_URL"].removeprefix("sqlite+aiosqlite:///"))
    database.execute("DROP TRIGGER access_record_no_update")
    database.execute("UPDATE access_record SET purpose = '核査' WHERE seq = 3")
    database.commit()
    database.close()
    broken = runner.invoke(app, ["audit", "verify"], env=env)
    assert broken.exit_code == 1
    assert flat(broken.output) == (
        "the access log is broken at record 3: record 3 was changed after it was written: its hash "
        "does not match"
    )


# What callers may put in access records (X-Hub-Purpose, X-Hub-Case, the operation name) as
# an auditor's terminal or spreadsheet must not obey it.
HOSTILE_ENTRIES = [
    {"operation_name": "[bold red]x[/]", "purpose": '=HYPERLINK("http://x.example/","核查")',
     "case_ref": "@SUM(1)"},
    {"operation_name": "\x1b[2Jcleared", "purpose": "-1+1", "case_ref": "\t杭环罚\r",
     "client": "\x9b31mclient\u202e"},
]  # fmt: skip


def hostile_log(settings: Any) -> None:
    from datetime import UTC, datetime

    from hub.audit import AccessEntry, AccessLog, Outcome, Trail
    from hub.db import create_engine, upgrade

    upgrade(settings)

    async def append() -> None:
        engine = create_engine(settings)
        log = AccessLog(engine)
        for number, values in enumerate(HOSTILE_ENTRIES, start=1):
            trail = Trail()
            trail.serve("91110000600037341L", "Penalty", str(number), ("amount",))
            await log.append(AccessEntry(
                recorded_at=datetime(2026, 11, 1, 8, 0, number, tzinfo=UTC), outcome=Outcome.OK,
                trace_id=f"{number:032x}", duration_us=1000, department="market",
                role="department", trail=trail, **{"client": "client:1", **values},
            ))  # fmt: skip
        await engine.dispose()

    asyncio.run(append())


@pytest.mark.parametrize("empty_database", BACKENDS, indirect=True)
def test_audit_search_shows_stored_values_as_plain_text(empty_database: Any) -> None:
    hostile_log(empty_database)
    env = {"HUB_DATABASE_URL": empty_database.database_url, "COLUMNS": "200"}

    found = runner.invoke(app, ["audit", "search"], env=env)

    assert found.exit_code == 0, found.output
    assert found.stdout == (
        "┏━━━━━┳━━━━━━━━━━━━━━━━━━━━━┳━━━━━━━━━━━━┳━━━━━━━━━━━━━━━━━━━━━┳━━━━━━━━━━━━━━━━┳━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━┳━━━━━━━━━━━━━━━━┳━━━━━━━━━┳━━━━━━━━━━━━━━━━┓\n"
        "┃ seq ┃ time (UTC)          ┃ department ┃ client              ┃ operation      ┃ purpose                                ┃ case           ┃ outcome ┃ fields         ┃\n"
        "┡━━━━━╇━━━━━━━━━━━━━━━━━━━━━╇━━━━━━━━━━━━╇━━━━━━━━━━━━━━━━━━━━━╇━━━━━━━━━━━━━━━━╇━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━╇━━━━━━━━━━━━━━━━╇━━━━━━━━━╇━━━━━━━━━━━━━━━━┩\n"
        "│ 2   │ 2026-11-01 08:00:02 │ market     │ \\x9b31mclient\\u202e │ \\x1b[2Jcleared │ -1+1                                   │ \\x09杭环罚\\x0d │ ok      │ Penalty.amount │\n"
        '│ 1   │ 2026-11-01 08:00:01 │ market     │ client:1            │ [bold red]x[/] │ =HYPERLINK("http://x.example/","核查") │ @SUM(1)        │ ok      │ Penalty.amount │\n'
        "└─────┴─────────────────────┴────────────┴─────────────────────┴────────────────┴────────────────────────────────────────┴────────────────┴─────────┴────────────────┘\n"
    )  # fmt: skip


@pytest.mark.parametrize("empty_database", BACKENDS, indirect=True)
def test_audit_export_neutralizes_formulas_in_csv_and_keeps_jsonl_exact(
    empty_database: Any,
) -> None:
    hostile_log(empty_database)
    env = {"HUB_DATABASE_URL": empty_database.database_url}

    as_csv = runner.invoke(app, ["audit", "export", "--format", "csv"], env=env)
    as_jsonl = runner.invoke(app, ["audit", "export", "--format", "jsonl"], env=env)

    # JSON lines: every value exactly as stored, and nothing a terminal would obey.
    assert as_jsonl.exit_code == 0, as_jsonl.output
    assert as_jsonl.stdout.replace("\n", "").isprintable()
    records = [json.loads(line) for line in as_jsonl.stdout.splitlines()]
    hostile = ("client", "operation_name", "purpose", "case_ref")
    # The hub keeps caller text escaped in its records (hub.text.kept): that is what is stored.
    assert [{key: record[key] for key in hostile} for record in records] == [
        {"client": "client:1", **{key: escaped(value) for key, value in values.items()}}
        for values in HOSTILE_ENTRIES
    ]
    # CSV: formulas behind a quote, control characters but tab and line feed escaped.
    assert as_csv.exit_code == 0, as_csv.output
    assert as_csv.stdout.replace("\n", "").replace("\t", " ").isprintable()
    rows = list(csv.DictReader(io.StringIO(as_csv.stdout, newline="")))
    assert [{key: row[key] for key in hostile} for row in rows] == [
        {"client": "client:1", "operation_name": "[bold red]x[/]",
         "purpose": '\'=HYPERLINK("http://x.example/","核查")', "case_ref": "'@SUM(1)"},
        {"client": "\\x9b31mclient\\u202e", "operation_name": "\\x1b[2Jcleared",
         "purpose": "'-1+1", "case_ref": "\\x09杭环罚\\x0d"},
    ]  # fmt: skip
    assert [{key: value for key, value in row.items() if key not in hostile} for row in rows] == [
        {key: "" if value is None else json.dumps(value, ensure_ascii=False)
         if isinstance(value, list) else str(value)
         for key, value in record.items() if key not in hostile}
        for record in records
    ]  # fmt: skip
