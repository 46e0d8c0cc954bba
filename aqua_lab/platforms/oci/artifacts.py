"""Models on OCI Data Science: the catalog (service and registered models), their records, where
their artifacts are in Object Storage, and what is read from there — deployment configs the way AQUA
reads them (catalog metadata, then the artifact's ``config/`` folder, then a fine-tuned model's
base), concurrently, and the architecture facts of ``config.json`` beside the weights."""

from __future__ import annotations

import difflib
import json
import os
import posixpath
import re
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from ...catalog import bundled_catalog
from ...domain import Architecture, CatalogModel, DeploymentConfig, Shape, ValidatedDeployment
from ...errors import AquaLabError, InvalidInput, NotFound, Problem
from ...planning.architectures import from_hf_config
from ...planning.configs import parse_deployment_config
from ...planning.sizing import parameter_count_from_name
from ..base import FetchedConfig
from .clients import OciClients
from .wire import custom_metadata

CONFIG_FILE = "deployment_config.json"
RECORD_TTL_S = 300.0  # SDK model records (artifact location, fine-tune source) reused by config reads and creates
ARTIFACT_LOCATION = re.compile(r"oci://([^@/]+)@([^/]+)/(.+)")


# Where AQUA's service models live; a service model's ``artifact_location`` may be relative to it
# (ADS's get_artifact_path, with ADS's defaults and environment variables).
SERVICE_MODELS_BUCKET = os.environ.get("AQUA_SERVICE_MODELS_BUCKET", "service-managed-models")
SERVICE_MODELS_NAMESPACE = os.environ.get("CONDA_BUCKET_NS", "id19sfcrra6z")


def artifact_location(model: Any) -> tuple[str, str, str] | None:
    """(bucket, namespace, prefix) of a model's artifact in Object Storage, from AQUA's metadata: an
    ``oci://`` URI, or a path relative to the service models bucket as ADS resolves it."""
    value = custom_metadata(model).get("artifact_location", "").strip()
    found = ARTIFACT_LOCATION.fullmatch(value)
    if found:
        bucket, namespace, prefix = found.groups()
        return bucket, namespace, prefix.rstrip("/")
    if value and "://" not in value:
        return SERVICE_MODELS_BUCKET, SERVICE_MODELS_NAMESPACE, value.strip("/")
    return None


def artifact_uri(model: Any) -> str | None:
    location = artifact_location(model)
    return f"oci://{location[0]}@{location[1]}/{location[2]}" if location else None


def is_fine_tuned(model: Any) -> bool:
    return "aqua_fine_tuned_model" in (model.freeform_tags or {})


def fine_tune_source(model: Any) -> str | None:
    """The base a fine-tuned model was trained from: its ``fine_tune_source`` metadata (full
    records), else the ``aqua_fine_tuned_model`` tag, ``<base ocid>#<base name>`` as AQUA writes it."""
    if not is_fine_tuned(model):
        return None
    source = custom_metadata(model).get("fine_tune_source") if hasattr(model, "custom_metadata_list") else None
    tag = (model.freeform_tags or {}).get("aqua_fine_tuned_model", "")
    return source or (tag.split("#")[0] if tag.startswith("ocid1.") else None)


