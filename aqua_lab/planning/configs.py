"""``deployment_config.json``: parse, validate, canonicalise — from text, with no I/O.

Errors name the file, the line/column or JSON path, and the fix.  The seed's own sample template
has a trailing comma and a ``configuration`` key (``VM.GPU.A10.4``) missing from its ``shape`` list;
the first is an error with its position, the second a warning.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field

from pydantic import ValidationError

from ..domain import DeploymentConfig, MultiModelEntry, ShapeConfig
from ..errors import ConfigFileError, Problem, json_path
from .allocate import is_power_of_two
from .shapes import ShapeCatalog


@dataclass
class LoadedConfig:
    config: DeploymentConfig
    warnings: list[str] = field(default_factory=list)


def parse_deployment_config(
    text: str, source: str = "deployment_config.json", shapes: ShapeCatalog | None = None
) -> LoadedConfig:
    """Parse and validate a ``deployment_config.json``; canonicalise shape names when ``shapes``
    is given.  Raises :class:`ConfigFileError`; returns the config and its warnings."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise _decode_error(text, source, exc) from None
    if not isinstance(data, dict):
        raise ConfigFileError(
            source,
            Problem(
                "$",
                f"expected a JSON object, got {type(data).__name__}",
                'the file must look like {"shape": [...], "configuration": {...}}',
            ),
        )
    try:
        config = DeploymentConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigFileError(source, [_problem(e) for e in exc.errors()]) from None
    if shapes is None:
        return LoadedConfig(config)
    config, warnings = canonicalise_config(config, shapes, source)
    return LoadedConfig(config, warnings)


def canonicalise_config(
    config: DeploymentConfig, shapes: ShapeCatalog, source: str = "deployment_config.json"
) -> tuple[DeploymentConfig, list[str]]:
    """Shape names in OCI's spelling, plus warnings about what the config says that we will not
    use: unknown shapes, shapes configured but not listed, unusable GPU counts, duplicates."""
    warnings: list[str] = []

    def canon(name: str, where: str) -> str:
        if name not in shapes:
            warnings.append(f"{source}: {where} names {name!r}, not a known shape ({shapes.suggest(name)})")
        return shapes.canonical(name)

    listed: list[str] = []
    for name in config.shape:
        canonical = canon(name, "$.shape")
        if canonical in listed:
            warnings.append(f"{source}: $.shape lists {canonical!r} twice")
        else:
            listed.append(canonical)

    configuration: dict[str, ShapeConfig] = {}
    for key, shape_config in config.configuration.items():
        canonical = canon(key, f"$.configuration[{key!r}]")
        if canonical in configuration:
            warnings.append(f"{source}: $.configuration has {canonical!r} twice (any case); the first is used")
            continue
        if listed and canonical not in listed:
            warnings.append(
                f'{source}: $.configuration[{key!r}] is not in the "shape" list '
                f"{listed}; add it there if the model supports that shape, or remove the entry"
            )
        shape = shapes.find(canonical)
        entries = _usable_entries(
            shape_config.multi_model_deployment,
            shape.gpu_count if shape else None,
            f"{source}: $.configuration[{key!r}].multi_model_deployment",
            warnings,
        )
        configuration[canonical] = shape_config.model_copy(update={"multi_model_deployment": entries})

    return config.model_copy(update={"shape": listed, "configuration": configuration}), warnings


def _usable_entries(
    entries: Sequence[MultiModelEntry], shape_gpus: int | None, where: str, warnings: list[str]
) -> list[MultiModelEntry]:
    """Entries are kept (a round trip loses nothing) but the unusable ones are reported here; the
    allocator ignores them again on its own."""
    seen: set[int] = set()
    for i, entry in enumerate(entries):
        n = entry.gpu_count
        if not is_power_of_two(n):
            warnings.append(f"{where}[{i}].gpu_count is {n}: not a power of two, so it is ignored")
        elif shape_gpus is not None and n > shape_gpus:
            warnings.append(f"{where}[{i}].gpu_count is {n} but the shape has {shape_gpus} GPUs; ignored")
        if n in seen:
            warnings.append(f"{where}[{i}] repeats gpu_count {n}; the first entry's parameters are used")
        seen.add(n)
    return list(entries)


def entry_for(config: DeploymentConfig | None, shape: str, gpu_count: int) -> MultiModelEntry | None:
    if config is None or shape not in config.configuration:
        return None
    for entry in config.configuration[shape].multi_model_deployment:
        if entry.gpu_count == gpu_count:
            return entry
    return None


def parameters_for(config: DeploymentConfig | None, shape: str, gpu_count: int) -> dict[str, str]:
    """Container parameters (``VLLM_PARAMS`` …) the config gives for ``gpu_count`` GPUs on ``shape``:
    the matching multi-model entry's own (even when empty — an entry without parameters means "no
    extra flags at this size"), else the shape's single-model parameters."""
    entry = entry_for(config, shape, gpu_count)
    if entry is not None:
        return dict(entry.parameters)
    if config is not None and shape in config.configuration:
        return dict(config.configuration[shape].parameters)
    return {}


# --------------------------------------------------------------------------------------------------
# Error messages


def _position(text: str, pos: int) -> tuple[int, int]:
    line = text.count("\n", 0, pos) + 1
    column = pos - (text.rfind("\n", 0, pos) + 1) + 1
    return line, column


def _decode_error(text: str, source: str, exc: json.JSONDecodeError) -> ConfigFileError:
    pos = exc.pos
    if pos < len(text) and text[pos] in "}]":
        back = pos - 1
        while back >= 0 and text[back] in " \t\r\n":
            back -= 1
        if back >= 0 and text[back] == ",":
            line, column = _position(text, back)
            closer = "object" if text[pos] == "}" else "list"
            return ConfigFileError(
                source,
                Problem(
                    "$",
                    f"trailing comma after the last item of a {closer} (line {line}, column {column})",
                    "JSON allows no comma before '" + text[pos] + "': remove it",
                ),
                line=line,
                column=column,
            )
    return ConfigFileError(
        source,
        Problem(
            "$",
            f"not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})",
            "fix the JSON syntax at that position",
        ),
        line=exc.lineno,
        column=exc.colno,
    )


_FIXES = {
    "gpu_count": "use a whole number of GPUs that is a power of two: 1, 2, 4 or 8",
    "shape": 'list shape names as strings, e.g. ["VM.GPU.A10.2", "BM.GPU.A10.4"]',
    "parameters": 'map container parameter names to strings, e.g. {"VLLM_PARAMS": "--max-model-len 4096"}',
    "multi_model_deployment": 'list entries like {"gpu_count": 1, "parameters": {...}}',
    "configuration": "map shape names to objects with multi_model_deployment entries",
}


def _problem(error: dict) -> Problem:
    loc = error["loc"]
    named = [p for p in loc if isinstance(p, str)]
    fix = next((_FIXES[p] for p in reversed(named) if p in _FIXES), None)
    message = error["msg"]
    if error["type"] != "missing":
        message += f" (got {json.dumps(error.get('input'), default=str)[:60]})"
    return Problem(json_path(loc), message, fix)
