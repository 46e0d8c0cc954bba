"""The OCI platform: Data Science model groups and model deployments through the real ``oci`` SDK.

Every call goes through the SDK (clients from :func:`make_clients`, whose endpoints tests point at
the emulator).  SDK failures become :class:`UpstreamError` with the OCI status and request id.
Model configs are read the way AQUA reads them — catalog metadata, then the artifact's ``config/``
folder in Object Storage, then a fine-tuned model's base — concurrently; the service caches what
they give per region + compartment + model id (:meth:`OciPlatform.cache_scope`).
"""

from __future__ import annotations

import difflib
import json
import os
import posixpath
import re
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

from ...catalog import bundled_catalog
from ...domain import (
    DEFAULT_CONTAINER_IMAGE,
    Architecture,
    CatalogModel,
    Deployment,
    DeploymentConfig,
    DeploymentMetrics,
    DeploymentSpec,
    MetricPoint,
    ModelMetrics,
    ModelState,
    Scaling,
    Shape,
    ValidatedDeployment,
    served_models,
)
from ...errors import AquaLabError, Conflict, InvalidInput, NotFound, Problem, UpstreamError
from ...planning import payloads
from ...planning import scaling as S
from ...planning.architectures import from_hf_config
from ...planning.configs import parse_deployment_config
from ...planning.evaluation import oci_evaluation_form
from ...planning.params import VLLM_PARAMS
from ...planning.sizing import parameter_count_from_name
from ..base import FetchedConfig, Platform
from .auth import OciAuth
from .evaluations import OciEvaluations
from .wire import custom_metadata, to_deployment

T = TypeVar("T")
CONFIG_FILE = "deployment_config.json"
RECORD_TTL_S = 300.0  # SDK model records (artifact location, fine-tune source) reused by config reads and creates
STATES = {"SUCCESS": "ACTIVE", "FAILED": "FAILED", "INCONSISTENT": "STARTING"}


@dataclass(frozen=True)
class Settings:
    compartment_id: str
    project_id: str | None = None
    service_compartment_id: str | None = None  # where AQUA's service models live
    endpoint: str | None = None  # one base URL for every service (the emulator); else OCI's
    retries: int = 4
    retry_base_s: float = 1.0
    timeout_s: tuple[float, float] = (10.0, 60.0)  # connect, read
    container_image: str = DEFAULT_CONTAINER_IMAGE


def make_clients(auth: OciAuth, settings: Settings) -> tuple[Any, Any]:
    """Data Science and Object Storage clients: a bounded retry with backoff (429, 5xx, timeouts)
    and no shared circuit breaker — one module-level breaker in the SDK would let one client's
    failures stop every other client in the process."""
    import oci

    retry = (
        oci.retry.RetryStrategyBuilder(
            max_attempts=max(1, settings.retries),
            total_elapsed_time_seconds=120,
            retry_base_sleep_time_seconds=settings.retry_base_s,
            retry_max_wait_between_calls_seconds=10,
            backoff_type=oci.retry.BACKOFF_FULL_JITTER_VALUE,
        ).get_retry_strategy()
        if settings.retries > 1
        else oci.retry.NoneRetryStrategy()
    )
    common = {
        "signer": auth.signer,
        "retry_strategy": retry,
        "circuit_breaker_strategy": oci.circuit_breaker.NoCircuitBreakerStrategy(),
        "timeout": settings.timeout_s,
    }
    ds_kwargs = {**common, **({"service_endpoint": settings.endpoint} if settings.endpoint else {})}
    os_kwargs = {**common, **({"service_endpoint": settings.endpoint} if settings.endpoint else {})}
    return (
        oci.data_science.DataScienceClient(auth.config, **ds_kwargs),
        oci.object_storage.ObjectStorageClient(auth.config, **os_kwargs),
    )


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


