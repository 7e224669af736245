"""The connection options of every kafka-python client sessionflow builds (producers,
consumers, admin clients): the bootstrap servers and the cluster's TLS and SASL settings,
from one place, so that no client connects without them.

The SASL password is handed to kafka-python as a `Concealed` string: kafka-python 3.0
logs an admin client's whole configuration at debug level, and that line must not carry it.
"""

from __future__ import annotations

from typing import Any

from pipeline.config import KafkaSettings
from pipeline.privacy.secrets import read_secret, read_secret_text


class Concealed(str):
    """A str that shows as *** when printed, logged or formatted; its characters are
    still there for what encodes it (SASL's SCRAM and PLAIN exchanges)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "'***'"

    def __str__(self) -> str:
        return "***"

    def __format__(self, spec: str) -> str:
        return format("***", spec)


def client_options(kafka: KafkaSettings) -> dict[str, Any]:
    """kafka-python keyword arguments (3.0's names) for a client of the configured cluster."""
    options: dict[str, Any] = {
        "bootstrap_servers": kafka.bootstrap,
        "security_protocol": kafka.security_protocol,
    }
    if kafka.security_protocol in ("SSL", "SASL_SSL"):
        options["ssl_check_hostname"] = kafka.ssl_check_hostname
        if kafka.ssl_cafile is not None:
            options["ssl_cafile"] = str(kafka.ssl_cafile)
        if kafka.ssl_certfile is not None and kafka.ssl_keyfile is not None:
            read_secret(kafka.ssl_keyfile, min_bytes=1)  # owner-only, as every key
            options["ssl_certfile"] = str(kafka.ssl_certfile)
            options["ssl_keyfile"] = str(kafka.ssl_keyfile)
    password = sasl_password(kafka)
    if password is not None:
        options["sasl_mechanism"] = kafka.sasl_mechanism
        options["sasl_plain_username"] = kafka.sasl_username
        options["sasl_plain_password"] = password
    return options


def sasl_password(kafka: KafkaSettings) -> Concealed | None:
    """The SASL password, from the environment or the owner-only password file."""
    if kafka.sasl_password is not None:
        return Concealed(kafka.sasl_password.get_secret_value())
    if kafka.sasl_password_file is not None:
        return Concealed(read_secret_text(kafka.sasl_password_file))
    return None
