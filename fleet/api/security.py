"""API keys with two roles: `viewer` reads, `operator` also acts (orders, vehicles, lanes, fleet).

Keys come from a key file (FLEET_API_KEY_FILE, default `var/api-keys.json`), written by
`fleet keys add|list|remove`, which keeps only a salted SHA-256 of each key (keys are 32 random
bytes, so a fast hash is enough: nobody guesses them), and from FLEET_API_KEYS as `role:key`
pairs separated by commas (`operator:s3cret,viewer:l00k`; for tests and quick setups). With no
keys configured (and no key file, even an empty one) the API is open and every caller is an
operator: that is the demo's default, never a plant's. A key travels in the `X-API-Key` header,
or as `?key=` where a browser cannot set headers (EventSource, WebSocket, the page's own URL).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass, replace
from enum import IntEnum
from pathlib import Path

from fastapi import HTTPException, Request, WebSocket


class Role(IntEnum):
    VIEWER = 1
    OPERATOR = 2


DEFAULT_KEY_FILE = Path("var/api-keys.json")


@dataclass(frozen=True, slots=True)
class StoredKey:
    """A key as the key file keeps it: never the key itself."""

    id: str
    role: Role
    salt: str
    digest: str
    created_at: float

    def matches(self, key: str) -> bool:
        return hmac.compare_digest(_digest(self.salt, key), self.digest)

    def to_json(self) -> dict[str, object]:
        return {
            "id": self.id,
            "role": self.role.name.lower(),
            "salt": self.salt,
            "sha256": self.digest,
            "created_at": self.created_at,
        }


def _digest(salt: str, key: str) -> str:
    return hashlib.sha256(bytes.fromhex(salt) + key.encode()).hexdigest()


class KeyFile:
    """The key file: a JSON list of stored keys. Written whole (to a temporary file, then renamed)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> list[StoredKey]:
        if not self.path.exists():
            return []
        try:
            rows = json.loads(self.path.read_text())
            return [
                StoredKey(r["id"], Role[r["role"].upper()], r["salt"], r["sha256"], float(r["created_at"]))
                for r in rows
            ]
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"{self.path}: not a key file ({exc})") from None

    def add(self, role: Role, now: float) -> tuple[StoredKey, str]:
        """A new random key of `role`: (what is stored, the key, to be shown once)."""
        key = secrets.token_urlsafe(32)
        salt = secrets.token_hex(16)
        stored = StoredKey(f"k-{secrets.token_hex(4)}", role, salt, _digest(salt, key), now)
        self._write([*self.load(), stored])
        return stored, key

    def remove(self, key_id: str) -> bool:
        keys = self.load()
        kept = [k for k in keys if k.id != key_id]
        if len(kept) == len(keys):
            return False
        self._write(kept)
        return True

    def _write(self, keys: list[StoredKey]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps([k.to_json() for k in keys], indent=1))
        tmp.chmod(0o600)
        tmp.replace(self.path)


@dataclass(frozen=True)
class ApiKeys:
    keys: tuple[tuple[str, Role], ...] = ()
    stored: tuple[StoredKey, ...] = ()
    key_file: bool = False  # a key file exists: closed even when it holds no key

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
        """FLEET_API_KEYS and the key file (FLEET_API_KEY_FILE, default var/api-keys.json)."""
        file = KeyFile(Path(os.environ.get("FLEET_API_KEY_FILE", DEFAULT_KEY_FILE)))
        env = cls.parse(os.environ.get("FLEET_API_KEYS", ""))
        return replace(env, stored=tuple(file.load()), key_file=file.path.exists())

    @property
    def open(self) -> bool:
        return not self.keys and not self.stored and not self.key_file

    def role_of(self, key: str | None) -> Role | None:
        if self.open:
            return Role.OPERATOR
        if not key:
            return None
        for known, role in self.keys:
            if hmac.compare_digest(known.encode(), key.encode()):
                return role
        for stored in self.stored:
            if stored.matches(key):
                return stored.role
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
