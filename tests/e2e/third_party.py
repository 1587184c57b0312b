"""Third-party VDA 5050 vehicles against a real controller: Siemens' vda-5050-lib 1.4.0 virtual
AGVs (`AgvController` + `VirtualAgvAdapter`, installed by `make peers` into var/peers from the
lockfile in tests/peers), started by the peer harness in `shared/peers/vda5050-virtual-agv`
beside the repository, on a private mosquitto, driven by `fleet serve` with the vehicle profile
in `examples/vehicles-vda-5050-lib.yaml`. Nothing stands between them: no translator.

A recorder on the broker keeps every message either side sent, so a test asserts what the
vehicle did from its own messages, and checks what the controller sent against the official
schemas.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.broker import Broker, Recorder, free_port
from tests.e2e.plant import stop_processes

ROOT = Path(__file__).resolve().parents[2]
PEER_DIR = ROOT / "var" / "peers"
PEER_SCRIPT = ROOT.parent / "shared" / "peers" / "vda5050-virtual-agv" / "agv-peer.mjs"
PROFILES = ROOT / "examples" / "vehicles-vda-5050-lib.yaml"
KEY = "third-party-operator"
SERIALS = ("agv001", "agv002", "agv003")
# The three AGVs start on small_test's parking nodes, at the nodes' coordinates.
POSITIONS = "PA1:3:11,PA2:-3:4,PA3:15:11"
TIME_LAPSE = 5  # the virtual AGVs drive and act 5x faster than their nominal speed and durations


class ThirdPartyPlant:
    """mosquitto, three virtual AGVs of vda-5050-lib and a `fleet serve` process."""

    def __init__(
        self,
        workdir: Path,
        broker: Broker,
        batteries: str = "100,100,100",
        profiles: Path = PROFILES,
        time_lapse: float = TIME_LAPSE,
    ) -> None:
        if not (PEER_DIR / "node_modules" / "vda-5050-lib").is_dir():
            pytest.fail("vda-5050-lib is not installed: run `make peers` (make test does)")
        if not PEER_SCRIPT.exists():
            pytest.fail(f"the peer harness is missing: {PEER_SCRIPT}")
        if shutil.which("node") is None:
            pytest.fail("node is not installed: run `make test`, which installs Debian's nodejs")
        self.workdir, self.broker, self.batteries, self.profiles = workdir, broker, batteries, profiles
        self.time_lapse = time_lapse
        # The harness runs beside the library it imports (ES modules resolve from their own folder).
        shutil.copy(PEER_SCRIPT, PEER_DIR / "agv-peer.mjs")
        self.recorder = Recorder(broker)
        self.peer: subprocess.Popen[bytes] | None = None
        self.controller: subprocess.Popen[bytes] | None = None
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.starts = 0

    def start_peer(self) -> None:
        env = {**os.environ, "BATT": self.batteries}
        cmd = ["node", str(PEER_DIR / "agv-peer.mjs"), "--broker", self.broker.url, "--count", str(len(SERIALS))]
        cmd += ["--positions", POSITIONS, "--speed", "1.0", "--time-lapse", str(self.time_lapse)]
        cmd += ["--state-interval", "2000", "--vis-interval", "500"]
        with (self.workdir / "peer.log").open("ab") as out:
            self.peer = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT, cwd=PEER_DIR)

    def start_controller(self) -> None:
        self.starts += 1
        env = {k: v for k, v in os.environ.items() if not k.startswith("FLEET_")}
        env |= {
            "FLEET_MQTT_URL": self.broker.url,
            "FLEET_API_KEYS": f"operator:{KEY}",
            "FLEET_API_KEY_FILE": str(self.workdir / "no-key-file.json"),
        }
        cmd = [sys.executable, "-m", "fleet.cli", "serve", "--map", "small_test", "--vehicles", str(self.profiles)]
        cmd += ["--db", str(self.workdir / "fleet.db"), "--port", str(self.port), "--settle-s", "2"]
        with (self.workdir / f"controller-{self.starts}.log").open("ab") as out:
            self.controller = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT)
        self.until("the controller answers", self._answers, 30)

    def _answers(self) -> bool:
        try:
            self.api("GET", "/api/v1/health")
            return True
        except (urllib.error.URLError, ConnectionError):
            return False

    def api(self, method: str, path: str, body: object = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(f"{self.base}{path}", data=data, method=method)
        req.add_header("content-type", "application/json")
        req.add_header("x-api-key", KEY)
        with urllib.request.urlopen(req, timeout=10) as answer:
            return json.loads(answer.read())

    def vehicles(self) -> dict[str, dict[str, Any]]:
        return {v["id"]: v for v in self.api("GET", "/api/v1/vehicles")}

    def until(self, what: str, check: Callable[[], object], seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while not check():
            for name, process in (("controller", self.controller), ("peer", self.peer)):
                if process is not None and process.poll() is not None:
                    pytest.fail(f"{name} exited while waiting for {what}: {self.logs()}")
            if time.monotonic() > deadline:
                pytest.fail(f"{what}: not within {seconds} s. {self.logs()}")
            time.sleep(0.2)

    def logs(self) -> str:
        out = [f"last state of {s}: {json.dumps(self.recorder.of(s, 'state')[-1:])[:1500]}" for s in SERIALS]
        try:
            req = urllib.request.Request(f"{self.base}/metrics", headers={"x-api-key": KEY})
            with urllib.request.urlopen(req, timeout=5) as answer:
                out += [line for line in answer.read().decode().splitlines() if "vda5050_messages" in line]
        except (urllib.error.URLError, ConnectionError):
            out.append("(no metrics: the controller does not answer)")
        for log in sorted(self.workdir.glob("*.log")):
            out.append(f"--- {log.name} ---\n{log.read_text(errors='replace')[-3000:]}")
        return "\n".join(out)

    def kill_peer(self) -> None:
        """SIGKILL: the AGVs die without a word; the broker publishes their last will."""
        assert self.peer is not None
        self.peer.kill()
        self.peer.wait(timeout=10)
        self.peer = None  # gone on purpose: waiting for something is no reason to fail

    def stop(self) -> None:
        self.recorder.close()
        stop_processes(self.controller, self.peer)


def profiles_without(workdir: Path, *, parameters: bool = True, quirk: bool = True) -> Path:
    """The example profile file less its pick and drop parameters or its instant-actions quirk:
    what an integrator gets wrong first, for the tests of what the controller then does."""
    import yaml

    data = yaml.safe_load(PROFILES.read_text())
    profile = data["profiles"]["vda-5050-lib-virtual"]
    if not parameters:
        profile.pop("actions")
    if not quirk:
        profile.pop("quirks")
    path = workdir / "profiles.yaml"
    path.write_text(yaml.safe_dump(data))
    return path
