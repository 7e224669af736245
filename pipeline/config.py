"""Configuration: a TOML file, overridden by environment variables, validated at start-up.

Precedence, lowest first:
  1. embedded defaults (this module);
  2. the TOML file named by ``--config`` or ``SESSIONFLOW_CONFIG``;
  3. environment variables:
     - ``KAFKA_BOOTSTRAP_SERVERS`` -> ``kafka.bootstrap_servers``
     - ``SESSIONFLOW_<KEY>`` -> top-level ``<key>`` (e.g. ``SESSIONFLOW_DATA_DIR``)
     - ``SESSIONFLOW_<SECTION>__<KEY>`` -> ``<section>.<key>``
       (e.g. ``SESSIONFLOW_SESSIONIZATION__TIMEOUT_MINUTES=45``)
     Values are read as TOML values when they parse as one (``45``, ``true``,
     ``["a", "b"]``), otherwise as plain strings.

Every error names the offending key and where it came from, on one line.
"""

from __future__ import annotations

import ipaddress
import math
import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from pipeline.errors import ConfigError
from pipeline.events.codes import currency_codes

CONFIG_ENV = "SESSIONFLOW_CONFIG"
ENV_PREFIX = "SESSIONFLOW_"
# Environment variables with the prefix that are not config keys.
# Tests' fault hook (pipeline.faults): a variable, but no setting.
FAULT_ENV = "SESSIONFLOW_FAULT"
# Seconds between the plain progress lines of long commands (pipeline.progress).
PROGRESS_INTERVAL_ENV = "SESSIONFLOW_PROGRESS_INTERVAL"
_NON_KEY_ENV = frozenset({CONFIG_ENV, FAULT_ENV, PROGRESS_INTERVAL_ENV})

# GA4 allows a session timeout from 1 minute to 7 hours 55 minutes.
MIN_TIMEOUT_MINUTES = 1
MAX_TIMEOUT_MINUTES = 7 * 60 + 55
# The largest max_event_value: the warehouse's amounts are DECIMAL(18, 4), up to about
# 1e14, so an event at the bound leaves room for 100 of them in one day's sum.
MAX_EVENT_VALUE_LIMIT = 1e12
# Sections whose keys are the user's own names (goals, currencies), not fixed fields.
_FREE_FORM_SECTIONS = frozenset({"goals", "goal_counting", "currency_rates"})
# Secrets: an error line never quotes a value of these fields, nor any value in a section
# that holds one (a typo'd key there may be the secret), nor the whole config.
SECRET_FIELDS = frozenset({"api_secret", "sasl_password"})
SECRET_SECTIONS = frozenset({"ga4", "kafka"})  # kafka: the SASL password, credentials


class _Section(BaseModel):
    # Unknown keys are typos until proven otherwise.
    model_config = ConfigDict(extra="forbid", frozen=True)


class SessionizationSettings(_Section):
    timeout_minutes: int = Field(30, ge=MIN_TIMEOUT_MINUTES, le=MAX_TIMEOUT_MINUTES)
    split_at_midnight: bool = False
    split_on_campaign_change: bool = False
    # Out-of-order arrival tolerated with results identical to a batch run. Events wait
    # this long (in event time) before they are sessionized and written to the lake.
    allowed_lateness_minutes: int = Field(10, ge=0, le=24 * 60)
    # An idle visitor's state is kept this long after its session timed out, so late
    # events can still join it; bounds the consumer's memory.
    state_retention_minutes: int = Field(60, ge=0, le=7 * 24 * 60)
    # Duplicate event_ids are dropped when they arrive within this window (event time).
    dedup_window_minutes: int = Field(24 * 60, ge=1, le=30 * 24 * 60)


