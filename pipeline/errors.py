"""Errors that the CLI reports as one clear line instead of a traceback."""


class SessionflowError(Exception):
    """Base class: its message is shown to the user as-is, on one line."""


class ConfigError(SessionflowError):
    """The configuration is invalid; the message names the key."""


class BrokerError(SessionflowError):
    """The local Kafka broker could not be resolved, started, stopped or reached."""


class SecretFileError(SessionflowError):
    """A secret file (salt, site key, Kafka password or key) is unusable or unprotected;
    the message says how to fix it."""
