"""Reading a user's ``config/deployment_config.json`` from disk."""

from __future__ import annotations

from pathlib import Path

from ..errors import ConfigFileError, Problem
from ..planning.configs import LoadedConfig, parse_deployment_config
from ..planning.shapes import ShapeCatalog


def load_deployment_config_file(path: str | Path, shapes: ShapeCatalog | None = None) -> LoadedConfig:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigFileError(str(path), Problem("", "file not found", "check the path")) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigFileError(str(path), Problem("", f"cannot read it: {exc}", "check the file")) from None
    return parse_deployment_config(text, str(path), shapes)
