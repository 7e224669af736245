"""Fuzzing the config loader: TOML text and environment variables. Every input gives
Settings or a ConfigError of one line; never another exception. Configs that hold a
secret (an api_secret, a Kafka password, credentials in the bootstrap servers), in its
place, under a typo'd key, as a number, beside hostile values, never show it: not in the
error, not in the real CLI's stdout or stderr (--verbose too)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipeline.config import Settings, load_settings
from pipeline.errors import ConfigError
from tests.reliability.support import Outcomes, assert_one_line, cli_env, fuzz_settings

OUTCOMES = Outcomes()

# Known keys, so generated files and variables reach validation, not only the key check.
KEYS = [
    "sites", "timezone", "currency", "data_dir", "goals.sign_up", "goal_counting.sign_up",
    "currency_rates.EUR", "kafka.bootstrap_servers", "kafka.partitions", "kafka.local_port",
    "kafka.jar_cache_dir", "sessionization.timeout_minutes", "sessionization.split_at_midnight",
    "collector.port", "collector.max_body_bytes", "collector.trusted_proxies",
    "flows.daily_cron", "flows.lookback_days", "flows.lock_wait_seconds",
    "attribution.direct_sessions", "privacy.salt_dir", "privacy.respect_opt_out",
    "validation.max_future_skew_minutes", 'ga4."shop.example".measurement_id',
    'ga4."shop.example".api_secret', "no_such_key", "kafka.no_such_key", "goals",
]  # fmt: skip
HOSTILE_VALUES = [
    '""', '"../../etc/passwd"', '"/dev/zero"', '"\\u0000"', '"\\ud800"', "nan", "inf", "-inf",
    "1e400", "9" * 5000, "-1", "0", "true", "[]", '["shop.example", "sh\u043ep.example"]',
    '["../x"]', '["shop.example\' OR 1=1 --"]', "{}", "{a = 1}", '"Europe/../../etc/passwd"',
    '"UTC\\u0000"', '"G-ABC"', '"* * * * * *"', '"host:99999"', '"' + "x" * 100_000 + '"',
    "[" * 3000 + "]" * 3000, "1979-05-27T07:32:00Z", '"""multi\nline"""',
]  # fmt: skip
toml_values = st.one_of(
    st.sampled_from(HOSTILE_VALUES),
    st.integers().map(str),
    st.floats().map(lambda f: repr(f).replace("nan", "nan").replace("inf", "inf")),
    st.text(max_size=20).map(json.dumps),
    st.lists(st.text(max_size=8), max_size=3).map(json.dumps),
    st.booleans().map(lambda b: str(b).lower()),
)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    yield tmp_path_factory.mktemp("fuzz-config")
    print("\n" + OUTCOMES.line("config"))


def attempt(kind: str, path: Path | None = None, environ: Mapping[str, str] | None = None) -> None:
    try:
        settings = load_settings(path, environ={} if environ is None else environ)
    except ConfigError as error:
        assert_one_line(error)
        OUTCOMES.add(f"{kind} rejected")
    else:
        assert isinstance(settings, Settings)
        OUTCOMES.add(f"{kind} accepted")


@fuzz_settings(300)
@given(text=st.text(max_size=200))
def test_any_text(workdir: Path, text: str) -> None:
    path = workdir / "any.toml"
    path.write_bytes(text.encode("utf-8", "surrogatepass"))
    attempt("toml text", path)


@fuzz_settings(500)
@given(items=st.lists(st.tuples(st.sampled_from(KEYS), toml_values), max_size=5))
def test_known_keys_any_values(workdir: Path, items: list[tuple[str, str]]) -> None:
    # One table per key, so the same key twice is TOML's own error, not ours to avoid.
    lines = []
    for key, value in items:
        section, _, name = key.rpartition(".")
        lines.append(f"[{section}]\n{name} = {value}\n" if section else f"{name} = {value}\n")
    top = [line for line in lines if not line.startswith("[")]
    path = workdir / "keys.toml"
    path.write_text(
        "".join(top + [line for line in lines if line.startswith("[")]), "utf-8", "surrogatepass"
    )
    attempt("toml keys", path)


env_names = st.one_of(
    st.sampled_from(
        ["SESSIONFLOW_" + key.upper().replace(".", "__").replace('"', "") for key in KEYS]
        + ["KAFKA_BOOTSTRAP_SERVERS", "SESSIONFLOW_", "SESSIONFLOW___", "SESSIONFLOW_GOALS__A__B",
           "SESSIONFLOW_KAFKA", "SESSIONFLOW_CONFIG"]
    ),
    st.text(st.characters(min_codepoint=48, max_codepoint=95), max_size=12).map(lambda s: "SESSIONFLOW_" + s),
)  # fmt: skip


@fuzz_settings(500)
@given(environ=st.dictionaries(env_names, st.one_of(toml_values, st.text(max_size=30)), max_size=4))
def test_environment(workdir: Path, environ: dict[str, str]) -> None:
    environ = dict(environ)
    if "SESSIONFLOW_CONFIG" in environ:  # a config path from the environment: keep it ours
        environ["SESSIONFLOW_CONFIG"] = str(workdir / "missing" / "x.toml")
    attempt("environment", environ=environ)


CORPUS: dict[str, bytes] = {
    "deep arrays": b"a = " + b"[" * 10_000 + b"]" * 10_000,
    "deep inline tables": b"a = " + b"{b = " * 10_000 + b"1" + b"}" * 10_000,
    "10 MB string": b'data_dir = "' + b"x" * (10 << 20) + b'"',
    "lone surrogate escaped": b'sites = ["\\ud800"]',
    "nul escaped": b'data_dir = "data\\u0000/x"',
    "invalid utf-8": b'sites = ["sh\xffop"]',
    "bom": b'\xef\xbb\xbfsites = ["shop.example"]',
    "nan goal": b"[goals]\nsign_up = nan",
    "inf rate": b"[currency_rates]\nEUR = inf",
    "huge integer": b"[kafka]\npartitions = " + b"9" * 5000,
    "duplicate keys": b'timezone = "UTC"\ntimezone = "UTC"',
    "duplicate tables": b"[kafka]\n[kafka]",
    "traversal timezone": b'timezone = "../../../etc/passwd"',
    "confusable site in ga4": '[ga4."sh\u043ep.example"]\nmeasurement_id = "G-ABCDEF"'.encode(),
    "key is a value": b'kafka = 1\n',
    "json": b'{"sites": ["shop.example"]}',
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(CORPUS))
def test_corpus(workdir: Path, name: str) -> None:
    path = workdir / "corpus.toml"
    path.write_bytes(CORPUS[name])
    attempt("corpus", path)
    if name not in ("bom", "json"):  # a BOM is refused by tomllib too; fine either way
        with pytest.raises(ConfigError):
            load_settings(path, environ={})


@pytest.mark.parametrize("target", ["/dev/zero", "/etc", "/etc/passwd", "/proc/self/mem"])
def test_paths_that_are_not_config_files(target: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(target, environ={})
    assert_one_line(caught.value)
    with pytest.raises(ConfigError):
        load_settings(environ={"SESSIONFLOW_CONFIG": target})


def test_environment_corpus() -> None:
    for value in ("[" * 10_000 + "]" * 10_000, "9" * 5000, '["\\ud800"]', "\ud800", "a\x00b"):
        for name in ("SESSIONFLOW_SITES", "SESSIONFLOW_KAFKA__PARTITIONS", "SESSIONFLOW_DATA_DIR"):
            attempt("environment corpus", environ={name: value})
    with pytest.raises(ConfigError):
        load_settings(environ={"SESSIONFLOW_DATA_DIR": "data\x00"})


# -- secrets ---------------------------------------------------------------------------

SECRET = "k7Qp-not-to-be-shown-9Zr"
SECRET_NUMBER = "918273645127"  # an api_secret written without quotes: a TOML integer
# Where a config holds a secret: a TOML fragment (after the top-level keys), or the
# environment.
SECRET_IN_TOML = [
    f'[ga4."shop.example"]\napi_secret = "{SECRET}"\n',
    f'[ga4."shop.example"]\napi_secret = {SECRET_NUMBER}\n',
    f'[ga4."shop.example"]\napi_secert = "{SECRET}"\n',
    f'[ga4."shop.example"]\napi_secret = ["{SECRET}"]\n',
    f'[ga4."shop.example"]\napi_secret = "{SECRET}"\nmeasurement_id = "G-x"\n',
    f'[ga4."shop.example"]\napi_secret = "{SECRET}\\u0000"\n',
    f'[ga4."other.example"]\napi_secret = "{SECRET}"\n',  # a root-level error
    f'[ga4]\n"shop.example" = "{SECRET}"\n',
    f'[kafka]\nsasl_password = "{SECRET}"\n',  # refused in a file
    f'[kafka]\nsasl_pasword = "{SECRET}"\n',
    f'[kafka]\nbootstrap_servers = "admin:{SECRET}@kafka.example:9093"\n',
    f'[kafka]\nbootstrap_servers = "sasl_ssl://{SECRET}@kafka.example:9093"\n',
    f'[kafka]\nsecurity_protocol = "SASL_SSL"\nsasl_password_file = "{SECRET}"\n',
]
SECRET_IN_ENV = [
    {"KAFKA_BOOTSTRAP_SERVERS": f"user:{SECRET}@kafka.example:9092"},
    {"KAFKA_BOOTSTRAP_SERVERS": f"{SECRET}@kafka.example:9092,b:9092"},
    {"SESSIONFLOW_KAFKA__SASL_PASSWORD": SECRET},
    {"SESSIONFLOW_KAFKA__SASL_PASSWORD": SECRET_NUMBER, "SESSIONFLOW_KAFKA__PARTITIONS": "0"},
    {"SESSIONFLOW_KAFKA__SASL_PASSWORD": SECRET, "SESSIONFLOW_KAFKA__SECURITY_PROTOCOL": "TLS"},
    {"SESSIONFLOW_KAFKA__SASL_PASSWORD": f"[{SECRET}]", "KAFKA_BOOTSTRAP_SERVERS": "h:1"},
]
secret_configs = st.tuples(
    st.lists(st.tuples(st.sampled_from(KEYS), toml_values), max_size=3),
    st.sampled_from([*SECRET_IN_TOML, ""]),
    st.sampled_from([{}, *SECRET_IN_ENV]),
).filter(lambda config: bool(config[1] or config[2]))


def secret_config_file(path: Path, items: list[tuple[str, str]], fragment: str) -> None:
    # Top-level keys first, then one table per key, then the secret's fragment.
    top = [f"{key} = {value}\n" for key, value in items if "." not in key]
    tables = [
        f"[{key.rpartition('.')[0]}]\n{key.rpartition('.')[2]} = {value}\n"
        for key, value in items
        if "." in key
    ]
    path.write_text("".join(top + tables) + fragment, "utf-8", "surrogatepass")


def assert_no_secret(text: str) -> None:
    assert SECRET not in text and SECRET_NUMBER not in text, text[-2000:]


@fuzz_settings(400)
@given(config=secret_configs)
def test_no_secret_in_a_config_error(
    workdir: Path, config: tuple[list[tuple[str, str]], str, dict[str, str]]
) -> None:
    items, fragment, environ = config
    path = workdir / "secret.toml"
    secret_config_file(path, items, fragment)
    try:
        load_settings(path, environ=environ)
    except ConfigError as error:
        assert_one_line(error)
        assert_no_secret(str(error))
        OUTCOMES.add("secret rejected")
    else:
        OUTCOMES.add("secret accepted")


@fuzz_settings(30)
@given(config=secret_configs)
def test_no_secret_from_the_cli(
    workdir: Path, config: tuple[list[tuple[str, str]], str, dict[str, str]]
) -> None:
    """The same configs through the real CLI, --verbose: a command that reads its config
    and touches neither Kafka nor Prefect (`prefect status` reads a pid file)."""
    items, fragment, environ = config
    path = workdir / "cli-secret.toml"
    secret_config_file(path, items, fragment)
    env = cli_env(SESSIONFLOW_DATA_DIR=str(workdir / "cli-data"), **environ)
    result = subprocess.run(
        [sys.executable, "-m", "pipeline.cli", "--verbose", "--config", str(path),
         "prefect", "status"],
        env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert_no_secret(result.stdout + result.stderr)
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    if result.returncode not in (0, 3):  # 3: the local Prefect server is not running
        assert len(errors) == 1, result.stderr[-2000:]
    OUTCOMES.add(f"cli exit {result.returncode}")