class KafkaSettings(_Section):
    # None means "the local broker that `sessionflow broker start` runs".
    bootstrap_servers: str | None = None
    events_topic: str = "sessionflow.events"
    dlq_topic: str = "sessionflow.events.dlq"
    partitions: int = Field(6, ge=1, le=10_000)
    dlq_partitions: int = Field(1, ge=1, le=10_000)
    replication_factor: int = Field(1, ge=1, le=32)
    retention_hours: int = Field(7 * 24, ge=1)
    dlq_retention_hours: int = Field(30 * 24, ge=1)
    # The local broker (ignored when bootstrap_servers names a cluster).
    local_host: str = "127.0.0.1"
    local_port: int = Field(9092, ge=1, le=65535)
    local_controller_port: int = Field(9093, ge=1, le=65535)
    local_heap_mb: int = Field(512, ge=128)
    # Where Kafka's jars are cached; default $XDG_CACHE_HOME/sessionflow/kafka.
    jar_cache_dir: Path | None = None
    # An existing cluster's security, as kafka-python names it. SASL needs a mechanism, a
    # user name and the password: from `sasl_password_file` (owner-only, as keys are) or
    # the environment (SESSIONFLOW_KAFKA__SASL_PASSWORD), never from a config file.
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    sasl_mechanism: Literal["SCRAM-SHA-256", "SCRAM-SHA-512", "PLAIN"] | None = None
    sasl_username: str | None = None
    sasl_password_file: Path | None = None
    sasl_password: SecretStr | None = None
    # TLS: the CA that signed the brokers' certificates (default: the system's), and a
    # client certificate and its key (owner-only) when the cluster asks for one.
    ssl_cafile: Path | None = None
    ssl_certfile: Path | None = None
    ssl_keyfile: Path | None = None
    ssl_check_hostname: bool = True

    @model_validator(mode="after")
    def _security_complete(self) -> KafkaSettings:
        sasl = self.security_protocol.startswith("SASL_")
        tls = self.security_protocol.endswith("SSL")
        sasl_given = [
            name
            for name in ("sasl_mechanism", "sasl_username", "sasl_password_file", "sasl_password")
            if getattr(self, name) is not None
        ]
        tls_given = [
            name
            for name in ("ssl_cafile", "ssl_certfile", "ssl_keyfile")
            if getattr(self, name) is not None
        ]
        protocol = f"security_protocol is {self.security_protocol}"
        if self.security_protocol != "PLAINTEXT" and self.bootstrap_servers is None:
            raise ValueError(f"{protocol}: name the cluster in bootstrap_servers")
        if not sasl and sasl_given:
            raise ValueError(f"{', '.join(sasl_given)} given, but {protocol}")
        if not tls and tls_given:
            raise ValueError(f"{', '.join(tls_given)} given, but {protocol}")
        if sasl and (self.sasl_mechanism is None or self.sasl_username is None):
            raise ValueError(f"{protocol}: sasl_mechanism and sasl_username are needed")
        if sasl and (self.sasl_password is None) == (self.sasl_password_file is None):
            raise ValueError(
                f"{protocol}: give the password once, in sasl_password_file or in "
                "SESSIONFLOW_KAFKA__SASL_PASSWORD"
            )
        if (self.ssl_certfile is None) != (self.ssl_keyfile is None):
            raise ValueError("a client certificate needs both ssl_certfile and ssl_keyfile")
        return self

    @property
    def uses_local_broker(self) -> bool:
        return self.bootstrap_servers is None

    @property
    def bootstrap(self) -> str:
        return self.bootstrap_servers or f"{self.local_host}:{self.local_port}"

    @field_validator("bootstrap_servers")
    @classmethod
    def _hosts_have_ports(cls, value: str | None) -> str | None:
        if value is None or value.strip() == "":
            return None
        # A host name or [IPv6] address: no user-info (user:password@), which would then
        # be printed wherever the bootstrap servers are.
        for server in value.split(","):
            if not _HOST_PORT.fullmatch(server.strip()):
                raise ValueError(
                    "expected host:port[,host:port...] without credentials (they go in "
                    "kafka.sasl_username and kafka.sasl_password_file; got "
                    f"{redact_credentials(value)!r}, credentials redacted)"
                )
        return value


