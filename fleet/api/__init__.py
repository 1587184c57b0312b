"""HTTP API of the controller (FastAPI): routes call `FleetService` and nothing else."""

from fleet.api.app import create_app

__all__ = ["create_app"]
