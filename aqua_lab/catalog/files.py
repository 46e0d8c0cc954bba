"""Reading a user's ``config/deployment_config.json`` from disk."""

from __future__ import annotations

import json
from pathlib import Path

from ..errors import ConfigFileError, InvalidInput, Problem
from ..planning.configs import LoadedConfig, parse_deployment_config
from ..planning.shapes import ShapeCatalog
from ..safe_files import UntrustedJson, parse_json, read_capped

#: a deployment_config.json (real ones are a few KiB)
MAX_CONFIG_BYTES = 4 * 1024 * 1024


def load_deployment_config_file(path: str | Path, shapes: ShapeCatalog | None = None) -> LoadedConfig:
    if not Path(path).exists() and not Path(path).is_symlink():
        raise ConfigFileError(str(path), Problem("", "file not found", "check the path"))
    try:
        data = read_capped(path, "", MAX_CONFIG_BYTES, "the file", "check the path")
    except InvalidInput as exc:
        raise ConfigFileError(str(path), exc.problems) from None
    try:
        parse_json(data)  # hostile content refused here; syntax errors are described by the parser below
    except json.JSONDecodeError:
        pass
    except UntrustedJson as exc:
        raise ConfigFileError(str(path), Problem("$", str(exc), "repair the file")) from None
    return parse_deployment_config(data.decode("utf-8-sig"), str(path), shapes)
