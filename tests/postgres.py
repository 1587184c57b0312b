"""A PostgreSQL server owned by the test run: a fresh cluster from Debian's binaries (initdb,
postgres) in a temporary folder, on a free loopback port, never the machine's own server; stopped
by PID when the run ends. As root it runs as the `postgres` user (PostgreSQL refuses root)."""

from __future__ import annotations

import atexit
import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from tests.broker import free_port


def server_binaries() -> Path:
    """The folder of Debian's PostgreSQL server binaries (the newest version installed)."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[4]))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    if initdb is None:
        pytest.fail(
            "the PostgreSQL server is not installed: run `make test`, which installs it (apt-get install postgresql)"
        )
    return Path(initdb).parent


class PostgresServer:
    """One cluster; `url` connects as the superuser `fleet` to the database `fleet`."""

    def __init__(self) -> None:
        self.port = free_port()
        self.workdir = Path(tempfile.mkdtemp(prefix="fleet-pg-"))
        self.data = self.workdir / "data"
        self.log = self.workdir / "postgres.log"
        self.process: subprocess.Popen[bytes] | None = None
        self._as: dict[str, object] = {}  # the server itself is the child: its PID is the server's
        if os.getuid() == 0:
            user = pwd.getpwnam("postgres")
            os.chown(self.workdir, user.pw_uid, user.pw_gid)
            self._as = {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": [], "cwd": self.workdir}

    @property
    def url(self) -> str:
        return f"postgresql://fleet@127.0.0.1:{self.port}/fleet"

    def start(self) -> None:
        bin_dir = server_binaries()
        initdb = [str(bin_dir / "initdb"), "-D", str(self.data), "-U", "fleet", "-A", "trust", "-E", "UTF8"]
        subprocess.run([*initdb, "--no-sync"], check=True, capture_output=True, timeout=120, **self._as)  # type: ignore[call-overload]
        server = [str(bin_dir / "postgres"), "-D", str(self.data), "-p", str(self.port), "-k", str(self.workdir)]
        server += ["-c", "listen_addresses=127.0.0.1", "-c", "max_connections=200"]
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(server, stdout=log, stderr=log, **self._as)  # type: ignore[call-overload]
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"postgres exited: {self.log.read_text()[-2000:]}")
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    break
            time.sleep(0.1)
        else:
            raise RuntimeError("postgres did not open its port within 30 s")
        createdb = [str(bin_dir / "createdb"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "fleet", "fleet"]
        for _ in range(50):  # the port opens a moment before the server takes connections
            if subprocess.run(createdb, capture_output=True, timeout=30).returncode == 0:
                return
            time.sleep(0.1)
        raise RuntimeError(f"createdb failed: {self.log.read_text()[-2000:]}")

    def stop(self) -> None:
        """Fast shutdown (SIGINT: open transactions roll back), then the folder goes."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        shutil.rmtree(self.workdir, ignore_errors=True)


_server: PostgresServer | None = None


def postgres_url() -> str:
    """FLEET_TEST_POSTGRES_URL when set (a server someone runs for the tests), else the URL of
    this run's own server, started at first use and stopped when the run ends."""
    global _server
    given = os.environ.get("FLEET_TEST_POSTGRES_URL")
    if given:
        return given
    if _server is None:
        server = PostgresServer()
        try:
            server.start()
        except BaseException:
            server.stop()
            raise
        atexit.register(server.stop)
        _server = server
    return _server.url
