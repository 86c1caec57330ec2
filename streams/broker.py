"""A local, single-node Apache Kafka for development and tests (``lifecycle kafka ...``).

The engine needs a real broker, and many machines that run it have Java but no
Docker. So Kafka is fetched once as plain jars from Maven Central (with ``mvn``
and the small pom next to this module), formatted as one KRaft node that is
both broker and controller, and run as a detached ``java`` process that
outlives the command which started it. Each broker lives in its own home
directory (config, data, log, pid file), so a developer's broker and the test
suite's brokers never share state; the jars are shared by all of them.

Nothing here imports Faust: the CLI, the test fixtures and ``lifecycle dev``
use it before any worker exists; whether the broker is up is asked with an
aiokafka client from ``streams.kafka``, like every Kafka client of the engine.
POSIX only (sessions, signals, ``flock``).
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import logging
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Final

from streams.kafka import Connection, cluster_ready_blocking
from streams.settings import DEFAULT_HOME

if TYPE_CHECKING:
    from streams.local_tls import TlsFiles
    from streams.settings import Settings

__all__ = [
    "DEFAULT_JARS_DIR",
    "KAFKA_VERSION",
    "BrokerError",
    "BrokerStatus",
    "LocalBroker",
    "SaslUser",
    "broker_ready",
    "find_free_port",
    "port_free",
]

logger = logging.getLogger(__name__)

KAFKA_VERSION: Final = "3.9.1"
"""The one place the launcher's Kafka version is chosen (passed to mvn as -Dkafka.version)."""

DEFAULT_JARS_DIR: Final = DEFAULT_HOME / "kafka" / f"jars-{KAFKA_VERSION}"
"""Shared by every LocalBroker, whatever its home, so test brokers never download again."""

HOST: Final = "127.0.0.1"
"""Loopback only: the local broker is for development, even with SASL and TLS (no ACLs)."""

JVM_OPTIONS: Final = ("-Xms128m", "-Xmx512m", "-XX:+UseG1GC", "-Djava.awt.headless=true")

INSTALL_HINT: Final = (
    "Install them, e.g. on Debian/Ubuntu: sudo apt-get install openjdk-17-jre-headless maven "
    "(macOS: brew install openjdk@17 maven). "
    "Or skip the local broker and point the engine at an existing Kafka: "
    "LIFECYCLE_BROKER=host:port."
)

_COMPLETE_MARKER: Final = ".complete"
_LOG_TAIL_LINES: Final = 40
_MVN_TIMEOUT: Final = 900.0
_FORMAT_TIMEOUT: Final = 120.0
_KILL_GRACE: Final = 10.0
_POLL_INTERVAL: Final = 0.1

_children: dict[int, subprocess.Popen[bytes]] = {}
"""Brokers this Python process spawned and has not yet seen exit.

Holding them means an exited broker is reaped (never a zombie that still looks
alive) and a running one is never garbage-collected mid-run (which warns),
whichever LocalBroker instance later stops it: the CLI and the tests create a
fresh instance per command.
"""


class BrokerError(Exception):
    """The local broker could not be fetched, started or stopped; the message says what to do."""


_SAFE_USERNAME = re.compile(r"[A-Za-z0-9._-]{1,64}")


@dataclass(frozen=True)
class SaslUser:
    """The one SASL/PLAIN user a local broker accepts (it also logs in to itself with it).

    Both go into a JAAS line in server.properties, so characters that would end
    a quoted value or a property key are refused rather than escaped.
    """

    username: str
    password: str = field(repr=False)

    def __post_init__(self) -> None:
        if not _SAFE_USERNAME.fullmatch(self.username):
            msg = "SASL user names for the local broker are 1-64 of A-Z a-z 0-9 . _ -"
            raise BrokerError(msg)
        printable = self.password.isascii() and self.password.isprintable()
        if not self.password or not printable or any(c in self.password for c in '"\\;'):
            msg = (
                "the local broker's SASL password must be printable ASCII without "
                "double quotes, backslashes or ';' (server.properties holds it)"
            )
            raise BrokerError(msg)

    def jaas(self) -> str:
        return (
            "org.apache.kafka.common.security.plain.PlainLoginModule required "
            f'username="{self.username}" password="{self.password}" '
            f'user_{self.username}="{self.password}";'
        )