class ValidationSettings(_Section):
    # The collector faces untrusted clients: GA4 accepts up to 72 h of back-dating.
    collector_max_past_hours: float = Field(72.0, gt=0)
    # Everyone (collector, consumer, import) rejects timestamps beyond this clock skew.
    max_future_skew_minutes: float = Field(15.0, ge=0)
    # The largest value one event may carry, either way, in the reporting currency (a
    # site's [site."<id>"] max_event_value overrides it): everyone rejects larger ones.
    max_event_value: float = Field(1_000_000.0, gt=0, le=MAX_EVENT_VALUE_LIMIT)


def _known_timezone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown IANA time zone {value!r}") from None
    return value


def _iso_currency(value: str) -> str:
    if not re.fullmatch(r"[A-Z]{3}", value) or value not in currency_codes():
        raise ValueError(f"expected an ISO 4217 code such as 'USD', got {value!r}")
    return value


class SiteSettings(_Section):
    """A site's own settings: [site."<site id>"], for a site of `sites`."""

    # The site's reporting time zone (its days, as a GA4 property's or a Plausible
    # site's) and currency (its amounts); unset: the global `timezone` and `currency`.
    timezone: str | None = None
    currency: str | None = None

    # Whether purchases and refunds from the anonymous routes (/api/event, /g/collect,
    # and /mp/collect for a site without an api_secret) count at all. GA4 shops often
    # send purchases from gtag.js, hence the default; false rejects them.
    anonymous_purchases: bool = True
    # This site's [validation] max_event_value.
    max_event_value: float | None = Field(None, gt=0, le=MAX_EVENT_VALUE_LIMIT)

    _zone = field_validator("timezone")(_known_timezone)
    _currency = field_validator("currency")(_iso_currency)


class CollectorSettings(_Section):
    host: str = "127.0.0.1"
    port: int = Field(8080, ge=0, le=65535)
    max_body_bytes: int = Field(64 * 1024, ge=1024)
    # Events accepted but not yet acknowledged by Kafka; beyond this many, or this many
    # bytes of them in memory, the collector answers 503 instead of growing without bound
    # while Kafka is away. Both per worker process.
    buffer_max_events: int = Field(100_000, ge=1)
    buffer_max_bytes: int = Field(128 * 1024 * 1024, ge=1024 * 1024)
    # What one worker process gives its clients: more connections are answered 503 and
    # closed at once; a request line and headers larger than max_header_bytes get 431.
    max_connections: int = Field(1000, ge=1)
    max_header_bytes: int = Field(16 * 1024, ge=1024)
    # A request's line and headers must arrive within header_timeout_seconds (of the
    # connection's start, or of the previous answer), its body within body_timeout_seconds
    # of its headers; an idle keep-alive connection is closed after keep_alive_seconds.
    header_timeout_seconds: float = Field(10.0, gt=0, le=3600)
    body_timeout_seconds: float = Field(20.0, gt=0, le=3600)
    keep_alive_seconds: int = Field(5, ge=1, le=3600)
    # The reverse proxies (IP addresses or CIDRs) whose X-Forwarded-For entries and
    # country header are believed; none: the client is the connection's peer.
    trusted_proxies: list[str] = Field(default_factory=list)
    # Replaced by trusted_proxies; named here only to say so when a config still sets it.
    client_ip_header: None = None

    @field_validator("client_ip_header", mode="before")
    @classmethod
    def _replaced(cls, value: object) -> None:
        raise ValueError(
            "replaced by collector.trusted_proxies (the proxies' addresses or CIDRs; the "
            "client is then the right-most X-Forwarded-For entry that is not one of them)"
        )

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        for entry in value:
            try:
                ipaddress.ip_network(entry.strip(), strict=False)
            except ValueError:
                raise ValueError(f"expected IP addresses or CIDRs, got {_short(entry)}") from None
        return value


