"""API keys and what each role may do.

Roles, from least to most: `plc` creates calls for its own station and reads that station's
calls and orders, nothing else; `viewer` reads everything; `operator` also acts (orders,
vehicles, lanes, zones, fleet pause and admission limit, alarms); `admin` also replaces maps and
manages keys.

Keys come from a key file (FLEET_API_KEY_FILE, default `var/api-keys.json`), written by
`fleet keys add|list|remove` or the admin's `/api/v1/keys`, which keeps only a salted SHA-256
of each key (keys are 32 random bytes, so a fast hash is enough: nobody guesses them), and from
FLEET_API_KEYS as `role:key` pairs separated by commas (`operator:s3cret,viewer:l00k,
plc@LAM-01:pl4nt`; for tests and quick setups). With no keys configured (and no key file, even
an empty one) the API is open and every caller is an admin: never a plant's setting. A key
travels in the `X-API-Key` header, or as `?key=` where a browser cannot set headers
(EventSource, WebSocket, the page's own URL).

Concurrency: the checks only read; `ApiKeys` is replaced whole (never changed) when keys change.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import re
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from enum import IntEnum
from pathlib import Path

from fastapi import HTTPException, Request, WebSocket
from starlette.applications import Starlette

log = logging.getLogger(__name__)


class Role(IntEnum):
    PLC = 0
    VIEWER = 1
    OPERATOR = 2
    ADMIN = 3

    @property
    def label(self) -> str:
        return self.name.lower()

    @classmethod
    def named(cls, name: str) -> Role:
        try:
            return cls[name.upper()]
        except KeyError:
            raise ValueError(f"role '{name}': roles are plc, viewer, operator, admin") from None


DEFAULT_KEY_FILE = Path("var/api-keys.json")


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: the role of the key presented, the station a PLC key belongs to, and the
    key's fingerprint (for the audit log; never the key)."""

    role: Role
    station: str | None = None
    key_id: str | None = None

    def __post_init__(self) -> None:
        if (self.role is Role.PLC) != (self.station is not None):
            raise ValueError("a plc key belongs to exactly one station; other roles to none")

    @property
    def who(self) -> str:
        return f"plc {self.station}" if self.station else self.role.label

    def may_see_station(self, *stations: str) -> bool:
        """Whether this caller may read what concerns one of these stations."""
        return self.role is not Role.PLC or self.station in stations


