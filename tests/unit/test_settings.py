"""Settings: config file, then GHOSTPOST_* environment, validated at boot with the key named."""

from __future__ import annotations

from pathlib import Path

import pytest

from ghostpost.secretbox import generate_key
from ghostpost.settings import (
    DEFAULT_CONFIG,
    DEMO_SECRET_KEY,
    PROJECT_DIR,
    Settings,
    SettingsError,
)

GOOD_KEY = "a-real-secret-of-enough-length"


def config(tmp_path: Path, body: str, name: str = "ghostpost.toml") -> Path:
    path = tmp_path / name
    path.write_text("[ghostpost]\n" + body, encoding="utf-8")
    return path


@pytest.fixture
def base(tmp_path: Path) -> Path:
    return config(
        tmp_path,
        f'database_url = "sqlite:////var/lib/ghostpost/file.db"\n'
        f'secret_key = "{GOOD_KEY}"\n'
        "worker_lease_seconds = 60\n"
        "serve_runs_worker = true\n",
    )


def test_the_file_alone_gives_its_values_and_the_defaults(base: Path) -> None:
    settings = Settings.load(environ={}, config_path=base)

    assert settings.database_url == "sqlite:////var/lib/ghostpost/file.db"
    assert settings.secret_key == GOOD_KEY
    assert settings.worker_lease_seconds == 60
    assert settings.serve_runs_worker is True
    assert settings.environment == "development"
    assert settings.public_url == "http://127.0.0.1:8000"


def test_the_environment_overrides_the_file(base: Path) -> None:
    settings = Settings.load(
        environ={
            "GHOSTPOST_DATABASE_URL": "postgresql+psycopg://ghostpost@db/ghostpost",
            "GHOSTPOST_SECRET_KEY": "another-secret-from-the-env",
            "GHOSTPOST_WORKER_LEASE_SECONDS": "120",
            "GHOSTPOST_SERVE_RUNS_WORKER": "false",
            "GHOSTPOST_WORKER_POLL_SECONDS": "0.5",
            "PATH": "/usr/bin",  # other variables are none of ghostpost's business
        },
        config_path=base,
    )

    assert settings.database_url == "postgresql+psycopg://ghostpost@db/ghostpost"
    assert settings.secret_key == "another-secret-from-the-env"
    assert settings.worker_lease_seconds == 120
    assert isinstance(settings.worker_lease_seconds, int)
    assert settings.serve_runs_worker is False
    assert settings.worker_poll_seconds == 0.5


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("1", True), ("true", True), ("YES", True), ("0", False), ("False", False), ("no", False)],
)
def test_booleans_from_the_environment(base: Path, raw: str, expected: bool) -> None:
    settings = Settings.load(environ={"GHOSTPOST_SERVE_RUNS_WORKER": raw}, config_path=base)
    assert settings.serve_runs_worker is expected


def test_an_extra_config_file_from_the_environment_overrides_the_first(
    base: Path, tmp_path: Path
) -> None:
    extra = config(tmp_path, "worker_lease_seconds = 300\n", name="extra.toml")

    settings = Settings.load(environ={"GHOSTPOST_CONFIG_FILE": str(extra)}, config_path=base)

    assert settings.worker_lease_seconds == 300
    assert settings.secret_key == GOOD_KEY


def test_adapters_are_read_from_json_in_the_environment(base: Path) -> None:
    settings = Settings.load(
        environ={"GHOSTPOST_ADAPTERS": '{"local": "tests.support.faults:crash_before_send"}'},
        config_path=base,
    )
    assert dict(settings.adapters) == {"local": "tests.support.faults:crash_before_send"}


def test_an_unknown_ghostpost_variable_is_refused_by_name(base: Path) -> None:
    with pytest.raises(SettingsError, match="GHOSTPOST_DATABASE_URI"):
        Settings.load(environ={"GHOSTPOST_DATABASE_URI": "sqlite:///x.db"}, config_path=base)


def test_an_unknown_key_in_the_file_is_refused_by_name(tmp_path: Path) -> None:
    path = config(
        tmp_path, f'database_url = "sqlite:///x.db"\nsecret_key = "{GOOD_KEY}"\nport = 1\n'
    )
    with pytest.raises(SettingsError, match="port"):
        Settings.load(environ={}, config_path=path)


@pytest.mark.parametrize(
    ("name", "raw"),
    [
        ("GHOSTPOST_WORKER_LEASE_SECONDS", "sixty"),
        ("GHOSTPOST_WORKER_LEASE_SECONDS", "1.5"),
        ("GHOSTPOST_WORKER_POLL_SECONDS", "soon"),
        ("GHOSTPOST_SERVE_RUNS_WORKER", "maybe"),
        ("GHOSTPOST_ADAPTERS", "[1, 2]"),
        ("GHOSTPOST_ADAPTERS", "not json"),
    ],
)
def test_a_value_that_cannot_be_read_is_refused_naming_the_variable(
    base: Path, name: str, raw: str
) -> None:
    with pytest.raises(SettingsError, match=name):
        Settings.load(environ={name: raw}, config_path=base)