class ConsumerSettings(_Section):
    group_id: str = "sessionflow-lake"
    # A commit cycle ends after this many records or seconds, whichever comes first:
    # bigger cycles mean fewer, larger Parquet files and less reprocessing after a crash.
    cycle_max_events: int = Field(100_000, ge=1)
    cycle_max_seconds: float = Field(30.0, gt=0)
    # A partition with no new records for this long releases what the wall clock
    # (minus the allowed lateness) has passed, so quiet periods still reach the lake.
    idle_release_seconds: float = Field(60.0, gt=0)
    log_interval_seconds: float = Field(30.0, gt=0)
    # Kafka group session timeout; with a stable --instance-id a restarted consumer
    # takes its partitions back at once (static membership).
    session_timeout_ms: int = Field(15_000, ge=6_000)


class FlowSettings(_Section):
    # `sessionflow serve`: when the daily aggregation of yesterday runs (property time zone).
    daily_cron: str = "30 2 * * *"
    backfill_parallel: int = Field(2, ge=1, le=16)
    # `run daily` also rebuilds the days this far before its target whose inputs changed
    # (GA4 keeps updating a day for 72 h; back-dated hits and late costs land there).
    lookback_days: int = Field(3, ge=0, le=366)
    # A session is cut this many days after its first event (dbt-snowplow-web's
    # max_session_days): a build reads this many days of the lake on each side of its day.
    max_session_days: int = Field(3, ge=1, le=31)
    # A build (or cost load) started while another holds the warehouse waits this long.
    lock_wait_seconds: float = Field(3600.0, ge=0)

    @field_validator("daily_cron")
    @classmethod
    def _five_fields(cls, value: str) -> str:
        if len(value.split()) != 5:
            raise ValueError(f"expected a 5-field cron expression, got {value!r}")
        return value


class AttributionSettings(_Section):
    # "last_non_direct" (GA4's default reporting, as dbt-ga4): a direct session takes the
    # source of the same user's latest non-direct session in the last `lookback_days`;
    # "keep": a direct session stays direct.
    direct_sessions: Literal["keep", "last_non_direct"] = "last_non_direct"
    lookback_days: int = Field(30, ge=1, le=366)


class Ga4Stream(_Section):
    """A site's GA4 data stream, as its tags and servers already address it."""

    # The measurement id (G-XXXXXXX): the Measurement Protocol's `measurement_id` and
    # gtag.js's `tid` name this site by it. Without one, `measurement_id` must be the
    # site id itself.
    measurement_id: str | None = Field(None, pattern=r"^G-[A-Z0-9]{4,20}$")
    # The Measurement Protocol api_secret; when set, /mp/collect requests for this site
    # must carry it. A secret: never logged, never in a Kafka message.
    api_secret: SecretStr | None = None

    @field_validator("api_secret")
    @classmethod
    def _secret_not_empty(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not value.get_secret_value().strip():
            # Every /mp/collect request for the site would then be refused.
            raise ValueError("must not be empty (without one, /mp/collect events are anonymous)")
        return value


class PrivacySettings(_Section):
    # Daily salts; on shared storage when several collectors run (defaults under data_dir).
    salt_dir: Path | None = None
    # Persistent secret from which each site's key for stable ids is derived.
    site_key_file: Path | None = None
    # Country from a trusted proxy header (e.g. "CF-IPCountry") or a GeoIP database.
    country_header: str | None = None
    geoip_database: Path | None = None
    # Drop events from browsers that send Global Privacy Control or Do Not Track.
    respect_opt_out: bool = False


# [warehouse] memory_limit: a DuckDB size (KB, MB, GB, TB in 1000s; KiB, MiB, GiB, TiB in
# 1024s; DuckDB's own parser takes exactly these) or a share of the machine's memory.
MEMORY_SIZE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]i?B)\s*", re.IGNORECASE)
MEMORY_SHARE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*%\s*")


