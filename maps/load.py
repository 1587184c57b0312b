"""Loading facility maps from files and from the bundled examples, validated on the way in."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from maps.model import FacilityMap
from maps.schema import MapFile, map_from_wire
from maps.validate import validate_map

_BUNDLED = Path(__file__).parent / "data"


class MapValidationError(ValueError):
    """A map was rejected; `problems` names every problem found, one sentence each."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = problems
        listing = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"map {source} has {len(problems)} problem(s):\n{listing}")


def parse_map(data: Mapping[str, Any], source: str = "<data>") -> FacilityMap:
    """Validate raw map data (as read from YAML or JSON) and build the map, or raise MapValidationError."""
    try:
        parsed = MapFile.model_validate(data)
    except ValidationError as exc:
        problems = [f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()]
        raise MapValidationError(source, problems) from None
    fmap = map_from_wire(parsed)
    problems = validate_map(fmap)
    if problems:
        raise MapValidationError(source, problems)
    return fmap


def load_map_file(path: str | Path) -> FacilityMap:
    """Load a map from a .yaml/.yml or .json file."""
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    if not isinstance(data, Mapping):
        raise MapValidationError(str(path), ["file: top level must be a mapping"])
    return parse_map(data, source=str(path))


def bundled_map_names() -> list[str]:
    """Names of the example facilities shipped with the package."""
    return sorted(p.stem for p in _BUNDLED.glob("*.yaml"))


def load_map(name_or_path: str | Path) -> FacilityMap:
    """Load a bundled map by name (e.g. `solar_module_plant`) or a map file by path."""
    candidate = _BUNDLED / f"{name_or_path}.yaml"
    if isinstance(name_or_path, str) and candidate.exists():
        return load_map_file(candidate)
    path = Path(name_or_path)
    if not path.exists():
        known = ", ".join(bundled_map_names())
        raise FileNotFoundError(f"no map file '{name_or_path}' and no bundled map of that name (bundled: {known})")
    return load_map_file(path)
