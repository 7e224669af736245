"""The local Apache Kafka broker (KRaft, one combined broker + controller).

Steps, each small and named:
  resolve_jars   Maven copies Kafka's jars from Maven Central into a cache outside git
  format_storage KRaft storage is formatted once per state directory
  start          java -cp '<jars>/*' kafka.Kafka, then wait until it answers Kafka requests
  stop           SIGTERM, a bounded wait, then SIGKILL
  status         running / not answering / stopped / died without a clean stop

The configuration files live in infra/kafka/; the broker's state (KRaft log dirs, pid file,
logs) lives under <data_dir>/kafka/.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import logging
import os
import re
import shutil
import string
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from enum import Enum
from functools import partial
from pathlib import Path

from kafka import KafkaAdminClient
from pydantic import SecretStr

from pipeline.config import KafkaSettings, Settings
from pipeline.daemons import (
    LOG_TAIL_LINES,
    log_tail,
    port_is_free,
    read_pid,
    runs_command,
    terminate,
)
from pipeline.errors import BrokerError
from pipeline.kafka.client import client_options

log = logging.getLogger(__name__)


def _infra_dir() -> Path:
    """infra/kafka/ (the pom, the broker's property templates): the top-level directory of
    the checkout when installed editable, else package data `pipeline.kafka.infra` (a wheel
    installs it beside this module)."""
    checkout = Path(__file__).resolve().parents[2] / "infra" / "kafka"
    return checkout if checkout.is_dir() else Path(__file__).resolve().parent / "infra"


INFRA_DIR = _infra_dir()
MIN_JAVA_MAJOR = 17  # Kafka 4.x brokers need Java 17


class BrokerState(Enum):
    RUNNING = "running"
    NOT_ANSWERING = "not answering"  # process alive, Kafka requests fail (starting or hung)
    STOPPED = "stopped"
    DIED = "died"  # pid file left behind: killed or crashed, never stopped cleanly


@dataclass(frozen=True)
class BrokerStatus:
    state: BrokerState
    pid: int | None
    message: str


@dataclass(frozen=True)
class StartResult:
    pid: int
    seconds: float
    already_running: bool


def kafka_version(infra_dir: Path = INFRA_DIR) -> str:
    """The Kafka version pinned in infra/kafka/pom.xml (the one place it is written)."""
    match = re.search(
        r"<kafka.version>([^<]+)</kafka.version>", (infra_dir / "pom.xml").read_text()
    )
    if not match:
        raise BrokerError(f"{infra_dir / 'pom.xml'} does not declare <kafka.version>")
    return match.group(1)


@dataclass(frozen=True)
class ListenerSecurity:
    """A SASL_SSL client listener for the local broker, for tests of a secured cluster:
    a PEM key store (the broker's private key and certificate), the CA that signed it,
    and SCRAM users (name, password) created when the storage is formatted; the broker
    itself logs in as the first."""

    keystore_pem: Path
    ca_pem: Path
    users: tuple[tuple[str, str], ...]
    mechanism: str = "SCRAM-SHA-256"


def answers_kafka(kafka: KafkaSettings, timeout_s: float = 2.0) -> bool:
    """True when the cluster of `kafka` answers a DescribeCluster request."""
    with _quiet_kafka_logs():
        try:
            admin = KafkaAdminClient(
                **client_options(kafka),
                client_id="sessionflow-probe",
                bootstrap_timeout_ms=int(timeout_s * 1000),
                request_timeout_ms=int(timeout_s * 1000),
            )
        except Exception:
            return False
        try:
            admin.describe_cluster()
            return True
        except Exception:
            return False
        finally:
            admin.close()


class LocalBroker:
    def __init__(
        self,
        state_dir: Path,
        *,
        host: str = "127.0.0.1",
        port: int = 9092,
        controller_port: int = 9093,
        heap_mb: int = 512,
        jar_cache_root: Path | None = None,
        infra_dir: Path = INFRA_DIR,
        security: ListenerSecurity | None = None,
    ) -> None:
        self.state_dir = state_dir.resolve()
        self.host = host
        self.port = port
        self.controller_port = controller_port
        self.heap_mb = heap_mb
        self.jar_cache_root = (jar_cache_root or _default_jar_cache_root()).resolve()
        self.infra_dir = infra_dir
        self.security = security
        self._process: subprocess.Popen[bytes] | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> LocalBroker:
        kafka = settings.kafka
        return cls(
            settings.local_broker_dir,
            host=kafka.local_host,
            port=kafka.local_port,
            controller_port=kafka.local_controller_port,
            heap_mb=kafka.local_heap_mb,
            jar_cache_root=kafka.jar_cache_dir,
        )

    # -- paths ---------------------------------------------------------------------------

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def client_settings(self) -> KafkaSettings:
        """How a client reaches this broker (as the broker's first SCRAM user when the
        listener is SASL_SSL)."""
        if self.security is None:
            return KafkaSettings(bootstrap_servers=self.bootstrap)
        user, password = self.security.users[0]
        return KafkaSettings(
            bootstrap_servers=self.bootstrap,
            security_protocol="SASL_SSL",
            sasl_mechanism=self.security.mechanism,
            sasl_username=user,
            sasl_password=SecretStr(password),
            ssl_cafile=self.security.ca_pem,
        )

    @property
    def pid_file(self) -> Path:
        return self.state_dir / "broker.pid"

    @property
    def log_dir(self) -> Path:
        return self.state_dir / "logs"

    @property
    def kraft_dir(self) -> Path:
        return self.state_dir / "kraft"

    @property
    def server_properties(self) -> Path:
        return self.state_dir / "server.properties"

    # -- steps ---------------------------------------------------------------------------

    def resolve_jars(self) -> Path:
        """Kafka's jars, resolved by Maven once and cached under a hash of the pom."""
        pom = self.infra_dir / "pom.xml"
        digest = hashlib.sha256(pom.read_bytes()).hexdigest()[:12]
        target = self.jar_cache_root / f"{kafka_version(self.infra_dir)}-{digest}"
        jars = target / "lib"
        if (target / ".complete").exists():
            return jars
        mvn = shutil.which("mvn")
        if mvn is None:
            raise BrokerError(
                "Maven (mvn) not found on PATH: it resolves Kafka's jars from Maven Central "
                "(install it, e.g. `apt-get install maven`)"
            )
        staging = target.with_name(f"{target.name}.{os.getpid()}.tmp")
        shutil.rmtree(staging, ignore_errors=True)
        log.info(
            "resolving Kafka %s jars with Maven into %s", kafka_version(self.infra_dir), target
        )
        result = subprocess.run(
            [mvn, "-B", "-q", "-f", str(pom), "dependency:copy-dependencies",
             f"-DoutputDirectory={staging / 'lib'}"],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        if result.returncode != 0:
            shutil.rmtree(staging, ignore_errors=True)
            last = _last_nonblank(result.stdout + result.stderr)
            raise BrokerError(
                f"Maven could not resolve Kafka's jars (exit {result.returncode}): {last}"
            )
        (staging / ".complete").touch()
        shutil.rmtree(target, ignore_errors=True)
        staging.rename(target)
        return jars

    def format_storage(self, java: str, jars: Path) -> None:
        """Format the KRaft log directory, once: a formatted directory is left alone."""
        if (self.kraft_dir / "meta.properties").exists():
            return
        self.kraft_dir.mkdir(parents=True, exist_ok=True)
        result = subprocess.run(
            [java, "-cp", f"{jars}/*", *self._log_options(), "kafka.tools.StorageTool", "format",
             "-t", _new_cluster_id(), "-c", str(self.server_properties),
             *self._scram_users()],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        if result.returncode != 0:
            raise BrokerError(
                f"formatting KRaft storage in {self.kraft_dir} failed: "
                f"{_last_nonblank(result.stdout + result.stderr)}"
            )

    def start(self, timeout_s: float = 90.0) -> StartResult:
        current = self.status()
        if current.state in (BrokerState.RUNNING, BrokerState.NOT_ANSWERING):
            assert current.pid is not None
            return StartResult(pid=current.pid, seconds=0.0, already_running=True)
        if current.state is BrokerState.DIED:
            log.warning("%s; starting a new one", current.message)
            self.pid_file.unlink(missing_ok=True)

        java = _find_java()
        for port in (self.port, self.controller_port):
            if not port_is_free(self.host, port):
                raise BrokerError(
                    f"port {self.host}:{port} is already in use by another process; stop it or "
                    "set kafka.local_port / kafka.local_controller_port"
                )
        jars = self.resolve_jars()
        self._write_server_properties()
        self.format_storage(java, jars)

        self.log_dir.mkdir(parents=True, exist_ok=True)
        began = time.monotonic()
        with self._stdout_file().open("wb") as out:  # this start's output only
            self._process = subprocess.Popen(
                [java, f"-Xms{self.heap_mb}m", f"-Xmx{self.heap_mb}m", "-XX:+UseG1GC",
                 "-Djava.awt.headless=true", *self._log_options(),
                 "-cp", f"{jars}/*", "kafka.Kafka", str(self.server_properties)],
                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True,  # survives the shell that started it
            )  # fmt: skip
        pid = self._process.pid
        self.pid_file.write_text(f"{pid}\n")

        deadline = began + timeout_s
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                self.pid_file.unlink(missing_ok=True)
                raise BrokerError(
                    f"Kafka broker failed to start (exit code {self._process.returncode}); "
                    f"last lines of {self._log_file()}:\n{self.log_tail()}"
                )
            if answers_kafka(self.client_settings, timeout_s=1.0):
                return StartResult(pid=pid, seconds=time.monotonic() - began, already_running=False)
            time.sleep(0.2)
        self._terminate(pid, grace_s=5.0)
        raise BrokerError(
            f"Kafka broker did not answer on {self.bootstrap} within {timeout_s:.0f}s; "
            f"last lines of {self._log_file()}:\n{self.log_tail()}"
        )

    def stop(self, timeout_s: float = 30.0) -> str:
        current = self.status()
        if current.state is BrokerState.STOPPED:
            return "broker is not running; nothing to stop"
        if current.state is BrokerState.DIED:
            self.pid_file.unlink(missing_ok=True)
            return f"{current.message}; removed its stale pid file"
        assert current.pid is not None
        forced = self._terminate(current.pid, grace_s=timeout_s)
        self.pid_file.unlink(missing_ok=True)
        how = "killed after it ignored SIGTERM" if forced else "stopped cleanly"
        return f"broker (pid {current.pid}) {how}"

    def status(self) -> BrokerStatus:
        pid = read_pid(self.pid_file)
        if pid is None:
            return BrokerStatus(BrokerState.STOPPED, None, f"broker is stopped ({self.bootstrap})")
        if not self._is_our_broker(pid):
            return BrokerStatus(
                BrokerState.DIED,
                pid,
                f"broker is not running: pid {pid} exited without a clean stop (killed or crashed)",
            )
        if answers_kafka(self.client_settings):
            return BrokerStatus(
                BrokerState.RUNNING, pid, f"broker is running (pid {pid}) on {self.bootstrap}"
            )
        return BrokerStatus(
            BrokerState.NOT_ANSWERING,
            pid,
            f"broker process {pid} is alive but does not answer on {self.bootstrap}",
        )

    def log_tail(self, lines: int = LOG_TAIL_LINES) -> str:
        return log_tail(self._log_file(), lines)

    # -- helpers -------------------------------------------------------------------------

    def _log_options(self) -> list[str]:
        return [
            f"-Dkafka.logs.dir={self.log_dir}",
            f"-Dlog4j2.configurationFile={self.infra_dir / 'log4j2.properties'}",
        ]

    def _stdout_file(self) -> Path:
        return self.log_dir / "broker.out"

    def _log_file(self) -> Path:
        # The JVM reports what stops it before logging starts (bad options, missing
        # classes) on stdout; once log4j runs, server.log has the story.
        stdout = self._stdout_file()
        if stdout.exists() and stdout.stat().st_size > 0:
            return stdout
        return self.log_dir / "server.log"

    def _write_server_properties(self) -> None:
        template = string.Template((self.infra_dir / "server.properties.template").read_text())
        self.state_dir.mkdir(parents=True, exist_ok=True)
        text = template.substitute(
            protocol="PLAINTEXT" if self.security is None else "SASL_SSL",
            host=self.host,
            port=self.port,
            controller_port=self.controller_port,
            log_dirs=self.kraft_dir,
        )
        if self.security is not None:
            listener = (self.infra_dir / "sasl_ssl.properties.template").read_text()
            user, password = self.security.users[0]
            text += string.Template(listener).substitute(
                mechanism=self.security.mechanism,
                mechanism_lower=self.security.mechanism.lower(),
                user=user,
                password=password,
                keystore=self.security.keystore_pem,
                truststore=self.security.ca_pem,
            )
        # Owner-only: with a secured listener it holds the broker's own password.
        descriptor = os.open(self.server_properties, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            handle.write(text)

    def _scram_users(self) -> list[str]:
        # KRaft stores SCRAM credentials in its metadata log, written at format time.
        if self.security is None:
            return []
        mechanism = self.security.mechanism
        return [
            arg
            for name, password in self.security.users
            for arg in ("--add-scram", f"{mechanism}=[name={name},password={password}]")
        ]

    def _is_our_broker(self, pid: int) -> bool:
        """Alive, not a zombie, and running kafka.Kafka on our own server.properties."""
        return runs_command(pid, b"kafka.Kafka", str(self.server_properties).encode())

    def _terminate(self, pid: int, grace_s: float) -> bool:
        return terminate(pid, grace_s, alive=partial(self._is_our_broker, pid), reap=self._reap)

    def _reap(self) -> None:
        # A broker started by this very process must be waited for, or it stays a zombie.
        if self._process is not None:
            self._process.poll()


def _default_jar_cache_root() -> Path:
    cache_home = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache_home) / "sessionflow" / "kafka"


def _find_java() -> str:
    java = shutil.which("java")
    if java is None:
        raise BrokerError(
            f"Java not found on PATH: the Kafka broker needs Java {MIN_JAVA_MAJOR}+ "
            "(install it, e.g. `apt-get install openjdk-17-jre-headless`)"
        )
    result = subprocess.run([java, "-version"], capture_output=True, text=True, check=False)
    match = re.search(r'version "(\d+)(?:\.(\d+))?', result.stderr + result.stdout)
    if match:
        major = int(match.group(1))
        if major == 1 and match.group(2):  # "1.8.0" style
            major = int(match.group(2))
        if major < MIN_JAVA_MAJOR:
            raise BrokerError(
                f"Java {MIN_JAVA_MAJOR}+ is needed for Kafka, found Java {major} at {java}"
            )
    return java


def _new_cluster_id() -> str:
    # Kafka's Uuid.randomUuid(): URL-safe base64 of 16 random bytes, never starting with "-".
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
        if not cluster_id.startswith("-"):
            return cluster_id


def _last_nonblank(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else "(no output)"


@contextlib.contextmanager
def _quiet_kafka_logs() -> Iterator[None]:
    # kafka-python logs every refused connection; a probe expects refusals.
    kafka_logger = logging.getLogger("kafka")
    previous = kafka_logger.level
    kafka_logger.setLevel(logging.CRITICAL + 1)
    try:
        yield
    finally:
        kafka_logger.setLevel(previous)
