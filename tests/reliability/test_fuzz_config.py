"""Fuzzing the config loader: TOML text and environment variables. Every input gives
Settings or a ConfigError of one line; never another exception."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipeline.config import Settings, load_settings
from pipeline.errors import ConfigError
from tests.reliability.support import Outcomes, assert_one_line, fuzz_settings

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