@pytest.mark.parametrize(
    ("line", "key"),
    [
        ('worker_lease_seconds = "60"', "worker_lease_seconds"),
        ('worker_poll_seconds = "1"', "worker_poll_seconds"),
        ('serve_runs_worker = "false"', "serve_runs_worker"),
        ("secret_key = 12345678901234567890", "secret_key"),
    ],
)
def test_a_value_of_the_wrong_type_in_the_file_is_refused_naming_the_key(
    tmp_path: Path, line: str, key: str
) -> None:
    # The module promises: "a bad value stops the process with a message naming the key, never
    # later with a stack trace". A quoted number or boolean in TOML is such a bad value.
    values = {"database_url": '"sqlite:///x.db"', "secret_key": f'"{GOOD_KEY}"'}
    values[key] = line.split(" = ", 1)[1]
    path = config(tmp_path, "".join(f"{k} = {v}\n" for k, v in values.items()))

    with pytest.raises(SettingsError, match=key):
        Settings.load(environ={}, config_path=path)


def test_production_refuses_the_demo_secret_key(base: Path) -> None:
    with pytest.raises(SettingsError, match="demo"):
        Settings.load(
            environ={
                "GHOSTPOST_ENVIRONMENT": "production",
                "GHOSTPOST_SECRET_KEY": DEMO_SECRET_KEY,
            },
            config_path=base,
        )
    # The demo key is fine outside production.
    dev = Settings.load(environ={"GHOSTPOST_SECRET_KEY": DEMO_SECRET_KEY}, config_path=base)
    assert dev.secret_key == DEMO_SECRET_KEY


def test_a_short_secret_key_is_refused(base: Path) -> None:
    with pytest.raises(SettingsError, match="secret_key"):
        Settings.load(environ={"GHOSTPOST_SECRET_KEY": "short"}, config_path=base)
    with pytest.raises(SettingsError, match="secret_key"):
        Settings.load(environ={"GHOSTPOST_SECRET_KEY": ""}, config_path=base)


@pytest.mark.parametrize(
    ("name", "raw", "key"),
    [
        ("GHOSTPOST_ENVIRONMENT", "staging", "environment"),
        ("GHOSTPOST_DATABASE_URL", "mysql://db/ghostpost", "database_url"),
        ("GHOSTPOST_PUBLIC_URL", "ghostpost.example.com", "public_url"),
        ("GHOSTPOST_WORKER_LEASE_SECONDS", "0", "worker_lease_seconds"),
        ("GHOSTPOST_WORKER_POLL_SECONDS", "0", "worker_poll_seconds"),
        ("GHOSTPOST_ADAPTERS", '{"x": "no_colon"}', "adapters"),
    ],
)
def test_out_of_range_values_are_refused_naming_the_key(
    base: Path, name: str, raw: str, key: str
) -> None:
    with pytest.raises(SettingsError, match=key):
        Settings.load(environ={name: raw}, config_path=base)


def test_missing_required_settings_are_named(tmp_path: Path) -> None:
    path = config(tmp_path, 'environment = "test"\n')
    with pytest.raises(SettingsError, match=r"database_url.*secret_key"):
        Settings.load(environ={}, config_path=path)


def test_a_missing_or_broken_config_file_is_a_settings_error(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="not found"):
        Settings.load(environ={}, config_path=tmp_path / "absent.toml")
    broken = tmp_path / "broken.toml"
    broken.write_text("[ghostpost\n", encoding="utf-8")
    with pytest.raises(SettingsError, match="not valid TOML"):
        Settings.load(environ={}, config_path=broken)


def test_a_relative_sqlite_path_is_resolved_against_the_project_directory(base: Path) -> None:
    settings = Settings.load(
        environ={"GHOSTPOST_DATABASE_URL": "sqlite:///instance/test.db"}, config_path=base
    )

    assert settings.database_url == f"sqlite:///{PROJECT_DIR / 'instance' / 'test.db'}"
    assert Path(settings.database_url.removeprefix("sqlite:///")).is_absolute()


def test_absolute_and_in_memory_sqlite_urls_are_kept(base: Path) -> None:
    for url in ("sqlite:////tmp/ghostpost.db", "sqlite:///:memory:"):
        settings = Settings.load(environ={"GHOSTPOST_DATABASE_URL": url}, config_path=base)
        assert settings.database_url == url


def test_replace_validates_again() -> None:
    settings = Settings(database_url="sqlite:////tmp/x.db", secret_key=GOOD_KEY)
    assert settings.replace(worker_lease_seconds=5).worker_lease_seconds == 5
    with pytest.raises(SettingsError):
        settings.replace(secret_key="tiny")


def test_the_shipped_default_config_loads() -> None:
    settings = Settings.load(environ={})

    assert DEFAULT_CONFIG.is_file()
    assert settings.environment == "development"
    assert settings.secret_key == DEMO_SECRET_KEY
    assert settings.database_url == f"sqlite:///{PROJECT_DIR / 'instance' / 'ghostpost.db'}"
    assert settings.worker_lease_seconds == 60
    assert settings.serve_runs_worker is True


def test_the_shipped_production_example_needs_a_real_secret() -> None:
    example = PROJECT_DIR / "config" / "production.example.toml"
    with pytest.raises(SettingsError, match="demo"):
        Settings.load(environ={"GHOSTPOST_CONFIG_FILE": str(example)})
    with pytest.raises(SettingsError, match="token_keys is required"):
        Settings.load(
            environ={"GHOSTPOST_CONFIG_FILE": str(example), "GHOSTPOST_SECRET_KEY": GOOD_KEY}
        )
    settings = Settings.load(
        environ={
            "GHOSTPOST_CONFIG_FILE": str(example),
            "GHOSTPOST_SECRET_KEY": GOOD_KEY,
            "GHOSTPOST_TOKEN_KEYS": generate_key("k1"),
        }
    )
    assert settings.environment == "production"
    assert settings.serve_runs_worker is False
