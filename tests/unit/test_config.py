from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from pipeline.cli import cli
from pipeline.config import load_settings
from pipeline.errors import ConfigError


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "sessionflow.toml"
    path.write_text(text)
    return path


def test_embedded_defaults_are_valid() -> None:
    settings = load_settings(environ={})
    assert settings.timezone == "UTC"
    assert settings.currency == "USD"
    assert settings.sessionization.timeout_minutes == 30
    assert settings.kafka.uses_local_broker
    assert settings.kafka.bootstrap == "127.0.0.1:9092"
    assert settings.data_dir == Path("data")


def test_toml_file_is_read(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        'sites = ["a.example", "b.example"]\ntimezone = "Europe/Berlin"\ncurrency = "EUR"\n'
        "[sessionization]\ntimeout_minutes = 45\nsplit_at_midnight = true\n"
        "[goals]\nsign_up = 5.0\n[kafka]\npartitions = 12\nretention_hours = 48\n",
    )
    settings = load_settings(path, environ={})
    assert settings.sites == ["a.example", "b.example"]
    assert settings.timezone == "Europe/Berlin"
    assert settings.sessionization.timeout_minutes == 45
    assert settings.sessionization.split_at_midnight
    assert settings.goals == {"sign_up": 5.0}
    assert settings.kafka.partitions == 12
    assert settings.kafka.retention_hours == 48


def test_config_file_named_by_environment(tmp_path: Path) -> None:
    path = write(tmp_path, 'currency = "GBP"\n')
    assert load_settings(environ={"SESSIONFLOW_CONFIG": str(path)}).currency == "GBP"


def test_environment_overrides_file(tmp_path: Path) -> None:
    path = write(tmp_path, "[sessionization]\ntimeout_minutes = 45\n[kafka]\npartitions = 3\n")
    settings = load_settings(
        path,
        environ={
            "SESSIONFLOW_SESSIONIZATION__TIMEOUT_MINUTES": "60",
            "SESSIONFLOW_DATA_DIR": "/srv/sessionflow",
            "SESSIONFLOW_SITES": '["x.example"]',
            "SESSIONFLOW_GOALS__SIGN_UP": "2.5",
            "KAFKA_BOOTSTRAP_SERVERS": "kafka-1:9092,kafka-2:9092",
        },
    )
    assert settings.sessionization.timeout_minutes == 60
    assert settings.kafka.partitions == 3
    assert settings.data_dir == Path("/srv/sessionflow")
    assert settings.sites == ["x.example"]
    assert settings.goals == {"sign_up": 2.5}
    assert not settings.kafka.uses_local_broker
    assert settings.kafka.bootstrap == "kafka-1:9092,kafka-2:9092"


@pytest.mark.parametrize(
    ("toml", "key"),
    [
        ("[sessionization]\ntimeout_minutes = 0\n", "sessionization.timeout_minutes"),
        ("[sessionization]\ntimeout_minutes = 476\n", "sessionization.timeout_minutes"),
        ('timezone = "Mars/Olympus"\n', "timezone"),
        ('currency = "dollars"\n', "currency"),
        ("sites = []\n", "sites"),
        ("[kafka]\npartitions = 0\n", "kafka.partitions"),
        ('[kafka]\nbootstrap_servers = "no-port"\n', "kafka.bootstrap_servers"),
        ('[goals]\nsign_up = "five"\n', "goals.sign_up"),
        ("[sessionization]\ntimeout = 30\n", "sessionization.timeout"),
        ("colour = 1\n", "colour"),
        ('[warehouse]\nmemory_limit = "lots"\n', "warehouse.memory_limit"),
        ('[warehouse]\nmemory_limit = "4 GBs"\n', "warehouse.memory_limit"),
        ('[warehouse]\nmemory_limit = "0MB"\n', "warehouse.memory_limit"),
        ('[warehouse]\nmemory_limit = "150%"\n', "warehouse.memory_limit"),
        ("[warehouse]\nmemory_limit = 4\n", "warehouse.memory_limit"),
        ("[warehouse]\nthreads = 0\n", "warehouse.threads"),
    ],
)
def test_bad_values_name_their_key(tmp_path: Path, toml: str, key: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(write(tmp_path, toml), environ={})
    message = str(caught.value)
    assert f"{key}:" in message
    assert "\n" not in message


def test_timeout_bounds_are_inclusive(tmp_path: Path) -> None:
    for minutes in (1, 475):
        path = write(tmp_path, f"[sessionization]\ntimeout_minutes = {minutes}\n")
        assert load_settings(path, environ={}).sessionization.timeout_minutes == minutes


def test_bad_environment_value_names_key() -> None:
    with pytest.raises(ConfigError, match=r"kafka\.partitions:"):
        load_settings(environ={"SESSIONFLOW_KAFKA__PARTITIONS": "many"})


def test_unknown_environment_variable_is_reported() -> None:
    with pytest.raises(ConfigError, match="SESSIONFLOW_KAFKA__PARTITONS"):
        load_settings(environ={"SESSIONFLOW_KAFKA__PARTITONS": "3"})


def test_missing_and_malformed_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_settings(tmp_path / "absent.toml", environ={})
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings(write(tmp_path, "sites = [\n"), environ={})


def test_cli_reports_config_error_on_one_line(tmp_path: Path) -> None:
    path = write(tmp_path, "[sessionization]\ntimeout_minutes = 9999\n")
    result = CliRunner().invoke(cli, ["--config", str(path), "broker", "status"])
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1
    assert "sessionization.timeout_minutes" in lines[0]


SITES = 'sites = ["a.example", "b.example"]\n'


@pytest.mark.parametrize(
    ("section", "key"),
    [
        ('timezone = "Mars/Olympus_Mons"\n', "site.b.example.timezone"),
        ('timezone = "UTC+2"\n', "site.b.example.timezone"),
        ('currency = "EURO"\n', "site.b.example.currency"),
        ('currency = "ZZZ"\n', "site.b.example.currency"),  # three letters, not ISO 4217
        ('currency = "eur"\n', "site.b.example.currency"),
    ],
)
def test_a_sites_bad_zone_or_currency_names_its_key(tmp_path: Path, section: str, key: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(write(tmp_path, f'{SITES}[site."b.example"]\n{section}'), environ={})
    message = str(caught.value)
    assert f"{key}:" in message
    assert "\n" not in message


def test_a_site_keeps_its_own_zone_and_currency_and_the_others_the_global_ones(
    tmp_path: Path,
) -> None:
    path = write(
        tmp_path,
        f'{SITES}timezone = "Europe/Berlin"\ncurrency = "EUR"\n[currency_rates]\nJPY = 0.006\n'
        '[site."b.example"]\ntimezone = "Asia/Tokyo"\ncurrency = "JPY"\n',
    )
    settings = load_settings(path, environ={})
    assert [settings.site_timezone(s) for s in settings.sites] == ["Europe/Berlin", "Asia/Tokyo"]
    assert [settings.site_currency(s) for s in settings.sites] == ["EUR", "JPY"]
    assert (settings.rate_to_reporting("EUR"), settings.rate_to_reporting("JPY")) == (1.0, 0.006)
    assert settings.rate_to_reporting("USD") is None
