"""API keys with two roles: `viewer` reads, `operator` also acts (orders, vehicles, lanes, fleet).

Keys come from FLEET_API_KEYS as `role:key` pairs separated by commas
(`operator:s3cret,viewer:l00k`). With no keys configured the API is open and every caller is an
operator: that is the demo's default, never a plant's. A key travels in the `X-API-Key` header,
or as `?key=` where a browser cannot set headers (EventSource, WebSocket, the page's own URL).
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Callable
from dataclasses import dataclass
from enum import IntEnum

from fastapi import HTTPException, Request, WebSocket


class Role(IntEnum):
    VIEWER = 1
    OPERATOR = 2


@dataclass(frozen=True)
class ApiKeys:
    keys: tuple[tuple[str, Role], ...] = ()

    @classmethod
    def parse(cls, text: str) -> ApiKeys:
        pairs = []
        for item in filter(None, (part.strip() for part in text.split(","))):
            role, sep, key = item.partition(":")
            if not sep or not key or role not in ("viewer", "operator"):
                raise ValueError(f"FLEET_API_KEYS: '{item}' is not role:key with role viewer or operator")
            pairs.append((key, Role[role.upper()]))
        return cls(tuple(pairs))

    @classmethod
    def from_env(cls) -> ApiKeys:
        return cls.parse(os.environ.get("FLEET_API_KEYS", ""))

    @property
    def open(self) -> bool:
        return not self.keys

    def role_of(self, key: str | None) -> Role | None:
        if self.open:
            return Role.OPERATOR
        if not key:
            return None
        for known, role in self.keys:
            if hmac.compare_digest(known.encode(), key.encode()):
                return role
        return None


def key_id(key: str | None) -> str | None:
    """A short fingerprint that tells keys apart in the audit log without keeping the key."""
    return hashlib.sha256(key.encode()).hexdigest()[:10] if key else None


def presented_key(connection: Request | WebSocket) -> str | None:
    return connection.headers.get("x-api-key") or connection.query_params.get("key")


def require(role: Role) -> Callable[[Request], Role]:
    """A dependency that lets a request through only with a key of at least `role`."""

    def check(request: Request) -> Role:
        keys: ApiKeys = request.app.state.keys
        found = keys.role_of(presented_key(request))
        if found is None:
            raise HTTPException(status_code=401, detail="missing or unknown API key (X-API-Key header)")
        if found < role:
            raise HTTPException(status_code=403, detail=f"this needs an {role.name.lower()} key")
        return found

    return check
