"""The data bundled in ``aqua_lab/data`` (UPL-1.0, see ``data/LICENSE-UPL.txt``):

* ``gpu_shapes_index.json`` — OCI's GPU shape index from oracle-ads (names canonicalised on load);
* ``multimodel_supported_service_models.json`` — the "Supported Service Models" table of the AQUA
  multi-model guide, turned here into one ``deployment_config.json`` per model;
* ``model_architectures.json`` — each service model's architecture facts from its published
  ``config.json`` (the source per row), for the memory model.

The service models' real configs live in Oracle's service bucket; the table is their public
projection, so each derived config carries only ``multi_model_deployment`` entries.
"""

from __future__ import annotations

import difflib
import json
import re
from functools import cache
from importlib import resources

from ..domain import Architecture, CatalogModel, DeploymentConfig, ModelInput, MultiModelEntry, ShapeConfig
from ..errors import NotFound
from ..planning.architectures import from_table_row
from ..planning.configs import canonicalise_config
from ..planning.params import VLLM_PARAMS
from ..planning.shapes import ShapeCatalog, shapes_from_gpu_index
from ..planning.sizing import parameter_count_from_name


def _read_json(name: str) -> dict:
    return json.loads(resources.files("aqua_lab.data").joinpath(name).read_text(encoding="utf-8"))


def service_model_configs(rows: list[dict], shapes: ShapeCatalog) -> dict[str, DeploymentConfig]:
    """One config per model from the table's rows (model, shape, gpu_count, vllm_params).  Rows
    are kept as published — including ``gpu_count: 5`` — and repeated rows are folded; planning
    reports the unusable counts instead of hiding them."""
    configs: dict[str, DeploymentConfig] = {}
    for row in rows:
        config = configs.setdefault(row["model"], DeploymentConfig())
        shape = shapes.canonical(row["shape"])
        if shape not in config.shape:
            config.shape.append(shape)
        entries = config.configuration.setdefault(shape, ShapeConfig()).multi_model_deployment
        params = {VLLM_PARAMS: row["vllm_params"]} if row.get("vllm_params") else {}
        entry = MultiModelEntry(gpu_count=row["gpu_count"], parameters=params)
        if entry not in entries:
            entries.append(entry)
    return configs


class BundledCatalog:
    """Shapes and service models from the bundled data.  Lookups are case-insensitive and accept
    the short name (``Meta-Llama-3.1-8B-Instruct`` for ``meta-llama/Meta-Llama-3.1-8B-Instruct``)."""

    def __init__(self, shape_index: dict, service_table: dict, architectures: dict | None = None):
        self.architectures = ArchitectureTable(architectures or {"rows": []})
        self.shapes = ShapeCatalog(shapes_from_gpu_index(shape_index))
        self.configs: dict[str, DeploymentConfig] = {}
        self.config_warnings: list[str] = []
        for name, config in service_model_configs(service_table["rows"], self.shapes).items():
            config, warnings = canonicalise_config(config, self.shapes, f"service model {name}")
            self.configs[name] = config
            self.config_warnings += warnings
        self.models = [
            CatalogModel(
                id=name,
                name=name,
                source="service",
                task=_task(name),
                parameter_count_b=self.architectures.parameters_b(name) or parameter_count_from_name(name),
                tags={"OCI_AQUA": "active", "aqua_service_model": "true"},
            )
            for name in sorted(self.configs, key=str.lower)
        ]
        self._by_key = {}
        for m in self.models:
            self._by_key.setdefault(m.id.lower(), m)
            self._by_key.setdefault(m.id.split("/")[-1].lower(), m)

    def find_model(self, model_id: str) -> CatalogModel | None:
        return self._by_key.get(model_id.strip().lower())

    def get_model(self, model_id: str) -> CatalogModel:
        model = self.find_model(model_id)
        if model is None:
            raise NotFound("model", model_id, self.suggest(model_id))
        return model

    def suggest(self, model_id: str) -> str:
        close = closest(model_id, self._by_key)
        if close:
            return "did you mean " + " or ".join(repr(m.id) for m in close) + "?"
        return "list the catalog's models to see the ids it knows"

    def model_input(self, model_id: str) -> ModelInput:
        model = self.get_model(model_id)
        found = ModelInput.from_catalog(model, self.configs.get(model.id))
        return found.model_copy(update={"architecture": self.architectures.find(model.id)})


class ArchitectureTable:
    """The bundled architecture facts of the service models (``model_architectures.json``), found by
    full or short name, case-insensitively (OCI names service models by the short name)."""

    def __init__(self, table: dict):
        self.rows: dict[str, Architecture] = {}
        self._by_key: dict[str, Architecture] = {}
        for row in table["rows"]:
            arch = from_table_row(row)
            self.rows[row["model"]] = arch
            self._by_key.setdefault(row["model"].lower(), arch)
            self._by_key.setdefault(row["model"].split("/")[-1].lower(), arch)

    def find(self, name: str | None) -> Architecture | None:
        return self._by_key.get(name.strip().lower()) if name else None

    def parameters_b(self, name: str) -> float | None:
        arch = self.find(name)
        return arch.parameters_b if arch else None


def _task(name: str) -> str:
    lowered = name.lower()
    if "embedding" in lowered or "e5-" in lowered:
        return "text_embedding"
    if "vision" in lowered or "multimodal" in lowered:
        return "image_text_to_text"
    if "speech" in lowered:
        return "speech_recognition"
    if "code" in lowered:
        return "code_synthesis"
    return "text_generation"


@cache  # explicit process-wide cache: the bundled files never change while we run
def bundled_catalog() -> BundledCatalog:
    return BundledCatalog(
        _read_json("gpu_shapes_index.json"),
        _read_json("multimodel_supported_service_models.json"),
        _read_json("model_architectures.json"),
    )


_TOKEN = re.compile(r"\d+(?:\.\d+)*[a-z]?|[a-z]+")


def closest(asked: str, by_key: dict[str, CatalogModel], n: int = 3, cutoff: float = 0.5) -> list[CatalogModel]:
    """The models whose names are nearest ``asked``: spelling similarity, plus the share of the
    asked version and size tokens (``3.1``, ``8b``) a name has — so ``llama-3.1-8b`` offers
    Meta-Llama-3.1-8B before Llama-3.2-1B, which spells closer but is another model."""
    query = asked.strip().lower()
    wanted = set(_TOKEN.findall(query))
    scored: dict[str, tuple[float, CatalogModel]] = {}
    for key, model in by_key.items():
        ratio = difflib.SequenceMatcher(None, query, key).ratio()
        if ratio < cutoff:
            continue
        shared = len(wanted & set(_TOKEN.findall(key))) / len(wanted) if wanted else 0.0
        score = ratio + shared
        if score > scored.get(model.id, (-1.0, model))[0]:
            scored[model.id] = (score, model)
    ranked = sorted(scored.values(), key=lambda pair: -pair[0])
    return [model for _, model in ranked[:n]]
