"""Secrets in the settings: config errors never quote them, the Kafka security settings
are complete or refused, and every Kafka client gets the same options, its password out
of kafka-python's own log lines."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import get_args

import pytest
from click.testing import CliRunner
from kafka import KafkaAdminClient
from pydantic import BaseModel, SecretStr

from pipeline.cli import cli
from pipeline.config import SECRET_FIELDS, SECRET_SECTIONS, Settings, load_settings
from pipeline.errors import ConfigError, SecretFileError
from pipeline.kafka.client import client_options

SECRET = "s3cret-Value-42"
SECURED = {
    "KAFKA_BOOTSTRAP_SERVERS": "kafka-1.example:9093",
    "SESSIONFLOW_KAFKA__SECURITY_PROTOCOL": "SASL_SSL",
    "SESSIONFLOW_KAFKA__SASL_MECHANISM": "SCRAM-SHA-512",
    "SESSIONFLOW_KAFKA__SASL_USERNAME": "sessionflow",
}


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "sessionflow.toml"
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("toml", "names"),
    [
        ('[ga4."shop.example"]\napi_secret = 12345678\n', "ga4.shop.example.api_secret:"),
        (f'[ga4."shop.example"]\napi_secert = "{SECRET}"\n', "api_secert: unknown key"),
        (f'sites = ["a.example"]\n[ga4."shop.example"]\napi_secret = "{SECRET}"\n', "(root):"),
        (f'[kafka]\nsasl_pasword = "{SECRET}"\n', "kafka.sasl_pasword: unknown key"),
        (f'[kafka]\nbootstrap_servers = "u:{SECRET}@h:9092"\n', "'***@h:9092'"),
    ],
)
def test_a_config_error_never_quotes_a_secret(tmp_path: Path, toml: str, names: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(write(tmp_path, toml), environ={})
    assert names in str(caught.value)
    assert SECRET not in str(caught.value) and "12345678" not in str(caught.value)


def test_values_outside_secret_sections_are_still_quoted(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"consumer.cycle_max_events: .* \(got 'many'\)$"):
        load_settings(write(tmp_path, '[consumer]\ncycle_max_events = "many"\n'), environ={})
    # A validator's message that quotes the value already: quoted once.
    with pytest.raises(ConfigError) as caught:
        load_settings(write(tmp_path, 'timezone = "Mars/Olympus"\n'), environ={})
    assert str(caught.value).endswith("timezone: unknown IANA time zone 'Mars/Olympus'")


def test_bootstrap_servers_with_credentials_are_refused_and_redacted() -> None:
    for given in (f"user:{SECRET}@kafka:9092", f"{SECRET}@kafka:9092", f"a:9092,{SECRET}@b:1"):
        with pytest.raises(ConfigError) as caught:
            load_settings(environ={"KAFKA_BOOTSTRAP_SERVERS": given})
        assert "without credentials" in str(caught.value) and SECRET not in str(caught.value)
    good = "kafka-1.example:9092,[::1]:9093,10.0.0.7:9094"
    assert load_settings(environ={"KAFKA_BOOTSTRAP_SERVERS": good}).kafka.bootstrap == good


def test_the_sasl_password_comes_from_a_file_or_the_environment(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"kafka\.sasl_password: not in a config file"):
        load_settings(write(tmp_path, f'[kafka]\nsasl_password = "{SECRET}"\n'), environ={})
    # From the environment as the text given: digits stay a string.
    settings = load_settings(environ={**SECURED, "SESSIONFLOW_KAFKA__SASL_PASSWORD": "1234"})
    assert client_options(settings.kafka)["sasl_plain_password"] == "1234"


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"SESSIONFLOW_KAFKA__SECURITY_PROTOCOL": "SSL"}, "name the cluster in bootstrap"),
        ({**SECURED}, "give the password once"),
        (
            {**SECURED, "SESSIONFLOW_KAFKA__SASL_PASSWORD": "x", "SESSIONFLOW_KAFKA__SASL_PASSWORD_FILE": "/p"},
            "give the password once",
        ),
        ({**SECURED, "SESSIONFLOW_KAFKA__SECURITY_PROTOCOL": "SSL"}, "sasl_mechanism, sasl_username given"),
        ({"KAFKA_BOOTSTRAP_SERVERS": "h:1", "SESSIONFLOW_KAFKA__SSL_CAFILE": "/ca"}, "ssl_cafile given"),
        ({"KAFKA_BOOTSTRAP_SERVERS": "h:1", "SESSIONFLOW_KAFKA__SECURITY_PROTOCOL": "SSL",
          "SESSIONFLOW_KAFKA__SSL_CERTFILE": "/c"}, "needs both ssl_certfile and ssl_keyfile"),
    ],
)  # fmt: skip
def test_incomplete_security_settings_are_refused(environ: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_settings(environ=environ)


def test_client_options(tmp_path: Path) -> None:
    password_file = tmp_path / "kafka-password"
    password_file.write_text(f"{SECRET}\n")
    password_file.chmod(0o600)
    key = tmp_path / "client.key"
    key.write_text("-----BEGIN PRIVATE KEY-----\n")
    key.chmod(0o600)
    settings = load_settings(
        environ={
            **SECURED,
            "SESSIONFLOW_KAFKA__SASL_PASSWORD_FILE": str(password_file),
            "SESSIONFLOW_KAFKA__SSL_CAFILE": "/etc/kafka/ca.pem",
            "SESSIONFLOW_KAFKA__SSL_CERTFILE": "/etc/kafka/client.pem",
            "SESSIONFLOW_KAFKA__SSL_KEYFILE": str(key),
        }
    )
    assert client_options(settings.kafka) == {
        "bootstrap_servers": "kafka-1.example:9093",
        "security_protocol": "SASL_SSL",
        "ssl_check_hostname": True,
        "ssl_cafile": "/etc/kafka/ca.pem",
        "ssl_certfile": "/etc/kafka/client.pem",
        "ssl_keyfile": str(key),
        "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_plain_username": "sessionflow",
        "sasl_plain_password": SECRET,
    }
    assert client_options(load_settings(environ={}).kafka) == {
        "bootstrap_servers": "127.0.0.1:9092",
        "security_protocol": "PLAINTEXT",
    }
    password_file.chmod(0o644)
    with pytest.raises(SecretFileError, match="chmod 600"):
        client_options(settings.kafka)


def test_kafka_python_logs_no_password(caplog: pytest.LogCaptureFixture) -> None:
    """kafka-python 3.0 logs an admin client's whole configuration at debug level."""
    settings = load_settings(
        environ={**SECURED, "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1",
                 "SESSIONFLOW_KAFKA__SASL_PASSWORD": SECRET}
    )  # fmt: skip
    caplog.set_level(logging.DEBUG, logger="kafka")
    with pytest.raises(Exception):  # noqa: B017 - nothing listens: any failure
        KafkaAdminClient(**client_options(settings.kafka), bootstrap_timeout_ms=200)
    assert "sasl_plain_password" in caplog.text  # the line is there,
    assert SECRET not in caplog.text  # the password is not