class WarehouseSettings(_Section):
    """What every DuckDB connection the product opens may take (pipeline/duckdb_connections.py)."""

    # Half the machine's memory (or "4GB"): DuckDB's own default, 80 %, leaves too little
    # for the OS, the broker and the consumer beside a build. One process's builds share it.
    memory_limit: str = "50%"
    # DuckDB's worker threads per process; unset: one per core (DuckDB's default).
    threads: int | None = Field(None, ge=1)
    # Where DuckDB spills what exceeds memory_limit; unset: <data_dir>/tmp.
    temp_directory: Path | None = None

    @field_validator("memory_limit")
    @classmethod
    def _size_or_share(cls, value: str) -> str:
        share = MEMORY_SHARE.fullmatch(value)
        match = share or MEMORY_SIZE.fullmatch(value)
        if match is None:
            raise ValueError('expected a size such as "4GB" or "512MiB", or a share such as "50%"')
        amount = float(match[1])
        if amount <= 0:
            raise ValueError("expected more than 0")
        if share and amount > 100:
            raise ValueError("expected a share of at most 100%")
        return value


class Settings(_Section):
    sites: list[str] = Field(default_factory=lambda: ["shop.example"])
    timezone: str = "UTC"
    currency: str = "USD"
    data_dir: Path = Path("data")
    sessionization: SessionizationSettings = Field(default_factory=SessionizationSettings)
    # Assigned conversion values, e.g. sign_up = 5.0 (reporting currency).
    goals: dict[str, float] = Field(default_factory=dict)
    # Per goal, as GA4 allows: count it once per "event" (default) or once per "session".
    goal_counting: dict[str, Literal["event", "session"]] = Field(default_factory=dict)
    # Units of the reporting currency per unit of another currency, e.g. EUR = 1.08.
    # Amounts in a currency without a rate are flagged and kept out of the sums.
    currency_rates: dict[str, float] = Field(default_factory=dict)
    kafka: KafkaSettings = Field(default_factory=KafkaSettings)
    validation: ValidationSettings = Field(default_factory=ValidationSettings)
    collector: CollectorSettings = Field(default_factory=CollectorSettings)
    consumer: ConsumerSettings = Field(default_factory=ConsumerSettings)
    flows: FlowSettings = Field(default_factory=FlowSettings)
    attribution: AttributionSettings = Field(default_factory=AttributionSettings)
    # Per site (a key of `sites`): [ga4."shop.example"] measurement_id, api_secret.
    ga4: dict[str, Ga4Stream] = Field(default_factory=dict)
    # Per site (a key of `sites`): [site."shop.example"] anonymous_purchases, ...
    site: dict[str, SiteSettings] = Field(default_factory=dict)
    privacy: PrivacySettings = Field(default_factory=PrivacySettings)
    warehouse: WarehouseSettings = Field(default_factory=WarehouseSettings)

    _zone = field_validator("timezone")(_known_timezone)
    _currency = field_validator("currency")(_iso_currency)

    @field_validator("sites")
    @classmethod
    def _sites_nonempty(cls, value: list[str]) -> list[str]:
        if not value or any(not site.strip() for site in value):
            raise ValueError("expected a non-empty list of site ids")
        return value

    @field_validator("currency_rates", mode="before")
    @classmethod
    def _upper_case_codes(cls, value: Any) -> Any:
        # Environment variable names arrive lower-cased: SESSIONFLOW_CURRENCY_RATES__EUR.
        return {str(k).upper(): v for k, v in value.items()} if isinstance(value, dict) else value

    @field_validator("currency_rates")
    @classmethod
    def _positive_rates(cls, value: dict[str, float]) -> dict[str, float]:
        for code, rate in value.items():
            # isfinite: an infinite rate would make every converted sum infinite.
            if not re.fullmatch(r"[A-Z]{3}", code) or not (rate > 0 and math.isfinite(rate)):
                raise ValueError(f"expected ISO 4217 code = positive rate, got {code} = {rate}")
        return value

    @field_validator("goals")
    @classmethod
    def _finite_goal_values(cls, value: dict[str, float]) -> dict[str, float]:
        # "nan" or "inf" parse as TOML floats; either would poison every session value sum.
        bad = {goal: amount for goal, amount in value.items() if not math.isfinite(amount)}
        if bad:
            raise ValueError(f"expected finite conversion values, got {bad}")
        return value

    @model_validator(mode="after")
    def _counted_goals_exist(self) -> Settings:
        unknown = sorted(self.goal_counting.keys() - self.goals.keys())
        if unknown:
            raise ValueError(f"goal_counting names goals not in [goals]: {unknown}")
        return self

    @model_validator(mode="after")
    def _ga4_streams_of_known_sites(self) -> Settings:
        unknown = sorted(self.ga4.keys() - set(self.sites))
        if unknown:
            raise ValueError(f"[ga4] names sites not in `sites`: {unknown}")
        ids = [stream.measurement_id for stream in self.ga4.values() if stream.measurement_id]
        if len(ids) != len(set(ids)):
            raise ValueError("[ga4] gives one measurement_id to two sites")
        return self

    def secret_values(self) -> list[str]:
        """The secrets written in the settings themselves (not those in files)."""
        secrets = [stream.api_secret for stream in self.ga4.values()]
        secrets.append(self.kafka.sasl_password)
        return [secret.get_secret_value() for secret in secrets if secret is not None]

    @model_validator(mode="after")
    def _site_sections_of_known_sites(self) -> Settings:
        unknown = sorted(self.site.keys() - set(self.sites))
        if unknown:
            raise ValueError(f"[site] names sites not in `sites`: {unknown}")
        return self

    def site_settings(self, site: str) -> SiteSettings:
        """A site's [site."<id>"] section, or the defaults."""
        return self.site.get(site) or SiteSettings()

    def site_timezone(self, site: str) -> str:
        """The time zone of `site`'s days: its own, or the global `timezone`."""
        return self.site_settings(site).timezone or self.timezone

    def site_currency(self, site: str) -> str:
        """The currency of `site`'s amounts: its own, or the global `currency`."""
        return self.site_settings(site).currency or self.currency

    def rate_to_reporting(self, currency: str) -> float | None:
        """Units of the reporting currency per unit of `currency` ([currency_rates]; the
        reporting currency itself is 1); None when it has no rate."""
        return 1.0 if currency == self.currency else self.currency_rates.get(currency)

    def max_event_value(self, site: str) -> float:
        """The largest value one event of `site` may carry (reporting currency)."""
        own = self.site_settings(site).max_event_value
        return self.validation.max_event_value if own is None else own

    def site_for_measurement_id(self, measurement_id: str) -> str | None:
        """The site a GA4 measurement id (or the site id itself) names; None if none."""
        for site, stream in self.ga4.items():
            if stream.measurement_id == measurement_id:
                return site
        return measurement_id if measurement_id in self.sites else None

    @property
    def warehouse_path(self) -> Path:
        return self.data_dir / "warehouse.duckdb"

    @property
    def warehouse_temp_dir(self) -> Path:
        return self.warehouse.temp_directory or self.data_dir / "tmp"

    @property
    def marts_dir(self) -> Path:
        return self.data_dir / "marts"

    @property
    def lake_dir(self) -> Path:
        return self.data_dir / "lake"

    @property
    def local_broker_dir(self) -> Path:
        return self.data_dir / "kafka"

    @property
    def consumer_state_dir(self) -> Path:
        return self.data_dir / "consumer-state" / self.consumer.group_id

    @property
    def salt_dir(self) -> Path:
        return self.privacy.salt_dir or self.data_dir / "secrets" / "salts"

    @property
    def site_key_file(self) -> Path:
        return self.privacy.site_key_file or self.data_dir / "secrets" / "site_key"


