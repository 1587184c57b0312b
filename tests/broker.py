"""A mosquitto broker owned by a test: started from Debian's binary on a free loopback port with a
generated config, stopped (or killed, for fault tests) by PID; and a recorder of what crosses it."""

from __future__ import annotations

import json
import shutil
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def mosquitto_binary() -> str:
    found = shutil.which("mosquitto") or ("/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").exists() else None)
    if found is None:
        pytest.fail("mosquitto is not installed: run `make test`, which installs it (apt-get install mosquitto)")
    return found


class Broker:
    def __init__(self, workdir: Path, nodelay: bool = False) -> None:
        self.port = free_port()
        self.config = workdir / "mosquitto.conf"
        self.log = workdir / "mosquitto.log"
        self.config.write_text(
            f"listener {self.port} 127.0.0.1\nallow_anonymous true\npersistence false\nlog_dest stderr\n"
            "log_type error\nlog_type warning\n" + ("set_tcp_nodelay true\n" if nodelay else "")
        )
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def start(self) -> None:
        with self.log.open("ab") as log:
            self.process = subprocess.Popen([mosquitto_binary(), "-c", str(self.config)], stderr=log, stdout=log)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"mosquitto exited: {self.log.read_text()[-2000:]}")
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.05)
        raise RuntimeError("mosquitto did not open its port within 10 s")

    def kill(self) -> None:
        """SIGKILL: the broker dies without a word to its clients."""
        if self.process is not None:
            self.process.kill()
            self.process.wait(timeout=10)
            self.process = None

    def freeze(self) -> None:
        """SIGSTOP: the broker keeps its connections open but answers nothing (a hung broker)."""
        if self.process is not None:
            self.process.send_signal(signal.SIGSTOP)

    def thaw(self) -> None:
        if self.process is not None:
            self.process.send_signal(signal.SIGCONT)

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
            self.process = None


class Recorder:
    """Every message on the broker under the vehicles' manufacturer, in arrival order."""

    def __init__(self, broker: Broker, manufacturer: str = "VirtualCo") -> None:
        self.manufacturer = manufacturer
        self.messages: list[tuple[float, str, dict[str, Any]]] = []
        self._lock = threading.Lock()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="recorder")
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", broker.port)
        self.client.subscribe(f"uagv/v2/{manufacturer}/#", qos=1)
        self.client.loop_start()

    def _on_message(self, _c: object, _u: object, message: mqtt.MQTTMessage) -> None:
        try:
            body = json.loads(message.payload)
        except ValueError:
            return
        with self._lock:
            self.messages.append((time.monotonic(), message.topic, body))

    def of(self, serial: str, topic: str) -> list[dict[str, Any]]:
        with self._lock:
            return [b for _, t, b in self.messages if t == f"uagv/v2/{self.manufacturer}/{serial}/{topic}"]

    def sent_by_controller(self) -> list[tuple[str, dict[str, Any]]]:
        with self._lock:
            return [(t.rsplit("/", 1)[1], b) for _, t, b in self.messages if t.endswith(("/order", "/instantActions"))]

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()