def test_cli_error_lines_mask_the_settings_secrets(tmp_path: Path) -> None:
    """Whatever an error quotes (here a path that happens to hold the api_secret), the
    CLI's error line shows *** instead."""
    path = write(tmp_path, f'[ga4."shop.example"]\napi_secret = "{SECRET}"\n')
    result = CliRunner().invoke(cli, ["--config", str(path), "costs", "load", f"/x/{SECRET}.csv"])
    assert result.exit_code == 1
    assert SECRET not in result.output and "***" in result.output


def test_every_secret_field_is_known_to_the_error_rule() -> None:
    """A SecretStr field added to a section (or to a per-site table) must be listed in
    SECRET_FIELDS, and its section in SECRET_SECTIONS, or its errors would quote it."""
    found: set[tuple[str, str]] = set()
    for section, field in Settings.model_fields.items():
        models = [arg for arg in get_args(field.annotation) if isinstance(arg, type)]
        if isinstance(field.annotation, type):
            models.append(field.annotation)
        for model in models:
            if issubclass(model, BaseModel):
                found |= {
                    (section, name)
                    for name, inner in model.model_fields.items()
                    if SecretStr in (inner.annotation, *get_args(inner.annotation))
                }
    assert found >= {("ga4", "api_secret"), ("kafka", "sasl_password")}
    for section, name in found:
        assert section in SECRET_SECTIONS and name in SECRET_FIELDS, (section, name)


@pytest.mark.parametrize("secret", ["", "   ", "\t"])
def test_an_empty_api_secret_is_refused_in_one_line(tmp_path: Path, secret: str) -> None:
    toml = f'sites = ["shop.example"]\n[ga4."shop.example"]\napi_secret = "{secret}"\n'
    with pytest.raises(ConfigError) as caught:
        load_settings(write(tmp_path, toml), environ={})
    message = str(caught.value)
    assert "ga4.shop.example.api_secret: must not be empty" in message
    assert "\n" not in message and "(got" not in message


def test_the_bootstrap_servers_error_quotes_the_value_redacted_and_says_so_once() -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(environ={"KAFKA_BOOTSTRAP_SERVERS": f"u:{SECRET}@k1:9092"})
    message = str(caught.value)
    assert "got '***@k1:9092', credentials redacted" in message
    assert "not shown" not in message and SECRET not in message