_HOST_PORT = re.compile(r"(?:[A-Za-z0-9._-]+|\[[0-9A-Fa-f:.]+\]):\d{1,5}")


def redact_credentials(text: str) -> str:
    """A host list or URL with everything up to its last "@" (user:password@) masked."""
    _, at, rest = text.rpartition("@")
    return f"***@{rest}" if at else text


def load_settings(
    config_path: str | Path | None = None, environ: Mapping[str, str] | None = None
) -> Settings:
    """Build validated settings from defaults, an optional TOML file and the environment."""
    env = os.environ if environ is None else environ
    path = config_path or env.get(CONFIG_ENV) or None
    raw: dict[str, Any] = _read_toml(Path(path)) if path else {}
    if isinstance(raw.get("kafka"), dict) and "sasl_password" in raw["kafka"]:
        # A config file is read by more people and tools than its owner (and copied).
        raise ConfigError(
            f"invalid config ({path}): kafka.sasl_password: not in a config file; put the "
            "password in a file readable only by you (kafka.sasl_password_file) or in "
            "SESSIONFLOW_KAFKA__SASL_PASSWORD"
        )
    overrides = _env_overrides(env)
    for key_path, value in overrides:
        _set_nested(raw, key_path, value)
    source = (str(path) if path else "defaults") + (" + environment" if overrides else "")
    _check_text(raw, (), source)
    try:
        return Settings.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, source)) from None


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        # Not a regular file (a directory, a FIFO, /dev/zero): nothing a config can be, and
        # reading one would block or never end.
        if path.exists() and not path.is_file():
            raise ConfigError(f"config file {path} is not a regular file")
        with path.open("rb") as handle:
            data = handle.read(_MAX_CONFIG_BYTES + 1)
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except (OSError, ValueError) as exc:  # ValueError: a path with a NUL byte
        raise ConfigError(f"cannot read config file {path}: {_reason(exc)}") from None
    if len(data) > _MAX_CONFIG_BYTES:
        raise ConfigError(f"config file {path} is larger than {_MAX_CONFIG_BYTES} bytes")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"config file {path} is not UTF-8 text (byte {exc.start})") from None
    try:
        return _loads_toml(text)
    except ValueError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None