#: what to do about the OCI errors a user meets first (by error code, else by status)
ERROR_HINTS = {
    "LimitExceeded": " — a service limit (quota) of the shape is used up: free instances, ask for a limit "
    "increase (Governance → Limits) or pick another shape",
    "QuotaExceeded": " — a compartment quota is used up: free instances or raise the quota",
    "NotAuthorizedOrNotFound": " — the OCID is wrong, or no IAM policy lets you use it: check the policies "
    "(e.g. allow group … to manage data-science-family in compartment …) and the compartment",
    "401": " — OCI does not know this key: check that the fingerprint in your OCI config matches a public key "
    "uploaded to your user (Identity → Users → API keys), or upload it",
}


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


def _gpus_of_shape(shape: str) -> int:
    found = bundled_catalog().shapes.find(shape)
    return found.gpu_count if found else 1


class OciPlatform(OciEvaluations, Platform):
    name = "oci"
    params_key = VLLM_PARAMS

    def __init__(self, auth: OciAuth, settings: Settings, clients: tuple[Any, Any] | None = None):
        self.auth = auth
        self.settings = settings
        self.ds, self.os = clients or make_clients(auth, settings)
        self._architectures: dict[str, tuple[float, Architecture | None]] = {}
        self._monitoring: Any = None
        # instance counts seen per deployment: OCI's Data Science API reports the current count but
        # no history of autoscaling actions, so this process notes each change it sees
        self._seen_counts: dict[str, int] = {}
        self._scaling_events: dict[str, list[dict[str, Any]]] = {}
        self._raw: dict[str, tuple[float, Any]] = {}  # model id → (fetched at, SDK Model)
        self._models: dict[str, CatalogModel] = {}
        self._groups: dict[str, Any] = {}  # model group id → SDK ModelGroup (immutable once made)
        self._lock = threading.Lock()

    @classmethod
    def from_environment(cls, auth: OciAuth, env: dict[str, str] | None = None, **overrides: Any) -> OciPlatform:
        """Compartment/project defaults from a notebook session's variables, then aqua_lab's own."""
        env = dict(os.environ if env is None else env)
        compartment = (
            overrides.pop("compartment_id", None)
            or env.get("AQUA_LAB_COMPARTMENT_OCID")
            or env.get("NB_SESSION_COMPARTMENT_OCID")
            or env.get("PROJECT_COMPARTMENT_OCID")
            or auth.compartment_id
        )
        if not compartment:
            raise InvalidInput(
                Problem(
                    "compartment_id",
                    "no compartment to work in",
                    "pass --compartment_id, set c.AquaLab.compartment_id or AQUA_LAB_COMPARTMENT_OCID",
                )
            )
        settings = Settings(
            compartment_id=compartment,
            project_id=overrides.pop("project_id", None) or env.get("AQUA_LAB_PROJECT_OCID") or env.get("PROJECT_OCID"),
            service_compartment_id=overrides.pop("service_compartment_id", None)
            or env.get("AQUA_LAB_SERVICE_COMPARTMENT_OCID")
            or env.get("ODSC_MODEL_COMPARTMENT_OCID"),
            endpoint=overrides.pop("endpoint", None) or env.get("AQUA_LAB_OCI_ENDPOINT"),
            **overrides,
        )
        return cls(auth, settings)

    def cache_scope(self) -> tuple[str, ...]:
        return (self.name, self.auth.region or "", self.settings.compartment_id)

    # SDK calls ------------------------------------------------------------------------------------

    def _call(self, what: str, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        import oci
        from circuitbreaker import CircuitBreakerError

        if getattr(fn, "__name__", "").startswith("create_") and "opc_retry_token" not in kwargs:
            # one token per create, kept by the SDK across its retries: a create whose answer was
            # lost and is sent again gives back the same resource, not a second one (OCI keeps
            # tokens for 24 h; the SDK adds none by itself without a retry strategy)
            kwargs["opc_retry_token"] = uuid.uuid4().hex
        try:
            return fn(*args, **kwargs)
        except oci.exceptions.ServiceError as exc:
            if exc.status == 404 and what.startswith("get "):
                raise NotFound(what.removeprefix("get "), str(args[0]) if args else "", exc.message) from None
            hint = ERROR_HINTS.get(exc.code) or ERROR_HINTS.get(str(exc.status), "")
            raise UpstreamError(
                f"OCI {what} failed: {exc.status} {exc.code}: {exc.message}{hint}", exc.status, exc.request_id
            ) from None
        except CircuitBreakerError:
            raise UpstreamError(f"OCI {what}: too many recent failures, calls paused", 503) from None
        except (oci.exceptions.RequestException, oci.exceptions.ConnectTimeout) as exc:
            url = getattr(getattr(self.ds, "base_client", None), "endpoint", None) or self.settings.endpoint
            raise UpstreamError(
                f"OCI {what}: cannot reach the service at {url} ({type(exc).__name__}) — check the network, "
                "the region in your OCI config, or AQUA_LAB_OCI_ENDPOINT",
                502,
            ) from None

    def _list_all(self, what: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> list[Any]:
        """Every page of a list call.  Not ``oci.pagination.list_call_get_all_results``: it wraps each
        page in the SDK's default retry strategy (8 attempts, up to 600 s) on top of the client's own,
        so a persistent 503 was reported after minutes instead of after the documented 4 attempts."""
        items: list[Any] = []
        page = None
        while True:
            response = self._call(what, fn, *args, **({"page": page} if page else {}), **kwargs)
            items.extend(response.data if isinstance(response.data, list) else response.data.items)
            page = response.next_page
            if not response.has_next_page or not page:
                return items

    def _sdk(self, data: dict, type_name: str) -> Any:
        """Our wire-format body as the SDK's model object (the SDK serialises it back unchanged)."""
        return self.ds.base_client.deserialize_response_data(json.dumps(data).encode(), type_name)

    # catalog --------------------------------------------------------------------------------------

    def list_shapes(self) -> list[Shape]:
        rows = self._call("list shapes", self.ds.list_model_deployment_shapes, self.settings.compartment_id).data
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
            record = self._raw_model(m.model_id)
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
                adapter = self._raw_model(w.model_id)
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

        compartments = [(self.settings.service_compartment_id, "service"), (self.settings.compartment_id, "registered")]
        models: list[CatalogModel] = []
        seen: set[str] = set()
        for compartment, source in compartments:
            if not compartment:
                continue
            rows = self._list_all("list models", self.ds.list_models, compartment)
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
        m = self._raw_model(model_id)
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

    def _raw_model(self, model_id: str) -> Any:
        with self._lock:
            cached = self._raw.get(model_id)
        if cached and time.monotonic() - cached[0] < RECORD_TTL_S:
            return cached[1]
        model = self._call("get model", self.ds.get_model, model_id).data
        with self._lock:
            self._raw[model_id] = (time.monotonic(), model)
        return model

    def _metadatum(self, model_id: str) -> bytes | None:
        try:
            return self._call(
                "get model metadata",
                self.ds.get_model_defined_metadatum_artifact_content,
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
            location = artifact_location(self._raw_model(model_id))
            if not location:
                return None
            bucket, namespace, prefix = location
            name = posixpath.join(prefix, "config.json")
            raw = self._call("get object", self.os.get_object, namespace, bucket, name).data.content
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
        model = self._raw_model(model_id)  # its metadata tells where else the config may be
        location = artifact_location(model)
        if location:
            bucket, namespace, prefix = location
            for name in (
                posixpath.join(posixpath.dirname(prefix), "config", CONFIG_FILE),
                posixpath.join(prefix, "config", CONFIG_FILE),
            ):
                try:
                    raw = self._call("get object", self.os.get_object, namespace, bucket, name).data.content
                except NotFound:
                    continue
                loaded = parse_deployment_config(raw.decode("utf-8"), f"oci://{bucket}@{namespace}/{name}", shapes)
                return loaded.config, loaded.warnings
        custom = custom_metadata(model)
        base = custom.get("fine_tune_source") if (model.freeform_tags or {}).get("aqua_fine_tuned_model") else None
        if base and depth == 0:
            return self._fetch_config(base, depth=1)
        return None, []

    # deployments ----------------------------------------------------------------------------------

    def _artifact_path(self, model_id: str) -> str:
        model = self._raw_model(model_id)
        location = artifact_location(model)
        if not location:
            raise InvalidInput(
                Problem(
                    "model_id",
                    f"{model.display_name}: the model artifact has no Object Storage location",
                    "register the model with its artifact in Object Storage",
                )
            )
        return f"{model_id}/{location[2]}"  # group members are mounted per model id

    def _where(self, compartment_id: str | None, project_id: str | None) -> tuple[str, str]:
        """The request's compartment and project, else the configured ones; a project is required."""
        project = project_id or self.settings.project_id
        if not project:
            raise InvalidInput(
                Problem(
                    "project_id",
                    "no Data Science project given",
                    "pass --project_id (REST: project_id), set c.AquaLab.project_id or AQUA_LAB_PROJECT_OCID",
                )
            )
        return compartment_id or self.settings.compartment_id, project

    def create_deployment(self, deployment: ValidatedDeployment) -> Deployment:
        spec = deployment.spec
        compartment, project = self._where(spec.compartment_id, spec.project_id)
        image = spec.container_image_uri or self.settings.container_image
        if spec.deployment_type == "SINGLE":
            first = deployment.models[0]
            body = payloads.model_deployment_request(
                deployment, image, compartment, project, model_artifact_prefix=self._artifact_path(first.model_id)
            )
        else:
            paths = {m.model_id: self._artifact_path(m.model_id) for m in deployment.models}
            uris = {m.model_id: artifact_uri(self._raw_model(m.model_id)) for m in deployment.models}
            group_body = payloads.model_group_request(deployment, paths, compartment, project, uris)
            group = self._call(
                "create model group", self.ds.create_model_group, self._sdk(group_body, "CreateBaseModelGroupDetails")
            ).data
            body = payloads.model_deployment_request(deployment, image, compartment, project, model_group_id=group.id)
            try:
                created = self._call(
                    "create model deployment",
                    self.ds.create_model_deployment,
                    self._sdk(body, "CreateModelDeploymentDetails"),
                ).data
            except AquaLabError:
                self._drop_group(group.id)  # refused (quota, policy): leave no orphan group behind
                raise
            return self._created(created, group)
        created = self._call(
            "create model deployment", self.ds.create_model_deployment, self._sdk(body, "CreateModelDeploymentDetails")
        ).data
        return self._created(created, None)

    def _created(self, created: Any, group: Any | None) -> Deployment:
        """The deployment just made, read back; when that read fails the deployment still exists
        (and runs up): it is described from the create's own answer, with a warning saying how to
        follow it, so its OCID is never lost and the create is not run twice."""
        try:
            return self.get_deployment(created.id)
        except AquaLabError as exc:
            deployment = to_deployment(created, group, 0, _gpus_of_shape, self.name, self.auth.region)
            deployment.scaling = self._scaling(created)
            deployment.warnings.append(
                f"deployment {created.id} was created ({created.lifecycle_state}) but reading it back failed: "
                f"{exc}; it goes on: aqua-lab deployment get --model_deployment_id {created.id}"
            )
            return deployment

    def _drop_group(self, group_id: str) -> None:
        try:
            self._call("delete model group", self.ds.delete_model_group, group_id)
        except AquaLabError:
            pass  # best effort: `model_group list` shows what is left

    def _group(self, group_id: str) -> Any | None:
        # a group's members never change (an update makes a new group): read each one once, so a
        # wait polls the deployment and its own work request, not the group again and again
        with self._lock:
            cached = self._groups.get(group_id)
        if cached is not None:
            return cached
        try:
            group = self._call("get model group", self.ds.get_model_group, group_id).data
        except (NotFound, UpstreamError):
            return None
        with self._lock:
            self._groups[group_id] = group
        return group

    def _to_deployment(self, md: Any, live: bool = False) -> Deployment:
        config = md.model_deployment_configuration_details
        group = None
        if config.deployment_type == "MODEL_GROUP":
            group = self._group(config.model_group_configuration_details.model_group_id)
        deployment = to_deployment(md, group, self._progress(md, live), _gpus_of_shape, self.name, self.auth.region)
        deployment.scaling = self._scaling(md)
        if deployment.scaling and deployment.shape_info:  # ADS's instance_count: the instances running now
            deployment.shape_info.instance_count = deployment.scaling.instance_count
        return deployment

    # scaling and metrics --------------------------------------------------------------------------

    def scaling_refusal(self, spec: DeploymentSpec) -> None:
        return None  # OCI Model Deployment runs every policy the planning core accepts

    def _scaling(self, md: Any) -> Scaling | None:
        config = md.model_deployment_configuration_details
        details = (
            config.infrastructure_configuration_details
            if config.deployment_type == "MODEL_GROUP"
            else config.model_configuration_details
        )
        if details is None or details.scaling_policy is None:
            return None
        policy = self.ds.base_client.sanitize_for_serialization(details.scaling_policy)
        low, high = S.instance_bounds(policy)
        system = getattr(md, "model_deployment_system_data", None)
        count = getattr(system, "current_instance_count", None) or S.initial_instances(policy)
        with self._lock:
            before = self._seen_counts.get(md.id)
            if before is not None and before != count:
                events = self._scaling_events.setdefault(md.id, [])
                events.append(
                    {
                        "time": datetime.now(UTC).isoformat(),
                        "from_count": before,
                        "to_count": count,
                        "reason": "OCI changed the instance count"
                        + (" (autoscaling)" if policy.get("policyType") == "AUTOSCALING" else ""),
                    }
                )
                del events[:-20]
            self._seen_counts[md.id] = count
            events = list(self._scaling_events.get(md.id, []))
        return Scaling(
            policy=policy,
            instance_count=count,
            minimum_instance_count=low,
            maximum_instance_count=high,
            bandwidth_mbps=details.bandwidth_mbps,
            events=events,
        )

    def update_scaling(
        self, deployment_id: str, scaling_policy: dict[str, Any] | None, bandwidth_mbps: int | None = None
    ) -> Deployment:
        """Instance count, autoscaling policy and load-balancer bandwidth change in place on OCI
        (UpdateModelDeploymentDetails; ZDT for model groups: the endpoint stays, instances are added
        or drained).  The shape, the models or the deployment type need a new model group (update)
        or a new deployment."""
        current = self._call("get deployment", self.ds.get_model_deployment, deployment_id).data
        if current.lifecycle_state not in ("ACTIVE", "NEEDS_ATTENTION"):
            raise Conflict(f"deployment {deployment_id} is {current.lifecycle_state}; only a running one is rescaled")
        self._scaling(current)  # note the count before the change
        kind = current.model_deployment_configuration_details.deployment_type
        body = payloads.update_scaling_request(kind, scaling_policy, bandwidth_mbps)
        try:
            self._call(
                "update deployment",
                self.ds.update_model_deployment,
                deployment_id,
                self._sdk(body, "UpdateModelDeploymentDetails"),
            )
        except UpstreamError as exc:
            if exc.status == 409:
                raise Conflict(str(exc)) from None
            raise
        return self.get_deployment(deployment_id)

    def _monitoring_client(self) -> Any:
        if self._monitoring is None:
            import oci

            kwargs = {"signer": self.auth.signer, "timeout": self.settings.timeout_s}
            if self.settings.endpoint:
                kwargs["service_endpoint"] = self.settings.endpoint
            self._monitoring = oci.monitoring.MonitoringClient(self.auth.config, **kwargs)
        return self._monitoring

    def deployment_metrics(self, deployment_id: str, window_s: float = 300) -> DeploymentMetrics:
        """OCI Monitoring's model-deployment metrics over the window: request counts, latency and
        utilisation are per deployment (OCI does not split them by model); each model row carries
        the instance count.  Time to first token and tokens/s are not among OCI's metrics."""
        import oci

        deployment = self.get_deployment(deployment_id)
        end = time.time()
        start = end - window_s
        step = max(60, int(window_s // 30) // 60 * 60)  # ≤ 30 points, whole minutes (OCI's smallest interval)
        interval = f"{step // 60}m"
        queries = {
            "requests": f'PredictRequestCount[{interval}]{{resourceId = "{deployment_id}"}}.sum()',
            "latency_p95_ms": f'PredictLatency[{interval}]{{resourceId = "{deployment_id}"}}.percentile(0.95)',
            "cpu_utilization": f'CpuUtilization[{interval}]{{resourceId = "{deployment_id}"}}.mean()',
        }
        series: dict[str, list[MetricPoint]] = {}
        client = self._monitoring_client()
        for key, query in queries.items():
            details = oci.monitoring.models.SummarizeMetricsDataDetails(
                namespace="oci_datascience_modeldeploy",
                query=query,
                start_time=datetime.fromtimestamp(start, UTC),
                end_time=datetime.fromtimestamp(end, UTC),
            )
            rows = self._call("summarize metrics", client.summarize_metrics_data, self.settings.compartment_id, details)
            points = [p for row in rows.data for p in row.aggregated_datapoints or []]
            series[key] = [MetricPoint(time=p.timestamp.timestamp(), value=p.value) for p in points]
        requests = int(sum(p.value or 0 for p in series["requests"]))
        count = deployment.scaling.instance_count if deployment.scaling else None
        return DeploymentMetrics(
            deployment_id=deployment_id,
            platform=self.name,
            window_s=window_s,
            source="OCI Monitoring (oci_datascience_modeldeploy: PredictRequestCount, PredictLatency, "
            "CpuUtilization), per deployment",
            models=[ModelMetrics(model_name=name, replicas=count) for name in deployment.served_names()],
            deployment={**series, "total_requests": [MetricPoint(time=end, value=requests)]},
        )

    def _progress(self, md: Any, live: bool = False) -> int:
        """Percent done of the operation under way.  ``live``: also for an ACTIVE deployment, which
        a LIVE update keeps ACTIVE while its work request runs (a get asks; a list does not)."""
        if md.lifecycle_state == "ACTIVE" and not live:
            return 100
        if md.lifecycle_state not in ("CREATING", "UPDATING", "ACTIVE"):
            return 0
        try:
            requests = self.ds.list_work_requests(md.compartment_id or self.settings.compartment_id, resource_id=md.id)
        except Exception:  # progress is a nicety: never fail a get because of it
            return 100 if md.lifecycle_state == "ACTIVE" else 0
        # the operation under way is the latest work request; earlier ones (the finished create
        # under an update) would read 100 % from the first poll
        ordered = sorted(enumerate(requests.data), key=lambda iw: (str(iw[1].time_accepted or ""), iw[0]))
        latest = ordered[-1][1] if ordered else None
        if md.lifecycle_state == "ACTIVE":
            running = latest is not None and latest.status in ("ACCEPTED", "IN_PROGRESS")
            return int(latest.percent_complete or 0) if running else 100
        return int(latest.percent_complete or 0) if latest else 0

    def list_deployments(self) -> list[Deployment]:

        rows = self._list_all("list model deployments", self.ds.list_model_deployments, self.settings.compartment_id)
        return [
            self._to_deployment(md)
            for md in rows
            if "OCI_AQUA" in (md.freeform_tags or {}) and md.lifecycle_state != "DELETED"
        ]

    def get_deployment(self, deployment_id: str) -> Deployment:
        md = self._call("get deployment", self.ds.get_model_deployment, deployment_id).data
        deployment = self._to_deployment(md, live=True)
        if deployment.state in ("ACTIVE", "NEEDS_ATTENTION", "CREATING"):
            deployment.model_states = self._model_states(md, deployment)
        return deployment

    def _model_states(self, md: Any, deployment: Deployment) -> list[ModelState]:
        """OCI reports states per member model; name them by the served names users know."""
        try:
            rows = self._call(
                "list model states", self.ds.list_model_deployment_model_states, md.id, self.settings.compartment_id
            ).data
        except UpstreamError:
            return []
        served: dict[str, list[str]] = {}
        for name, model_id in served_models(deployment.models):
            served.setdefault(model_id, []).append(name)
        return [
            ModelState(model_name=name, model_id=r.model_id, state=STATES.get(r.state, "STARTING"))
            for r in rows
            for name in served.get(r.model_id, [r.inference_key or r.display_name or r.model_id])
        ]

    def model_states(self, deployment_id: str) -> list[ModelState]:
        return self.get_deployment(deployment_id).model_states

    def _action(self, deployment_id: str, what: str, fn: Callable[..., Any]) -> Deployment:
        try:
            self._call(f"{what} deployment", fn, deployment_id)
        except UpstreamError as exc:
            if exc.status == 409:
                raise Conflict(str(exc)) from None
            raise
        return self.get_deployment(deployment_id)

    def activate(self, deployment_id: str) -> Deployment:
        return self._action(deployment_id, "activate", self.ds.activate_model_deployment)

    def deactivate(self, deployment_id: str) -> Deployment:
        return self._action(deployment_id, "deactivate", self.ds.deactivate_model_deployment)

    def delete(self, deployment_id: str) -> Deployment:
        return self._action(deployment_id, "delete", self.ds.delete_model_deployment)

    def update_models(self, deployment_id: str, deployment: ValidatedDeployment) -> Deployment:
        """Live update: a new model group replaces the old one (members are immutable) — LIVE for a
        stacked group (adapters added or removed without downtime), ZDT otherwise."""
        current = self._call("get deployment", self.ds.get_model_deployment, deployment_id).data
        config = current.model_deployment_configuration_details
        if config.deployment_type != "MODEL_GROUP":
            raise Conflict(f"{deployment_id} is not a model-group deployment; only those can be updated live")
        spec = deployment.spec
        shape = config.infrastructure_configuration_details.instance_configuration.instance_shape_name
        if spec.instance_shape != shape:
            raise InvalidInput(
                Problem(
                    "instance_shape",
                    f"the deployment runs on {shape}, not {spec.instance_shape}; a live update keeps the shape",
                    f"pass --instance_shape {shape}, or create a new deployment on {spec.instance_shape}",
                )
            )
        compartment, project = current.compartment_id, current.project_id
        paths = {m.model_id: self._artifact_path(m.model_id) for m in deployment.models}
        uris = {m.model_id: artifact_uri(self._raw_model(m.model_id)) for m in deployment.models}
        group = self._call(
            "create model group",
            self.ds.create_model_group,
            self._sdk(
                payloads.model_group_request(deployment, paths, compartment, project, uris),
                "CreateBaseModelGroupDetails",
            ),
        ).data
        body: dict[str, Any] = {
            "modelDeploymentConfigurationDetails": {
                "deploymentType": "MODEL_GROUP",
                "updateType": "LIVE" if spec.deployment_type == "STACKED" else "ZDT",
                "modelGroupConfigurationDetails": {"modelGroupId": group.id},
            },
            # ADS finds a deployment's models (get, evaluation create) by this tag, not by the group
            # the deployment runs: it must follow the group, or ADS shows the old models and fails
            # once the old group is deleted
            "freeformTags": {**(current.freeform_tags or {}), "aqua_model_id": group.id},
        }
        if spec.display_name and spec.display_name != current.display_name:
            body["displayName"] = spec.display_name
        if spec.description is not None and spec.description != current.description:
            body["description"] = spec.description
        try:
            self._call(
                "update deployment",
                self.ds.update_model_deployment,
                deployment_id,
                self._sdk(body, "UpdateModelDeploymentDetails"),
            )
        except AquaLabError:
            self._drop_group(group.id)
            raise
        return self.get_deployment(deployment_id)

    def _group_users(self, compartments: Sequence[str]) -> dict[str, list[str]]:
        """Model group id → the deployments using it, in these compartments.  A group may serve
        several deployments; one is in use by the group it runs and by the group its
        ``aqua_model_id`` tag names (during an update the new one, before the deployment switches)."""
        users: dict[str, list[str]] = {}
        for compartment in dict.fromkeys(compartments):
            rows = self._list_all("list model deployments", self.ds.list_model_deployments, compartment)
            for md in rows:
                config = md.model_deployment_configuration_details
                if md.lifecycle_state == "DELETED" or config.deployment_type != "MODEL_GROUP":
                    continue
                tagged = (md.freeform_tags or {}).get("aqua_model_id")
                for group_id in dict.fromkeys([config.model_group_configuration_details.model_group_id, tagged]):
                    if group_id:
                        users.setdefault(group_id, []).append(md.id)
        return users

    def list_model_groups(self) -> list[dict]:
        """The compartment's model groups and the deployments using each: an update replaces its
        group, so the old one is left for ``model_group delete`` once the update is done."""
        groups = self._list_all("list model groups", self.ds.list_model_groups, self.settings.compartment_id)
        users = self._group_users([self.settings.compartment_id])
        return [
            {
                "id": g.id,
                "display_name": g.display_name,
                "state": g.lifecycle_state,
                "created_on": str(g.time_created),
                "in_use_by": users.get(g.id, []),
            }
            for g in groups
            if g.lifecycle_state != "DELETED"
        ]

    def delete_model_group(self, group_id: str) -> dict:
        """Refused while any deployment uses the group — looked for in the group's own compartment
        too (a deployment elsewhere may use it), and OCI's own refusal kept as a Conflict."""
        group = self._call("get model group", self.ds.get_model_group, group_id).data
        users = self._group_users([self.settings.compartment_id, group.compartment_id]).get(group_id)
        if users:
            raise Conflict(
                f"model group {group_id} is still used by deployment {', '.join(users)}; it is kept — "
                "delete those deployments first"
            )
        try:
            self._call("delete model group", self.ds.delete_model_group, group_id)
        except UpstreamError as exc:
            if exc.status == 409:
                raise Conflict(f"model group {group_id} is kept: {exc}") from None
            raise
        with self._lock:
            self._groups.pop(group_id, None)
        return {"id": group_id, "state": "DELETED"}

    def evaluation_form(self) -> dict[str, Any]:
        return oci_evaluation_form()

    def logs(self, deployment_id: str, model_name: str | None = None, lines: int = 200) -> str:
        deployment = self.get_deployment(deployment_id)
        return (
            f"{deployment.display_name} is {deployment.state}. OCI keeps deployment logs in OCI Logging: "
            f"create the deployment with log_group_id and access_log_id/predict_log_id to see them there."
        )

    # inference ------------------------------------------------------------------------------------

    def inference_request(self, deployment: Deployment, route: str, body: bytes, stream: bool) -> tuple[str, dict]:
        """``<endpoint>/predict`` signed by our signer, the OpenAI route in the ``route`` header."""
        from oci._vendor import requests

        url = f"{deployment.endpoint}/predict"
        headers = {
            "content-type": "application/json",
            "route": route,
            "enable-streaming": str(stream).lower(),
            "accept": "text/event-stream" if stream else "application/json",
        }
        prepared = requests.Request("POST", url, headers=headers, data=body).prepare()
        self.auth.signer(prepared)
        return url, dict(prepared.headers)