@dataclass(frozen=True)
class BrokerStatus:
    """What ``status`` and ``start`` report about one broker home.

    ``start_seconds`` and ``formatted`` describe the ``start()`` call that
    returned this value: how long it took to bring the broker up (jar fetch,
    format and JVM start included) and whether it formatted fresh storage.
    Both stay at their defaults when the broker was already running.
    """

    running: bool
    pid: int | None
    bootstrap: str
    port: int
    home: Path
    log_path: Path
    data_dir: Path
    jars_dir: Path
    kafka_version: str = KAFKA_VERSION
    start_seconds: float | None = None
    formatted: bool = False
    security_protocol: str = "PLAINTEXT"
    """``SSL`` with TLS, ``SASL_PLAINTEXT`` with SASL/PLAIN logins, ``SASL_SSL`` with both."""
    ssl_cafile: Path | None = None
    """With TLS: the CA certificate clients trust (``LIFECYCLE_BROKER_SSL_CAFILE``)."""

    def to_dict(self) -> dict[str, object]:
        """JSON-ready form for ``lifecycle kafka status --json`` and other programs."""
        return {
            "running": self.running,
            "pid": self.pid,
            "bootstrap": self.bootstrap,
            "port": self.port,
            "home": str(self.home),
            "log_path": str(self.log_path),
            "data_dir": str(self.data_dir),
            "jars_dir": str(self.jars_dir),
            "kafka_version": self.kafka_version,
            "start_seconds": self.start_seconds,
            "formatted": self.formatted,
            "security_protocol": self.security_protocol,
            "ssl_cafile": None if self.ssl_cafile is None else str(self.ssl_cafile),
        }