# A config file is a few kilobytes; this bounds what a wrong path can make us read.
_MAX_CONFIG_BYTES = 1 << 20


def _loads_toml(text: str) -> dict[str, Any]:
    """tomllib.loads, with every failure a ValueError: tomllib recurses per nesting level
    (thousands of brackets: RecursionError) and int() refuses numbers of more than 4300
    digits with a plain ValueError, not a TOMLDecodeError."""
    try:
        return tomllib.loads(text)
    except RecursionError:
        raise ValueError("nested too deeply") from None


def _reason(exc: BaseException) -> str:
    return (exc.strerror if isinstance(exc, OSError) else None) or str(exc)


def _env_overrides(env: Mapping[str, str]) -> list[tuple[tuple[str, ...], Any]]:
    overrides: list[tuple[tuple[str, ...], Any]] = []
    if env.get("KAFKA_BOOTSTRAP_SERVERS"):
        overrides.append((("kafka", "bootstrap_servers"), env["KAFKA_BOOTSTRAP_SERVERS"]))
    for name, text in sorted(env.items()):
        if not name.startswith(ENV_PREFIX) or name in _NON_KEY_ENV:
            continue
        key_path = tuple(part.lower() for part in name[len(ENV_PREFIX) :].split("__"))
        if not _is_known_key(key_path):
            raise ConfigError(
                f"environment variable {name} does not name a config key "
                f"(expected SESSIONFLOW_<KEY> or SESSIONFLOW_<SECTION>__<KEY>)"
            )
        # A secret is the text as given: "123" or "true" must not become a number or a bool.
        value = text if key_path[-1] in SECRET_FIELDS else _parse_env_value(text)
        overrides.append((key_path, value))
    return overrides


