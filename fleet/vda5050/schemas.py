"""The official VDA 5050 JSON schemas, loaded leniently, for checking what the controller sends.

The published files have defects (see `shared/vda5050/schemas/SOURCE.md`): 2.0.0/state.schema has
trailing commas, so files are read with those removed in memory; the copies are never edited.
The schemas use `definitions` with draft 2020-12, which `jsonschema` resolves as plain JSON pointers.
"""

from __future__ import annotations

import json
import os
import re
from functools import lru_cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator

_TRAILING_COMMA = re.compile(r",(\s*[\]}])")


def default_schema_dir() -> Path:
    """`FLEET_VDA5050_SCHEMAS`, else `shared/vda5050/schemas` beside the repository."""
    env = os.environ.get("FLEET_VDA5050_SCHEMAS")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[3] / "shared" / "vda5050" / "schemas"


def load_lenient(path: Path) -> dict[str, Any]:
    """Parse a schema file, tolerating the trailing commas of the published 2.0.0 state schema."""
    text = path.read_text(encoding="utf-8")
    try:
        data: dict[str, Any] = json.loads(text)
    except json.JSONDecodeError:
        data = json.loads(_TRAILING_COMMA.sub(r"\1", text))
    return data


@lru_cache(maxsize=32)
def validator(version: str, topic: str, schema_dir: Path | None = None) -> Draft202012Validator:
    folder = (schema_dir or default_schema_dir()) / version
    return Draft202012Validator(load_lenient(folder / f"{topic}.schema"))


def schema_errors(version: str, topic: str, message: dict[str, Any], schema_dir: Path | None = None) -> list[str]:
    """Every way `message` breaks the official schema of `topic` in `version`, as 'path: reason'."""
    found = validator(version, topic, schema_dir).iter_errors(message)
    return [f"{'/'.join(str(p) for p in e.absolute_path) or '<root>'}: {e.message}" for e in found]