class LocalBroker:
    """One single-node KRaft broker rooted at ``home``.

    ``home`` holds ``server.properties``, ``data/``, ``broker.log`` and
    ``broker.pid``. The pid file plus the process's command line (which names
    this home's ``server.properties``) is how a later command, in another
    process, finds the broker again and makes sure it is this one.

    With ``sasl``, the client listener speaks SASL_PLAINTEXT and accepts only
    that user (mechanism PLAIN); with ``tls`` it speaks TLS (SSL, or SASL_SSL
    with ``sasl``), its certificate signed by a throwaway CA kept in ``tls/``
    (``streams.local_tls``). The controller listener stays PLAINTEXT on
    loopback. The config is rewritten on every start, so the listener follows
    the latest ``start``; the file holding the passwords is readable by its owner only.
    """

    def __init__(
        self,
        port: int = 9092,
        home: Path = DEFAULT_HOME / "kafka",
        *,
        controller_port: int | None = None,
        jars_dir: Path | None = None,
        sasl: SaslUser | None = None,
        tls: bool = False,
        initial_rebalance_delay_ms: int = 0,
    ) -> None:
        """``initial_rebalance_delay_ms``: how long a new consumer group waits for more
        members before its first assignment (0: at once, what tests want; the
        benchmark starts two workers together and wants them in one generation)."""
        self.port = port
        self.sasl = sasl
        self.tls = tls
        self.initial_rebalance_delay_ms = initial_rebalance_delay_ms
        self.controller_port = port + 1 if controller_port is None else controller_port
        self.home = Path(home).expanduser().absolute()
        self.jars_dir = (
            DEFAULT_JARS_DIR if jars_dir is None else Path(jars_dir).expanduser()
        ).absolute()

    @classmethod
    def from_settings(cls, settings: Settings) -> LocalBroker:
        """The broker configured by ``LIFECYCLE_KAFKA_PORT`` and ``LIFECYCLE_KAFKA_DIR``.

        When the engine is set to log in with SASL (PLAINTEXT or SSL) and PLAIN, the
        broker accepts exactly that user, so one set of ``LIFECYCLE_BROKER_SASL_*``
        settings serves both sides (``lifecycle dev`` included); when the engine is
        set to encrypt (SSL or SASL_SSL), the broker listens with TLS.
        """
        sasl = None
        password = settings.broker_sasl_password
        if (
            settings.broker_security_protocol.startswith("SASL_")
            and settings.broker_sasl_mechanism == "PLAIN"
            and settings.broker_sasl_username
            and password is not None
        ):
            sasl = SaslUser(settings.broker_sasl_username, password.get_secret_value())
        return cls(
            port=settings.kafka_port, home=settings.kafka_dir, sasl=sasl, tls=settings.broker_tls
        )

    @property
    def security_protocol(self) -> str:
        transport = "SSL" if self.tls else "PLAINTEXT"
        return transport if self.sasl is None else f"SASL_{transport}"

    @property
    def tls_files(self) -> TlsFiles:
        """Imported late: ``cryptography`` would slow every ``lifecycle`` command down."""
        from streams.local_tls import TlsFiles

        return TlsFiles(self.home / "tls")

    def client_tls(self) -> ssl.SSLContext | None:
        """What a client needs to trust this broker: a context with its CA (None without TLS
        or before the first TLS start made the CA)."""
        if not self.tls or not self.tls_files.ca.is_file():
            return None
        return ssl.create_default_context(cafile=str(self.tls_files.ca))

    def __repr__(self) -> str:
        return (
            f"LocalBroker(port={self.port}, home={str(self.home)!r}, "
            f"security_protocol={self.security_protocol!r})"
        )

    @property
    def bootstrap(self) -> str:
        return f"{HOST}:{self.port}"

    @property
    def data_dir(self) -> Path:
        return self.home / "data"

    @property
    def log_path(self) -> Path:
        return self.home / "broker.log"

    @property
    def pid_path(self) -> Path:
        return self.home / "broker.pid"

    @property
    def properties_path(self) -> Path:
        return self.home / "server.properties"

    @property
    def log4j_path(self) -> Path:
        return self.home / "log4j.properties"

    # -- jars ------------------------------------------------------------------

    def jars_ready(self) -> bool:
        """True once a download finished: the marker is written last, so a broken one retries."""
        return (self.jars_dir / _COMPLETE_MARKER).is_file()

    def ensure_jars(self) -> Path:
        """Fetch Kafka's jars into ``jars_dir`` once; later calls return at once.

        The download goes to a temporary directory that is renamed into place
        only when complete, under a file lock, so parallel test sessions and an
        interrupted first run never leave a half-filled classpath behind.
        """
        if self.jars_ready():
            return self.jars_dir
        mvn = _require_tools(java=False, mvn=True)["mvn"]
        parent = self.jars_dir.parent
        parent.mkdir(parents=True, exist_ok=True)
        with _locked(parent / f".{self.jars_dir.name}.lock"):
            if self.jars_ready():
                return self.jars_dir
            started = time.monotonic()
            workdir = Path(tempfile.mkdtemp(prefix=f".{self.jars_dir.name}-", dir=parent))
            try:
                staged = self._download_jars(mvn, workdir)
                if self.jars_dir.exists():
                    shutil.rmtree(self.jars_dir)
                staged.rename(self.jars_dir)
            finally:
                shutil.rmtree(workdir, ignore_errors=True)
        logger.info(
            "fetched Kafka %s jars into %s in %.1f s",
            KAFKA_VERSION,
            self.jars_dir,
            time.monotonic() - started,
        )
        return self.jars_dir

    def _download_jars(self, mvn: str, workdir: Path) -> Path:
        pom = workdir / "pom.xml"
        pom.write_text(_resource_text("pom.xml"), encoding="utf-8")
        staged = workdir / "jars"
        command = [
            mvn,
            "-q",
            "-B",
            "-Dstyle.color=never",
            "-f",
            str(pom),
            "dependency:copy-dependencies",
            f"-DoutputDirectory={staged}",
            "-DincludeScope=runtime",
            f"-Dkafka.version={KAFKA_VERSION}",
        ]
        try:
            done = subprocess.run(
                command,
                cwd=workdir,
                capture_output=True,
                text=True,
                timeout=_MVN_TIMEOUT,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            msg = (
                f"Maven did not finish fetching Kafka {KAFKA_VERSION} within {_MVN_TIMEOUT:.0f} s. "
                "It needs access to Maven Central (or a mirror in ~/.m2/settings.xml). "
                "Or point the engine at an existing Kafka: LIFECYCLE_BROKER=host:port."
            )
            raise BrokerError(msg) from exc
        main_jar = staged / f"kafka_2.13-{KAFKA_VERSION}.jar"
        if done.returncode != 0 or not main_jar.is_file():
            output = _last_lines(done.stdout + done.stderr, _LOG_TAIL_LINES)
            msg = (
                f"Maven could not fetch Kafka {KAFKA_VERSION} (exit code {done.returncode}). "
                "It needs access to Maven Central (or a mirror in ~/.m2/settings.xml). "
                "Or point the engine at an existing Kafka: LIFECYCLE_BROKER=host:port.\n"
                f"mvn output:\n{output}"
            )
            raise BrokerError(msg)
        stamp = datetime.now(UTC).isoformat(timespec="seconds")
        count = len(list(staged.glob("*.jar")))
        (staged / _COMPLETE_MARKER).write_text(
            f"kafka {KAFKA_VERSION}, {count} jars, fetched {stamp}\n", encoding="utf-8"
        )
        return staged

    # -- lifecycle -------------------------------------------------------------

    def status(self) -> BrokerStatus:
        """Report without changing anything; a stale pid file simply reads as stopped."""
        pid = self._running_pid()
        listener = self._configured_listener() if pid is not None else None
        protocol, port = (self.security_protocol, self.port) if listener is None else listener
        encrypted = protocol in ("SSL", "SASL_SSL")
        return BrokerStatus(
            running=pid is not None,
            pid=pid,
            bootstrap=f"{HOST}:{port}",
            port=port,
            home=self.home,
            log_path=self.log_path,
            data_dir=self.data_dir,
            jars_dir=self.jars_dir,
            security_protocol=protocol,
            ssl_cafile=self.tls_files.ca if encrypted else None,
        )

    def start(self, timeout: float = 90) -> BrokerStatus:
        """Start the broker and return once it answers Kafka requests.

        Idempotent: a broker already running from this home is returned as is
        (on the port it was started with). Storage is formatted only on the
        first start, so topics and offsets survive a restart. ``timeout``
        bounds the wait for the broker to answer, not the one-time jar fetch.
        """
        started = time.monotonic()
        self.home.mkdir(parents=True, exist_ok=True)
        with _locked(self.home / "launcher.lock"):
            current = self.status()
            if current.running:
                if current.security_protocol != self.security_protocol:
                    msg = (
                        f"Kafka already runs at {current.bootstrap} (pid {current.pid}) with "
                        f"{current.security_protocol}, not {self.security_protocol}: stop it "
                        "first (lifecycle kafka stop), then start it again."
                    )
                    raise BrokerError(msg)
                logger.info("Kafka already running at %s (pid %s)", current.bootstrap, current.pid)
                return current
            self.pid_path.unlink(missing_ok=True)
            self._check_ports_free()
            java = _require_tools(java=True, mvn=not self.jars_ready())["java"]
            self.ensure_jars()
            self.write_config()
            formatted = False
            if not (self.data_dir / "meta.properties").is_file():
                self._format_storage(java)
                formatted = True
            process, log_offset = self._spawn(java)
            _children[process.pid] = process
            self.pid_path.write_text(f"{process.pid}\n", encoding="utf-8")
            try:
                self._wait_until_ready(process, log_offset, timeout)
            except BaseException:
                _terminate(process)
                _children.pop(process.pid, None)
                self.pid_path.unlink(missing_ok=True)
                raise
        elapsed = time.monotonic() - started
        logger.info(
            "Kafka %s up at %s (pid %d) in %.2f s%s",
            KAFKA_VERSION,
            self.bootstrap,
            process.pid,
            elapsed,
            ", storage formatted" if formatted else "",
        )
        return BrokerStatus(
            running=True,
            pid=process.pid,
            bootstrap=self.bootstrap,
            port=self.port,
            home=self.home,
            log_path=self.log_path,
            data_dir=self.data_dir,
            jars_dir=self.jars_dir,
            start_seconds=round(elapsed, 3),
            formatted=formatted,
            security_protocol=self.security_protocol,
            ssl_cafile=self.tls_files.ca if self.tls else None,
        )

    def stop(self, timeout: float = 30) -> bool:
        """Stop the broker of this home: SIGTERM (clean shutdown), SIGKILL after ``timeout``.

        Returns whether a running broker was stopped. A stale pid file is
        removed either way, so the next ``start`` begins clean.
        """
        if not self.home.is_dir():
            return False
        with _locked(self.home / "launcher.lock"):
            pid = self._running_pid()
            if pid is None:
                self.pid_path.unlink(missing_ok=True)
                return False
            began = time.monotonic()
            _signal(pid, signal.SIGTERM)
            if not self._wait_exit(pid, timeout):
                logger.warning(
                    "Kafka (pid %d) ignored SIGTERM for %.0f s; killing it", pid, timeout
                )
                _signal(pid, signal.SIGKILL)
                if not self._wait_exit(pid, _KILL_GRACE):
                    msg = f"Kafka (pid {pid}) survived SIGKILL; check it with: ps -p {pid}"
                    raise BrokerError(msg)
            self.pid_path.unlink(missing_ok=True)
        logger.info("Kafka (pid %d) stopped in %.2f s", pid, time.monotonic() - began)
        return True

    # -- internals -------------------------------------------------------------

    def _running_pid(self) -> int | None:
        try:
            pid = int(self.pid_path.read_text(encoding="utf-8").strip())
        except (FileNotFoundError, ValueError):
            return None
        if pid <= 0 or not _alive(pid):
            return None
        cmdline = _cmdline(pid)
        if cmdline is not None and (
            "kafka.Kafka" not in cmdline or str(self.properties_path) not in cmdline
        ):
            return None  # the pid was reused by an unrelated process
        return pid

    def _configured_listener(self) -> tuple[str, int] | None:
        """Protocol and port of the client listener in this home's server.properties,
        i.e. of the running broker (``advertised.listeners=SASL_PLAINTEXT://host:port``)."""
        try:
            text = self.properties_path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        for line in text.splitlines():
            key, _, value = line.partition("=")
            if key.strip() == "advertised.listeners":
                protocol, _, address = value.strip().partition("://")
                with contextlib.suppress(ValueError):
                    return protocol, int(address.rpartition(":")[2])
        return None

    def _check_ports_free(self) -> None:
        for port, role in ((self.port, "client"), (self.controller_port, "controller")):
            if port_free(port):
                continue
            if broker_ready(f"{HOST}:{port}", timeout=1.0, sasl=self.sasl, tls=self.client_tls()):
                msg = (
                    f"Port {port} ({role} port) is already used by another Kafka broker, not the "
                    f"one in {self.home}. To use that broker, set LIFECYCLE_BROKER={HOST}:{port}; "
                    "to start a local one beside it, pick another port: "
                    "lifecycle kafka start --port PORT (or LIFECYCLE_KAFKA_PORT)."
                )
            else:
                msg = (
                    f"Port {port} ({role} port) on {HOST} is already in use by another program. "
                    "Pick another port: lifecycle kafka start --port PORT (or "
                    "LIFECYCLE_KAFKA_PORT; the controller uses PORT+1), or stop whatever listens "
                    "there."
                )
            raise BrokerError(msg)

    def write_config(self) -> None:
        """Rewrite server.properties on every start, so a changed port takes effect."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        client = self.security_protocol
        lines = [
            "# Written by lifecycle (streams/broker.py) on every start; edits are overwritten.",
            "process.roles=broker,controller",
            "node.id=1",
            f"controller.quorum.voters=1@{HOST}:{self.controller_port}",
            f"listeners={client}://{HOST}:{self.port},CONTROLLER://{HOST}:{self.controller_port}",
            f"advertised.listeners={client}://{HOST}:{self.port}",
            "controller.listener.names=CONTROLLER",
            f"listener.security.protocol.map={client}:{client},CONTROLLER:PLAINTEXT",
            f"inter.broker.listener.name={client}",
        ]
        if self.sasl is not None:
            lines += [
                "sasl.enabled.mechanisms=PLAIN",
                "sasl.mechanism.inter.broker.protocol=PLAIN",
                f"listener.name.{client.lower()}.plain.sasl.jaas.config={self.sasl.jaas()}",
            ]
        if self.tls:
            lines += self._tls_config()
        lines += [
            f"log.dirs={self.data_dir}",
            "num.partitions=1",
            "auto.create.topics.enable=true",
            "offsets.topic.replication.factor=1",
            "transaction.state.log.replication.factor=1",
            "transaction.state.log.min.isr=1",
            f"group.initial.rebalance.delay.ms={self.initial_rebalance_delay_ms}",
            "",
        ]
        _write_private(self.properties_path, "\n".join(lines))
        self.log4j_path.write_text(_resource_text("log4j.properties"), encoding="utf-8")

    def _tls_config(self) -> list[str]:
        """The keystore (broker key and chain) and the truststore the broker needs to
        verify itself: the inter-broker connection goes through this listener too."""
        from streams.local_tls import ensure_certificates, write_keystore

        files = self.tls_files
        if ensure_certificates(files):
            logger.info("made a throwaway CA for the local broker: %s", files.ca)
        password = write_keystore(files)
        return [
            "ssl.keystore.type=PKCS12",
            f"ssl.keystore.location={files.keystore}",
            f"ssl.keystore.password={password}",
            f"ssl.key.password={password}",
            "ssl.truststore.type=PEM",
            f"ssl.truststore.location={files.ca}",
            "ssl.client.auth=none",
        ]

    def _java_command(self, java: str, main: str) -> list[str]:
        return [
            java,
            *JVM_OPTIONS,
            f"-Dlog4j.configuration={self.log4j_path.as_uri()}",
            "-cp",
            str(self.jars_dir / "*"),
            main,
        ]

    def _format_storage(self, java: str) -> None:
        command = [
            *self._java_command(java, "kafka.tools.StorageTool"),
            "format",
            "-t",
            _new_cluster_id(),
            "-c",
            str(self.properties_path),
        ]
        try:
            done = subprocess.run(
                command,
                cwd=self.home,
                capture_output=True,
                text=True,
                timeout=_FORMAT_TIMEOUT,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            msg = f"Formatting Kafka storage in {self.data_dir} took over {_FORMAT_TIMEOUT:.0f} s."
            raise BrokerError(msg) from exc
        with self.log_path.open("a", encoding="utf-8") as log:
            log.write(f"\n=== lifecycle: format storage {_now()} ===\n{done.stdout}{done.stderr}")
        if done.returncode != 0:
            output = _last_lines(done.stdout + done.stderr, _LOG_TAIL_LINES)
            msg = (
                f"Formatting Kafka storage in {self.data_dir} failed "
                f"(exit code {done.returncode}):\n{output}"
            )
            raise BrokerError(msg)

    def _spawn(self, java: str) -> tuple[subprocess.Popen[bytes], int]:
        """Start java in its own session, so Ctrl-C in the launching shell leaves it running."""
        with self.log_path.open("ab") as log:
            log.write(f"\n=== lifecycle: start Kafka {KAFKA_VERSION} {_now()} ===\n".encode())
            log.flush()
            offset = log.tell()
            process = subprocess.Popen(
                [*self._java_command(java, "kafka.Kafka"), str(self.properties_path)],
                cwd=self.home,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return process, offset

    def _wait_until_ready(
        self,
        process: subprocess.Popen[bytes],
        log_offset: int,
        timeout: float,
    ) -> None:
        deadline = time.monotonic() + timeout
        tls = self.client_tls()
        while True:
            code = process.poll()
            if code is not None:
                tail = _log_tail(self.log_path, log_offset)
                msg = (
                    f"Kafka exited with code {code} while starting. "
                    f"Last lines of {self.log_path}:\n{tail}"
                )
                raise BrokerError(msg)
            remaining = deadline - time.monotonic()
            wait = max(0.2, min(2.0, remaining))
            if broker_ready(self.bootstrap, timeout=wait, sasl=self.sasl, tls=tls):
                return
            if time.monotonic() >= deadline:
                tail = _log_tail(self.log_path, log_offset)
                msg = (
                    f"Kafka did not answer on {self.bootstrap} within {timeout:g} s "
                    f"(pid {process.pid}, now stopped). Last lines of {self.log_path}:\n{tail}"
                )
                raise BrokerError(msg)
            time.sleep(_POLL_INTERVAL)

    @staticmethod
    def _wait_exit(pid: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while _alive(pid):
            if time.monotonic() >= deadline:
                return False
            time.sleep(_POLL_INTERVAL)
        return True


# -- probing -------------------------------------------------------------------


def broker_ready(
    bootstrap: str,
    timeout: float = 2.0,
    *,
    sasl: SaslUser | None = None,
    tls: ssl.SSLContext | None = None,
) -> bool:
    """True when a broker at ``host:port[,host:port]`` serves this client: its TLS verified
    by ``tls``, its login accepting ``sasl`` (PLAIN), and it lists itself as live.

    The probe is ``streams.kafka.cluster_ready``, an aiokafka client built by the
    same factory as every other client of the engine, so the launcher speaks
    Kafka exactly as the engine does. The security is the broker's, not the
    engine's: ``sasl`` and ``tls`` come from the ``LocalBroker`` (``from_settings``
    derives them from the same ``LIFECYCLE_BROKER_*`` settings the factories
    read, and ``client_tls`` trusts its throwaway CA), and the TLS and SASL tests
    pass wrong ones on purpose; so the client is built from an explicit
    ``Connection``, not from settings. The attempt is made once and fails within
    ``timeout``, plus a moment to close its connections (the launcher polls); a
    refused certificate or login is not ready.

    Synchronous, for the CLI, the test fixtures and ``lifecycle dev``: the probe
    runs in an event loop of its own, in a thread of its own when this is called
    from a running loop (which is blocked meanwhile, as by any synchronous call).
    """
    connection = Connection(
        bootstrap,
        tls=tls,
        sasl_username=None if sasl is None else sasl.username,
        sasl_password=None if sasl is None else sasl.password,
        sasl_mechanism="PLAIN",
    )
    return cluster_ready_blocking(connection, timeout)


def find_free_port(span: int = 2) -> int:
    """A port P on 127.0.0.1 with P..P+span-1 all free (the broker needs P and P+1).

    For tests and demos that must not collide with a developer's broker; the
    usual race applies (another process may take the port before it is used).
    """
    for _ in range(100):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind((HOST, 0))
            port = int(sock.getsockname()[1])
        if port + span - 1 <= 65535 and all(port_free(port + i) for i in range(span)):
            return port
    msg = f"no {span} consecutive free ports found on {HOST}"
    raise BrokerError(msg)


def port_free(port: int) -> bool:
    """Whether a listener could bind here (SO_REUSEADDR, as Kafka does, so TIME_WAIT is no bar)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((HOST, port))
        except OSError:
            return False
    return True