def _is_known_key(key_path: tuple[str, ...]) -> bool:
    """True when key_path names a field, or a key of a free-form section such as goals."""
    model: type[BaseModel] = Settings
    *sections, last = key_path
    for section in sections:
        annotation = (
            model.model_fields[section].annotation if section in model.model_fields else None
        )
        if section in _FREE_FORM_SECTIONS and model is Settings and len(sections) == 1:
            return True
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return False
        model = annotation
    return last in model.model_fields


def _parse_env_value(text: str) -> Any:
    try:
        return _loads_toml(f"v = {text}")["v"]
    except ValueError:  # not a TOML value (TOMLDecodeError is one): the plain string
        return text


def _set_nested(target: dict[str, Any], key_path: tuple[str, ...], value: Any) -> None:
    node = target
    for part in key_path[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"config key {part!r} is a value, not a section")
        node = child
    node[key_path[-1]] = value


def _check_text(value: Any, key_path: tuple[str, ...], source: str) -> None:
    """Every key and string must be text a file can hold: a NUL byte makes every path
    unusable (ValueError at the first open), and a lone surrogate (from invalid UTF-8 in
    the environment) cannot be written to Parquet or Kafka later, far from its cause."""
    items: list[tuple[str, Any]]
    if isinstance(value, dict):
        items = [(str(key), item) for key, item in value.items()]
        keys = [key for key, _ in items]
    elif isinstance(value, list):
        items = [(f"[{index}]", item) for index, item in enumerate(value)]
        keys = []
    else:
        items, keys = [], []
    texts = keys + ([value] if isinstance(value, str) else [])
    for text in texts:
        if "\x00" in text or not _encodable(text):
            key = ".".join(key_path) or "(root)"
            raise ConfigError(
                f"invalid config ({source}): {key}: not valid text (a NUL byte or invalid "
                f"UTF-8){_quoted_input(key_path, text, known_key=True)}"
            )
    for part, item in items:
        _check_text(item, (*key_path, part), source)


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _short(value: object) -> str:
    # An error line quotes the value, but not a megabyte of it.
    text = repr(value)
    return text if len(text) <= 200 else text[:200] + "..."


# Fields whose validator's error quotes the value itself, credentials redacted.
_QUOTING_THEMSELVES = frozenset({("kafka", "bootstrap_servers")})


def _describe(exc: ValidationError, source: str) -> str:
    problems = []
    for error in exc.errors():
        loc = tuple(str(part) for part in error["loc"])
        key = ".".join(loc) or "(root)"
        # pydantic prefixes a validator's own message with "Value error, ": the key says it.
        message = error["msg"].removeprefix("Value error, ")
        unknown = error["type"] == "extra_forbidden"
        if unknown:
            message = "unknown key"
        quoted = _quoted_input(loc, error.get("input"), known_key=not unknown)
        if loc in _QUOTING_THEMSELVES and error["type"] == "value_error":
            quoted = ""  # the validator's message quotes the value, redacted
        elif quoted.startswith(" (got ") and quoted[6:-1] in message:
            quoted = ""  # the validator's message quotes the value already
        problems.append(f"{key}: {message}{quoted}")
    return f"invalid config ({source}): " + "; ".join(problems)


def _quoted_input(loc: tuple[str, ...], value: object, *, known_key: bool) -> str:
    """ " (got <value>)" when the value at `loc` cannot be a secret. Never the whole config
    (an empty loc), nothing in a section holding a secret, no secret field, no value of an
    unknown key (it may be a secret under a typo'd name)."""
    if not loc or not known_key:
        return ""  # "unknown key" says it all
    if loc[0] in SECRET_SECTIONS or SECRET_FIELDS.intersection(loc):
        return " (value not shown: its section holds a secret)"
    return f" (got {_short(value)})"
