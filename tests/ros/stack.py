"""The real ROS 2 stack of the integration test and the bridge benchmark: ROS 2 Jazzy from PyPI
wheels in var/ros (`make ros-env`), the Rust rosbridge (`rosbridge-server-rs`) and the
simulated rclpy robots and cells of `sim/ros_nodes.py`.

Network safety: DDS must never send a packet off this machine. Everything here runs inside a
private network namespace that has only loopback (`in_private_network` re-runs a module there
with `unshare --net`), and on top of that every ROS process gets
ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST, a random ROS_DOMAIN_ID and a Fast DDS profile whose
only transport is UDP on 127.0.0.1.
"""

from __future__ import annotations

import os
import random
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ROS_DIR = Path(os.environ.get("FLEET_ROS_ENV", ROOT / "var" / "ros"))
ROS_PYTHON = ROS_DIR / "venv" / "bin" / "python"

FASTDDS_LOOPBACK = """<?xml version="1.0" encoding="UTF-8" ?>
<profiles xmlns="http://www.eprosima.com/XMLSchemas/fastRTPS_Profiles">
  <transport_descriptors>
    <transport_descriptor>
      <transport_id>loopback_only</transport_id>
      <type>UDPv4</type>
      <interfaceWhiteList><address>127.0.0.1</address></interfaceWhiteList>
    </transport_descriptor>
  </transport_descriptors>
  <participant profile_name="loopback_participant" is_default_profile="true">
    <rtps>
      <userTransports><transport_id>loopback_only</transport_id></userTransports>
      <useBuiltinTransports>false</useBuiltinTransports>
    </rtps>
  </participant>
</profiles>
"""


def missing() -> str | None:
    """Why the stack cannot run here, or None."""
    if not ROS_PYTHON.exists():
        return f"no ROS 2 environment at {ROS_DIR}: run `make ros-env` (make test does)"
    for tool in ("unshare", "ip"):
        if shutil.which(tool) is None:
            return f"`{tool}` is missing: run `make test`, which installs it"
    return None


def interfaces(pid: int | None = None) -> list[str]:
    """Network interfaces a process sees (this one by default)."""
    lines = Path(f"/proc/{pid or 'self'}/net/dev").read_text().splitlines()[2:]
    return sorted(line.split(":")[0].strip() for line in lines)


def in_private_network(module: str, *args: str, timeout_s: float = 300) -> subprocess.CompletedProcess[str]:
    """Run `python -m module args` inside a new network namespace with only loopback up."""
    unshare = ["unshare", "--net"] if os.geteuid() == 0 else ["unshare", "--net", "--map-root-user"]
    script = f'ip link set lo up && exec "{sys.executable}" -m {module} "$@"'
    return subprocess.run(
        [*unshare, "sh", "-c", script, "sh", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )


class RosStack:
    """ROS 2 processes started in this (private) network namespace, stopped together."""

    def __init__(self, workdir: Path) -> None:
        if interfaces() != ["lo"]:
            raise RuntimeError(f"refusing to start ROS 2 outside a loopback-only namespace: {interfaces()}")
        self.workdir = workdir
        profile = workdir / "fastdds_loopback.xml"
        profile.write_text(FASTDDS_LOOPBACK)
        venv = ROS_DIR / "venv"
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("ROS_", "RMW_", "FASTRTPS", "FASTDDS"))},
            "ROS_DISTRO": "jazzy",
            "RMW_IMPLEMENTATION": "rmw_fastrtps_cpp",
            "ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST",
            "ROS_DOMAIN_ID": str(random.randint(1, 101)),
            "FASTRTPS_DEFAULT_PROFILES_FILE": str(profile),
            "FASTDDS_DEFAULT_PROFILES_FILE": str(profile),
            "LD_LIBRARY_PATH": f"{ROS_DIR / 'shim'}:{venv / 'lib'}",
            "PYTHONUNBUFFERED": "1",
        }
        self.processes: list[subprocess.Popen[bytes]] = []

    def _spawn(self, name: str, cmd: list[str], extra: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        with (self.workdir / f"{name}.log").open("ab") as log:
            process = subprocess.Popen(cmd, env={**self.env, **(extra or {})}, stdout=log, stderr=subprocess.STDOUT)
        self.processes.append(process)
        return process

    def bridge(self, port: int) -> subprocess.Popen[bytes]:
        """The Rust rosbridge on 127.0.0.1:`port`, without rosapi; it needs libpython preloaded."""
        libpython = subprocess.run(
            [
                str(ROS_PYTHON),
                "-c",
                "import sysconfig as s; print(s.get_config_var('LIBDIR') + '/' + s.get_config_var('INSTSONAME'))",
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        binary = str(ROS_DIR / "venv" / "bin" / "rosbridge-server-rs")
        cmd = [binary, "--no-rosapi", "--bind", f"127.0.0.1:{port}", "--log-ansi", "false"]
        return self._spawn("rosbridge", cmd, {"LD_PRELOAD": libpython})

    def node(self, name: str, *args: str) -> subprocess.Popen[bytes]:
        """A simulated robot or cell of sim/ros_nodes.py."""
        return self._spawn(name, [str(ROS_PYTHON), str(ROOT / "sim" / "ros_nodes.py"), *args])

    def alive(self) -> bool:
        return all(p.poll() is None for p in self.processes)

    def logs(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.read_text()[-1500:]}" for p in sorted(self.workdir.glob("*.log")))

    def stop(self) -> None:
        for p in self.processes:
            if p.poll() is None:
                p.terminate()
        deadline = time.monotonic() + 5
        for p in self.processes:
            try:
                p.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                p.kill()