# -- processes and tools -------------------------------------------------------


def _require_tools(*, java: bool, mvn: bool) -> dict[str, str]:
    """Resolve the needed tools or name every missing one at once, with how to get it."""
    found: dict[str, str] = {}
    missing: list[str] = []
    if java:
        path = _find_java()
        if path is None:
            missing.append("java")
        else:
            found["java"] = path
    if mvn:
        path = shutil.which("mvn")
        if path is None:
            missing.append("mvn")
        else:
            found["mvn"] = path
    if missing:
        names = " and ".join(f"`{name}`" for name in missing)
        verb = "is" if len(missing) == 1 else "are"
        msg = (
            f"Cannot start a local Kafka: {names} {verb} not on PATH. The launcher runs "
            f"Kafka {KAFKA_VERSION} on a Java runtime (17 recommended) and fetches its jars "
            f"once with Maven (mvn). {INSTALL_HINT}"
        )
        raise BrokerError(msg)
    return found


def _find_java() -> str | None:
    """``$JAVA_HOME/bin/java`` when set (what Java users expect), else ``java`` on PATH."""
    java_home = os.environ.get("JAVA_HOME")
    if java_home:
        candidate = Path(java_home) / "bin" / "java"
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    return shutil.which("java")


def _alive(pid: int) -> bool:
    """Whether ``pid`` runs; a zombie (exited, not yet reaped by its parent) does not."""
    child = _children.get(pid)
    if child is not None:
        if child.poll() is None:
            return True
        del _children[pid]
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return _proc_state(pid) != "Z"


