from pathlib import Path

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
