"""MQTT topics of VDA 5050 (sec. 6.5): interfaceName/majorVersion/manufacturer/serialNumber/topic."""

from __future__ import annotations

from dataclasses import dataclass

VEHICLE_TOPICS = ("state", "connection", "factsheet", "visualization")  # vehicle -> controller
CONTROL_TOPICS = ("order", "instantActions")  # controller -> vehicle
# Each message is the whole picture and replaces the one before (state: sec. 6.10; visualization
# likewise): one that a newer message on its topic has overtaken can be skipped.
SNAPSHOT_TOPICS = ("state", "visualization")


@dataclass(frozen=True, slots=True)
class VehicleKey:
    """A vehicle's identity on the bus: manufacturer and serial number."""

    manufacturer: str
    serial_number: str

    def __post_init__(self) -> None:
        for part in (self.manufacturer, self.serial_number):
            if not part or any(c in part for c in "/+#"):
                raise ValueError(f"'{part}' cannot be part of an MQTT topic")

    @property
    def vehicle_id(self) -> str:
        """The id the controller uses: the serial number (unique per site by configuration)."""
        return self.serial_number


@dataclass(frozen=True, slots=True)
class TopicLayout:
    interface_name: str = "uagv"
    major_version: str = "v2"

    def topic(self, key: VehicleKey, name: str) -> str:
        return f"{self.interface_name}/{self.major_version}/{key.manufacturer}/{key.serial_number}/{name}"

    def subscriptions(self) -> list[str]:
        """Filters for what every vehicle publishes."""
        return [f"{self.interface_name}/{self.major_version}/+/+/{name}" for name in VEHICLE_TOPICS]

    def parse(self, topic: str) -> tuple[VehicleKey, str] | None:
        """(vehicle, topic name) of a topic in this layout, or None for anything else."""
        parts = topic.split("/")
        if len(parts) != 5 or parts[0] != self.interface_name or parts[1] != self.major_version:
            return None
        try:
            return VehicleKey(parts[2], parts[3]), parts[4]
        except ValueError:
            return None