def _proc_state(pid: int) -> str | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii", errors="replace")
    except OSError:
        return None
    # "pid (comm) state ...": comm may contain spaces and parentheses, so split after the last ")".
    fields = stat.rpartition(")")[2].split()
    return fields[0] if fields else None


def _cmdline(pid: int) -> str | None:
    """The process's command line, or None where /proc is unavailable (then trust the pid)."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    return raw.replace(b"\0", b" ").decode("utf-8", errors="replace")


def _signal(pid: int, signum: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signum)


def _terminate(process: subprocess.Popen[bytes]) -> None:
    """Clean up a broker that failed to come up, so a failed start leaves nothing running."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(_KILL_GRACE)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(_KILL_GRACE)


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """An exclusive advisory lock: two launchers never fetch, format or spawn at once."""
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


# -- small helpers -------------------------------------------------------------


def _new_cluster_id() -> str:
    """A Kafka cluster id (base64url of a random UUID), made here to save a JVM start."""
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode("ascii").rstrip("=")
        if not cluster_id.startswith("-"):  # Kafka avoids ids that read like CLI flags
            return cluster_id


def _write_private(path: Path, text: str) -> None:
    """Write a file only its owner can read: it may hold the SASL and keystore passwords."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)  # an older file keeps its mode through O_CREAT
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)


def _resource_text(name: str) -> str:
    return resources.files("streams").joinpath("kafka").joinpath(name).read_text(encoding="utf-8")


def _log_tail(path: Path, offset: int) -> str:
    """The last lines this run wrote, so an error shows this failure and not an older one."""
    try:
        with path.open("rb") as log:
            log.seek(offset)
            text = log.read().decode("utf-8", errors="replace")
    except OSError:
        return "(no log written)"
    return _last_lines(text, _LOG_TAIL_LINES) or "(log is empty)"


def _last_lines(text: str, count: int) -> str:
    return "\n".join(text.strip().splitlines()[-count:])


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
