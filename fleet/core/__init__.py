"""The controller core (see `fleet.core.controller`): the `Controller` and what callers need with it."""

from fleet.core.config import MAX_PRIORITY, ControllerConfig, ControllerStats, OrderRejected
from fleet.core.controller import Controller

__all__ = ["MAX_PRIORITY", "Controller", "ControllerConfig", "ControllerStats", "OrderRejected"]