@dataclass(frozen=True, slots=True)
class StoredKey:
    """A key as the key file keeps it: never the key itself."""

    id: str
    role: Role
    salt: str
    digest: str
    created_at: float
    station: str | None = None

    def matches(self, key: str) -> bool:
        return hmac.compare_digest(_digest(self.salt, key), self.digest)

    def to_json(self) -> dict[str, object]:
        return {
            "id": self.id,
            "role": self.role.label,
            "station": self.station,
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
                StoredKey(
                    r["id"], Role.named(r["role"]), r["salt"], r["sha256"], float(r["created_at"]), r.get("station")
                )
                for r in rows
            ]
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"{self.path}: not a key file ({exc})") from None

    def add(self, role: Role, now: float, station: str | None = None) -> tuple[StoredKey, str]:
        """A new random key of `role` (a plc key for one `station`): (what is stored, the key,
        to be shown once)."""
        Principal(role, station)  # checks that station goes with plc and only with plc
        key = secrets.token_urlsafe(32)
        salt = secrets.token_hex(16)
        stored = StoredKey(f"k-{secrets.token_hex(4)}", role, salt, _digest(salt, key), now, station)
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
    keys: tuple[tuple[str, Principal], ...] = ()
    stored: tuple[StoredKey, ...] = ()
    file: Path | None = None  # the key file keys are managed in (None: FLEET_API_KEYS only)
    key_file: bool = False  # a key file exists: closed even when it holds no key
    stamp: tuple[int, int] | None = None  # the key file's (mtime_ns, size) when read

    @classmethod
    def parse(cls, text: str) -> ApiKeys:
        """`role:key` pairs; a PLC key names its station as `plc@STATION:key`."""
        pairs = []
        for item in filter(None, (part.strip() for part in text.split(","))):
            who, sep, key = item.partition(":")
            role_name, _, station = who.partition("@")
            problem = f"FLEET_API_KEYS: '{item}' is not role:key (roles viewer, operator, admin; plc@STATION)"
            if not sep or not key:
                raise ValueError(problem)
            try:
                principal = Principal(Role.named(role_name), station or None, key_id(key))
            except ValueError:
                raise ValueError(problem) from None
            pairs.append((key, principal))
        return cls(tuple(pairs))

    @classmethod
    def from_env(cls) -> ApiKeys:
        """FLEET_API_KEYS and the key file (FLEET_API_KEY_FILE, default var/api-keys.json)."""
        return cls.parse(os.environ.get("FLEET_API_KEYS", "")).with_file(
            Path(os.environ.get("FLEET_API_KEY_FILE", DEFAULT_KEY_FILE))
        )

    def with_file(self, path: Path) -> ApiKeys:
        """These keys plus those of a key file, read now (again after keys changed)."""
        stamp = _stamp(path)
        return replace(self, stored=tuple(KeyFile(path).load()), file=path, key_file=stamp is not None, stamp=stamp)

    def refreshed(self) -> ApiKeys:
        """These keys, read again if the key file changed since (`fleet keys remove` on a running
        controller takes effect at the next request); unchanged if it cannot be read."""
        if self.file is None or _stamp(self.file) == self.stamp:
            return self
        try:
            return self.with_file(self.file)
        except (OSError, ValueError) as exc:
            log.error("key file changed but cannot be read, keeping the keys read before: %s", exc)
            return self

    @property
    def open(self) -> bool:
        return not self.keys and not self.stored and not self.key_file

    def principal_of(self, key: str | None) -> Principal | None:
        if self.open:
            return Principal(Role.ADMIN)
        if not key:
            return None
        for known, principal in self.keys:
            if hmac.compare_digest(known.encode(), key.encode()):
                return principal
        for stored in self.stored:
            if stored.matches(key):
                return Principal(stored.role, stored.station, key_id(key))
        return None

    def role_of(self, key: str | None) -> Role | None:
        principal = self.principal_of(key)
        return principal.role if principal else None


def _stamp(path: Path) -> tuple[int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_mtime_ns, st.st_size


def current_keys(app: Starlette) -> ApiKeys:
    """The app's keys, as the key file has them now."""
    keys: ApiKeys = app.state.keys
    fresh = keys.refreshed()
    if fresh is not keys:
        app.state.keys = fresh
    return fresh


_KEY_IN_QUERY = re.compile(r"(?i)((?:^|[?&])key=)[^&#\s]*")


def redact(text: str) -> str:
    """A path or query with the value of any `key=` parameter replaced by `***`."""
    return _KEY_IN_QUERY.sub(r"\1***", text)


class RedactKeys(logging.Filter):
    """Keeps keys sent as `?key=` out of a log (uvicorn's access log prints whole paths)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(redact(a) if isinstance(a, str) else a for a in record.args)
        elif isinstance(record.msg, str):
            record.msg = redact(record.msg)
        return True


def key_id(key: str | None) -> str | None:
    """A short fingerprint that tells keys apart in the audit log without keeping the key."""
    return hashlib.sha256(key.encode()).hexdigest()[:10] if key else None


def presented_key(connection: Request | WebSocket) -> str | None:
    return connection.headers.get("x-api-key") or connection.query_params.get("key")


def require(role: Role, plc: bool = False) -> Callable[[Request], Awaitable[Principal]]:
    """A dependency that lets a request through with a key of at least `role`, and with `plc`
    also a PLC key (the route then limits it to its own station)."""

    async def check(request: Request) -> Principal:
        found = current_keys(request.app).principal_of(presented_key(request))
        if found is None:
            raise HTTPException(status_code=401, detail="missing or unknown API key (X-API-Key header)")
        if found.role < role and not (plc and found.role is Role.PLC):
            raise HTTPException(
                status_code=403, detail=f"a {found.role.label} key may not do this: it needs the {role.label} role"
            )
        return found

    return check