class OciModels:
    """The catalog and model records, cached: records and architectures for :data:`RECORD_TTL_S`,
    catalog entries for the platform's life."""

    def __init__(self, clients: OciClients):
        self.c = clients
        self._architectures: dict[str, tuple[float, Architecture | None]] = {}
        self._raw: dict[str, tuple[float, Any]] = {}  # model id → (fetched at, SDK Model)
        self._models: dict[str, CatalogModel] = {}
        self._lock = threading.Lock()

    def list_shapes(self) -> list[Shape]:
        rows = self.c.call("list shapes", self.c.ds.list_model_deployment_shapes, self.c.settings.compartment_id).data
        offered = [
            Shape(name=r.name, core_count=r.core_count, memory_in_gbs=r.memory_in_gbs, shape_series=r.shape_series)
            for r in rows
        ]
        return list(bundled_catalog().shapes.merged_with(offered))

    def _catalog_entry(self, m: Any, source: str) -> CatalogModel:
        tags = dict(m.freeform_tags or {})
        return CatalogModel(
            id=m.id,
            name=m.display_name,
            source=source,
            task=tags.get("task", "text_generation").replace("-", "_"),
            parameter_count_b=parameter_count_from_name(m.display_name),
            fine_tuned_from=fine_tune_source(m),
            tags=tags,
        )

    def check_models(self, deployment: ValidatedDeployment) -> None:
        """ADS's ``validate_input_models``: a multi-model group holds base models only; a stacked
        deployment is a base model and adapters fine-tuned from it (vLLM would fail at run time)."""
        problems = []
        kind = deployment.spec.deployment_type
        for i, m in enumerate(deployment.models):
            if not m.model_id.startswith("ocid1."):
                continue  # a --model_config model of the user's own: no OCI record to read
            record = self.raw_model(m.model_id)
            if is_fine_tuned(record) and kind in ("MULTI", "STACKED"):
                problems.append(
                    Problem(
                        f"models[{i}].model_id",
                        f"{record.display_name} is a fine-tuned model: a {kind.lower()} deployment needs a base model"
                        + (" (multi-model deployments take base models only)" if kind == "MULTI" else ""),
                        f"deploy its base ({fine_tune_source(record) or 'the model it was fine-tuned from'}) "
                        "with this model in fine_tune_weights, deployment_type STACKED",
                    )
                )
            for j, w in enumerate(m.fine_tune_weights):
                adapter = self.raw_model(w.model_id)
                where = f"models[{i}].fine_tune_weights[{j}].model_id"
                if not is_fine_tuned(adapter):
                    problems.append(
                        Problem(
                            where,
                            f"{adapter.display_name} is not a fine-tuned model, so it is no LoRA adapter",
                            "list fine-tuned models (tag aqua_fine_tuned_model) only; deploy a full model on its own",
                        )
                    )
                elif fine_tune_source(adapter) != m.model_id:
                    problems.append(
                        Problem(
                            where,
                            f"{adapter.display_name} was fine-tuned from "
                            f"{fine_tune_source(adapter) or 'an unknown base'}, not from {m.model_id}",
                            "pair each adapter with the base model it was fine-tuned from",
                        )
                    )
        if problems:
            raise InvalidInput(problems)

    def list_models(self) -> list[CatalogModel]:

        compartments = [
            (self.c.settings.service_compartment_id, "service"),
            (self.c.settings.compartment_id, "registered"),
        ]
        models: list[CatalogModel] = []
        seen: set[str] = set()
        for compartment, source in compartments:
            if not compartment:
                continue
            rows = self.c.list_all("list models", self.c.ds.list_models, compartment)
            for m in rows:
                if m.id in seen or m.lifecycle_state != "ACTIVE" or "OCI_AQUA" not in (m.freeform_tags or {}):
                    continue
                seen.add(m.id)
                entry = self._catalog_entry(m, source)
                models.append(entry)
        with self._lock:
            self._models.update({m.id: m for m in models})
        return models

    def get_model(self, model_id: str) -> CatalogModel:
        with self._lock:
            known = self._models.get(model_id) or next(
                (m for m in self._models.values() if m.name.lower() == model_id.lower()), None
            )
        if known:
            return known
        if not model_id.startswith("ocid1."):
            matches = [
                m
                for m in self.list_models()
                if m.name.lower() == model_id.lower() or m.name.split("/")[-1].lower() == model_id.lower()
            ]
            if not matches:
                names = [m.name for m in self.list_models()]
                close = difflib.get_close_matches(model_id, names, n=1, cutoff=0.6)
                hint = f"did you mean {close[0]!r}? " if close else ""
                raise NotFound(
                    "model",
                    model_id,
                    f"{hint}use the model's OCID or its display name (see `aqua-lab model list --platform oci`)",
                )
            return matches[0]
        m = self.raw_model(model_id)
        entry = self._catalog_entry(m, "service" if (m.freeform_tags or {}).get("aqua_service_model") else "registered")
        with self._lock:
            self._models[m.id] = entry
        return entry

    def suggest(self, model_id: str) -> str | None:
        try:
            names = [m.name for m in self.list_models()]
        except AquaLabError:
            return None
        close = difflib.get_close_matches(model_id, names, n=3, cutoff=0.6)
        where = "see `aqua-lab model list --platform oci`"
        return ("did you mean " + " or ".join(repr(c) for c in close) + f"? ({where})") if close else where

    def get_model_config(self, model_id: str) -> DeploymentConfig | None:
        return self._fetch_config(self.get_model(model_id).id)[0]

    def config_warnings(self, model_id: str) -> list[str]:
        return self._fetch_config(self.get_model(model_id).id)[1]

    def raw_model(self, model_id: str) -> Any:
        with self._lock:
            cached = self._raw.get(model_id)
        if cached and time.monotonic() - cached[0] < RECORD_TTL_S:
            return cached[1]
        model = self.c.call("get model", self.c.ds.get_model, model_id).data
        with self._lock:
            self._raw[model_id] = (time.monotonic(), model)
        return model

    def _metadatum(self, model_id: str) -> bytes | None:
        try:
            return self.c.call(
                "get model metadata",
                self.c.ds.get_model_defined_metadatum_artifact_content,
                model_id,
                "DeploymentConfiguration",
            ).data.content
        except NotFound:
            return None

    def fetch_configs(self, model_ids: Sequence[str]) -> dict[str, FetchedConfig]:
        """Resolve many models and fetch their configs in one concurrent round: every config's
        metadata (and the record of each model not yet listed) is requested at once."""
        resolved: dict[str, str] = {}  # id as given → OCID
        for model_id in dict.fromkeys(model_ids):
            try:
                resolved[model_id] = model_id if model_id.startswith("ocid1.") else self.get_model(model_id).id
            except NotFound:
                pass  # left out: the service asks again and reports it with the hint
        ocids = list(dict.fromkeys(resolved.values()))
        if not ocids:
            return {}
        with self._lock:  # models already listed need no record fetch: their config is one call away
            unknown = [i for i in ocids if i not in self._models]
        found: dict[str, FetchedConfig] = {}
        with ThreadPoolExecutor(max_workers=min(128, len(ocids) + len(unknown))) as pool:
            records = {i: pool.submit(self.get_model, i) for i in unknown}
            metadata = {i: pool.submit(self._metadatum, i) for i in ocids}
            for i in ocids:  # the memory model's facts, in the same round
                pool.submit(self.get_model_architecture, i)
            for ocid in ocids:
                try:
                    model = records[ocid].result() if ocid in records else self.get_model(ocid)
                except NotFound:
                    continue
                config, warnings = self._fetch_config(ocid, metadatum=metadata[ocid].result())
                found[ocid] = FetchedConfig(model, config, warnings)
        return {given: found[ocid] for given, ocid in resolved.items() if ocid in found}

    def get_model_architecture(self, model_id: str) -> Architecture | None:
        """From the ``config.json`` beside the model's weights in Object Storage (cached like the
        model records); None when the artifact has none or it cannot be read — the service then falls
        back to the bundled facts by name, and the plan says what is missing."""
        try:
            model_id = model_id if model_id.startswith("ocid1.") else self.get_model(model_id).id
        except AquaLabError:
            return None
        with self._lock:
            cached = self._architectures.get(model_id)
        if cached and time.monotonic() - cached[0] < RECORD_TTL_S:
            return cached[1]
        arch = self._fetch_architecture(model_id)
        with self._lock:
            self._architectures[model_id] = (time.monotonic(), arch)
        return arch

    def _fetch_architecture(self, model_id: str) -> Architecture | None:
        try:
            location = artifact_location(self.raw_model(model_id))
            if not location:
                return None
            bucket, namespace, prefix = location
            name = posixpath.join(prefix, "config.json")
            raw = self.c.call("get object", self.c.os.get_object, namespace, bucket, name).data.content
            return from_hf_config(json.loads(raw), f"oci://{bucket}@{namespace}/{name}")
        except (AquaLabError, ValueError, TypeError):
            return None

    def _fetch_config(
        self, model_id: str, depth: int = 0, metadatum: bytes | None | object = ...
    ) -> tuple[DeploymentConfig | None, list[str]]:

        shapes = bundled_catalog().shapes
        raw = self._metadatum(model_id) if metadatum is ... else metadatum
        if raw is not None:
            name = self.get_model(model_id).name
            loaded = parse_deployment_config(raw.decode("utf-8"), f"{name} DeploymentConfiguration", shapes)
            return loaded.config, loaded.warnings
        model = self.raw_model(model_id)  # its metadata tells where else the config may be
        location = artifact_location(model)
        if location:
            bucket, namespace, prefix = location
            for name in (
                posixpath.join(posixpath.dirname(prefix), "config", CONFIG_FILE),
                posixpath.join(prefix, "config", CONFIG_FILE),
            ):
                try:
                    raw = self.c.call("get object", self.c.os.get_object, namespace, bucket, name).data.content
                except NotFound:
                    continue
                loaded = parse_deployment_config(raw.decode("utf-8"), f"oci://{bucket}@{namespace}/{name}", shapes)
                return loaded.config, loaded.warnings
        custom = custom_metadata(model)
        base = custom.get("fine_tune_source") if (model.freeform_tags or {}).get("aqua_fine_tuned_model") else None
        if base and depth == 0:
            return self._fetch_config(base, depth=1)
        return None, []

    def artifact_path(self, model_id: str) -> str:
        model = self.raw_model(model_id)
        location = artifact_location(model)
        if not location:
            raise InvalidInput(
                Problem(
                    "model_id",
                    f"{model.display_name}: the model artifact has no Object Storage location",
                    "set the model's custom metadata key `artifact_location` to where its artifact is in Object "
                    "Storage (oci://bucket@namespace/prefix), or register the model with its artifact there",
                )
            )
        return f"{model_id}/{location[2]}"  # group members are mounted per model id
