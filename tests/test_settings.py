from pathlib import Path

import pytest

from hub.settings import DEFAULT_DATABASE_URL, Settings


def test_defaults_use_an_sqlite_file_under_var() -> None:
    settings = Settings.from_env({})
    assert settings == Settings()
    assert settings.database_url == DEFAULT_DATABASE_URL
    assert settings.sqlite_path() == Path("var/hub.db")


def test_environment_overrides() -> None:
    settings = Settings.from_env(
        {
            "HUB_DATABASE_URL": "postgresql+asyncpg://hub@db/hub",
            "HUB_MAX_REQUEST_BYTES": "5000",
            "HUB_GRAPHIQL": "off",
        }
    )
    assert settings == Settings(
        database_url="postgresql+asyncpg://hub@db/hub", max_request_bytes=5000, graphiql=False
    )
    assert settings.sqlite_path() is None


def test_in_memory_sqlite_has_no_file() -> None:
    assert Settings(database_url="sqlite+aiosqlite:///:memory:").sqlite_path() is None


def test_malformed_numbers_say_which_variable() -> None:
    import pytest

    with pytest.raises(
        ValueError, match="HUB_MAX_REQUEST_BYTES must be a whole number of bytes, not '1MB'"
    ):
        Settings.from_env({"HUB_MAX_REQUEST_BYTES": "1MB"})


def test_jwt_keys_are_checked_up_front(tmp_path: Path) -> None:
    import pytest

    pem = "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEA\n-----END PUBLIC KEY-----\n"
    with pytest.raises(ValueError, match="set HUB_JWT_SECRET or HUB_JWT_PUBLIC_KEY, not both"):
        Settings.from_env({"HUB_JWT_SECRET": "s", "HUB_JWT_PUBLIC_KEY": pem})
    with pytest.raises(ValueError, match="HUB_JWT_SECRET holds a PEM key"):
        Settings.from_env({"HUB_JWT_SECRET": pem})
    with pytest.raises(ValueError, match="HUB_JWT_PUBLIC_KEY is neither a PEM key nor a readable"):
        Settings.from_env({"HUB_JWT_PUBLIC_KEY": str(tmp_path / "missing.pem")})
    key_file = tmp_path / "idp.pem"
    key_file.write_text(pem)
    assert Settings.from_env({"HUB_JWT_PUBLIC_KEY": str(key_file)}).jwt_public_key == pem


def test_the_secret_stays_out_of_reprs() -> None:
    assert "hunter2" not in repr(Settings(jwt_secret="hunter2"))


def test_scheduled_checkpoints_are_off_unless_asked_for() -> None:
    import re

    import pytest

    assert (Settings().checkpoint_seconds, Settings().checkpoint_dir) == (
        0,
        Path("var/checkpoints"),
    )
    settings = Settings.from_env({"HUB_CHECKPOINT_SECONDS": "3600", "HUB_CHECKPOINT_DIR": "/w"})
    assert (settings.checkpoint_seconds, settings.checkpoint_dir) == (3600, Path("/w"))
    for wrong in ("1h", "-5", "86401", "٣"):
        message = (
            f"HUB_CHECKPOINT_SECONDS must be 0 (off) or whole seconds up to 86400, not {wrong!r}"
        )
        with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
            Settings.from_env({"HUB_CHECKPOINT_SECONDS": wrong})


def test_cost_budget_and_client_limits() -> None:
    import pytest

    settings = Settings.from_env(
        {
            "HUB_QUERY_COST_BUDGET": "2000",
            "HUB_CLIENT_CONCURRENCY": "2",
            "HUB_CLIENT_COST_PER_SECOND": "500",
            "HUB_CLIENT_COST_BURST": "2000",
            "HUB_CLIENT_SUBSCRIPTIONS": "3",
            "HUB_COST_IN_FLIGHT": "4000",
        }
    )
    assert settings == Settings(
        query_cost_budget=2000,
        client_concurrency=2,
        client_cost_per_second=500,
        client_cost_burst=2000,
        client_subscriptions=3,
        cost_in_flight=4000,
    )
    with pytest.raises(
        ValueError, match="HUB_CLIENT_CONCURRENCY must be a whole number from 1, not '0'"
    ):
        Settings.from_env({"HUB_CLIENT_CONCURRENCY": "0"})
    with pytest.raises(
        ValueError, match="HUB_QUERY_COST_BUDGET must be a whole number from 1, not '5e4'"
    ):
        Settings.from_env({"HUB_QUERY_COST_BUDGET": "5e4"})
    with pytest.raises(
        ValueError,
        match=r"HUB_CLIENT_COST_BURST \(1000\) must be at least HUB_QUERY_COST_BUDGET \(50000\)",
    ):
        Settings.from_env({"HUB_CLIENT_COST_BURST": "1000"})


def test_bounded_waits_are_configurable_and_checked() -> None:
    settings = Settings.from_env(
        {"HUB_STATEMENT_TIMEOUT_SECONDS": "2.5", "HUB_LOCK_TIMEOUT_SECONDS": "1",
         "HUB_DATABASE_WAITING": "30"}
    )  # fmt: skip
    assert (
        settings.statement_timeout_seconds, settings.lock_timeout_seconds,
        settings.database_waiting,
    ) == (2.5, 1.0, 30)  # fmt: skip
    assert Settings.from_env({}).lock_timeout_seconds == 4.0
    for name, value in (("HUB_STATEMENT_TIMEOUT_SECONDS", "0"),
                        ("HUB_LOCK_TIMEOUT_SECONDS", "soon"),
                        ("HUB_LOCK_TIMEOUT_SECONDS", "nan"),
                        ("HUB_DATABASE_WAITING", "-1")):  # fmt: skip
        with pytest.raises(ValueError, match=name):
            Settings.from_env({name: value})
