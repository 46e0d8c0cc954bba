"""From a ``MULTI_MODEL_CONFIG`` entry to the model-server processes that serve it.

The runtime reads the same ``{"models": [{"params", "model_path", "fine_tune_weights"}]}`` the OCI
container reads.  ``--served-model-name`` and ``--tensor-parallel-size`` come out of ``params`` and
become the engine's own options: for llama.cpp (``llama-server``) the alias and its thread count (the
share of cores the planner gave the model), for vLLM the served name, the tensor-parallel size and
``CUDA_VISIBLE_DEVICES``.  For llama.cpp the model's other flags pass an allow-list and are translated
(:mod:`.llama_flags`: per-request context and slots become ``--ctx-size``/``--parallel``); vLLM gets
them unchanged, as the OCI container does.
"""

from __future__ import annotations

import itertools
import sys
from dataclasses import dataclass, field
from functools import cache, cached_property
from typing import Any

from ...planning import params as P
from .llama_flags import EngineArgs, engine_args

LLAMA_CPP = "llama_cpp"
VLLM = "vllm"
CPU, CUDA = "cpu", "cuda"  # where a llama.cpp server runs its model (its slots are cores, or GPUs)
ALL_LAYERS = "999"  # llama-server's -ngl: more than any model has, so every layer is offloaded
PROMPT_CACHE_MIB = 256
# A sleeping SmolLM2 server kept 35.5 MiB of 309 (88.5 % freed) with glibc's defaults, 29.0 with this
# threshold (90.8 %; 31.7 after later wakes): the rest is the binary and libraries (~11 MiB, shared by
# every server), the HTTP server, chat template and slots on the heap, and thread stacks (docs/local.md)
SLEEP_TRIM_BYTES = 64 * 1024
VLLM_DEFAULT_SEQS = 256


@dataclass
class ServerSpec:
    """One model-server process: the names it answers to, its command and where it runs."""

    served_name: str
    model_id: str
    engine: str
    slots: list[int]  # cores (CPU) or GPU indices
    model_path: str
    flags: list[P.Flag] = field(default_factory=list)
    # LoRA adapters, served name → file: all loaded by the base's one server (vLLM --lora-modules,
    # llama.cpp --lora), the adapter picked per request by its served name
    lora_modules: dict[str, str] = field(default_factory=dict)
    seed: int = P.SEED
    replica: int = 0  # which of the model's replicas (instance_count > 1: one server each)
    replicas: int = 1
    idle_sleep_s: int | None = None  # llama.cpp frees the weights and KV after this long idle
    device: str = CPU  # llama.cpp: CUDA when its slots are GPUs (the CUDA build of llama-server)
    # vLLM before --kv-cache-memory-bytes: the fractions of the GPUs it shares taken by servers before it
    gpu_fraction_before: float = 0.0

    @property
    def names(self) -> list[str]:
        return [self.served_name, *self.lora_modules]

    @property
    def label(self) -> str:
        """The served name, with the replica number when there are several (logs, metrics, messages)."""
        return self.served_name if self.replicas == 1 else f"{self.served_name}#{self.replica + 1}"

    @cached_property
    def llama_args(self) -> EngineArgs:
        """The per-request context, the slots and the other llama-server options of this model (parsed
        once: the router asks for the context and the slots on every request)."""
        return engine_args(self.flags)

    def llama_context(self) -> int | None:
        """Tokens one request may use (prompt and answer), where the engine has a fixed per-slot context."""
        return self.llama_args.context if self.engine == LLAMA_CPP else None

    @property
    def concurrency(self) -> int:
        """Requests the server decodes at once (llama.cpp's slots; vLLM's --max-num-seqs or its default)."""
        if self.engine == LLAMA_CPP:
            return self.llama_args.slots
        for flag in self.flags:
            if flag.key == "max-num-seqs" and isinstance(flag.value, str) and flag.value.isdigit():
                return int(flag.value)
        return VLLM_DEFAULT_SEQS

    def lora_selection(self, name: str) -> list[dict[str, Any]] | None:
        """llama.cpp: the request's ``lora`` field that makes the base's server answer as ``name``.
        Every adapter is listed, the base's requests included: a request without the field would
        take the server's global scales *without* clearing a slot's KV cache computed with an adapter
        (llama-server compares the lists only when the field is given)."""
        if self.engine != LLAMA_CPP or not self.lora_modules:
            return None
        return [{"id": i, "scale": 1.0 if n == name else 0.0} for i, n in enumerate(self.lora_modules)]

    def command(self, port: int) -> list[str]:
        """The server's command line.  It never holds a key: any user of the machine can read it
        (``/proc/PID/cmdline``); the key goes through :meth:`environment`."""
        if self.engine == LLAMA_CPP:
            from .engine_build import binary_path

            threads = str(max(1, len(self.slots)))
            engine = self.llama_args
            cmd = [
                str(binary_path()),
                "--model",
                self.model_path,
                "--alias",
                self.served_name,
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--threads",
                threads,
                "--threads-batch",
                threads,
                "--seed",
                str(self.seed),
                # one context per slot: every request gets the whole per-request context it was planned
                "--parallel",
                str(engine.slots),
                "--ctx-size",
                str(engine.context * engine.slots),
                "--no-kv-unified",
                # llama-server keeps up to 8 GiB of old prompts per process by default; with
                # adapters none at all: a cached prompt's KV is reloaded into a slot whatever adapter
                # computed it, so one adapter's prefix would answer for another
                "--cache-ram",
                "0" if self.lora_modules else str(PROMPT_CACHE_MIB),
                "--no-webui",
                "--metrics",
                # load-time facts (CPU features used, model and KV buffer sizes) go to the model's log
                "--log-verbosity",
                "4",
            ]
            if self.device == CUDA:
                cmd += self.gpu_args(binary_path())
            if self.idle_sleep_s:  # llama-server's own sleep: the process stays, its memory goes
                cmd += ["--sleep-idle-seconds", str(self.idle_sleep_s)]
            for path in self.lora_modules.values():  # adapter ids follow this order
                cmd += ["--lora", path]
            if self.lora_modules:  # every scale 0 until a request names its adapter
                cmd.append("--lora-init-without-apply")
            return cmd + engine.args
        cmd = [
            sys.executable,
            "-m",
            "vllm.entrypoints.openai.api_server",
            "--model",
            self.model_path,
            "--served-model-name",
            self.served_name,
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--tensor-parallel-size",
            str(max(1, len(self.slots))),
            "--seed",
            str(self.seed),
        ]
        if self.lora_modules:
            cmd += ["--enable-lora", "--lora-modules", *(f"{n}={p}" for n, p in self.lora_modules.items())]
        for flag in vllm_memory_flags(self.flags, installed_vllm_version(), self.gpu_fraction_before):
            if self.lora_modules and flag.key == "enable-lora":
                continue
            if flag.key == "api-key":  # the router's own secret guards the server, never a visible one
                continue
            cmd += flag.argv()
        return cmd

    def gpu_args(self, binary) -> list[str]:
        """llama-server on its GPUs (``CUDA_VISIBLE_DEVICES`` numbers them CUDA0…): every layer offloaded,
        layers split evenly over the model's GPUs, and the sizes the plan gave it, never llama.cpp's
        own guess (``--fit off`` where the build has ``--fit``, which would shrink or grow the context to
        whatever memory is free at start: with two models on one GPU, whichever starts first)."""
        count = max(1, len(self.slots))
        args = [
            "--device",
            ",".join(f"CUDA{i}" for i in range(count)),
            "--n-gpu-layers",
            ALL_LAYERS,
            "--split-mode",
            "layer",
            "--tensor-split",
            ",".join("1" for _ in range(count)),
        ]
        from .engine_build import binary_options

        if "--fit" in binary_options(str(binary)):
            args += ["--fit", "off"]
        return args

    @property
    def cpu_cores(self) -> list[int] | None:
        """The cores the server is pinned to: a CPU llama.cpp server's slots; none on a GPU."""
        return self.slots if self.engine == LLAMA_CPP and self.device == CPU else None

    def environment(self, api_key: str | None = None) -> dict[str, str]:
        """The server's environment; ``api_key`` is the one key it answers to (the environment of a
        process is readable by its owner only, where its command line is readable by anyone)."""
        if self.engine == VLLM:
            env = {"CUDA_VISIBLE_DEVICES": ",".join(map(str, self.slots)), "VLLM_ALLOW_RUNTIME_LORA_UPDATING": "true"}
        elif self.device == CUDA:
            env = {"CUDA_VISIBLE_DEVICES": ",".join(map(str, self.slots)), "OMP_NUM_THREADS": "1"}
        else:
            env = {"OMP_NUM_THREADS": str(max(1, len(self.slots)))}
            if self.idle_sleep_s:  # asleep, glibc gives freed heap back instead of keeping it for reuse
                env["MALLOC_TRIM_THRESHOLD_"] = str(SLEEP_TRIM_BYTES)
        if api_key:
            env["VLLM_API_KEY" if self.engine == VLLM else "LLAMA_API_KEY"] = api_key
        return env


# vLLM versions and how a model is held to its memory budget on a GPU it shares (docs/local.md):
KV_CACHE_BYTES_SINCE = (0, 10, 1)  # --kv-cache-memory-bytes (vllm-project/vllm#21489): no profiling at all
V1_DEFAULT_SINCE = (0, 8, 0)  # the V1 engine's profiler counted other processes' memory as its own…
PER_INSTANCE_AGAIN_SINCE = (0, 9, 1)  # …until vllm-project/vllm#18974 made the fraction per instance again


@cache  # every server command line and supervisor tick asks; reading the metadata scans sys.path each time
def installed_vllm_version() -> tuple[int, ...] | None:
    """The installed vLLM's release, read once per process (a vLLM installed later is seen after a restart,
    as the running servers' own imports would be)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return parse_version(version("vllm"))
    except PackageNotFoundError:
        return None


def parse_version(text: str) -> tuple[int, ...]:
    """Release tuple: 0.10.1.post1 → (0, 10, 1); 0.9.2rc1 → (0, 9, 2)."""
    parts = []
    for piece in text.split(".")[:3]:
        digits = "".join(itertools.takewhile(str.isdigit, piece))
        parts.append(int(digits or 0))
    return tuple(parts)


def vllm_memory_flags(flags: list[P.Flag], version: tuple[int, ...] | None, before: float = 0.0) -> list[P.Flag]:
    """A plan's budget flags as the installed vLLM takes them.  From 0.10.1 ``--kv-cache-memory-bytes``
    sizes the KV cache with no profiling, so start order cannot matter.  Older versions do not know the
    flag (argparse would refuse it): the budget is the ``--gpu-memory-utilization`` fraction the plan
    wrote beside it, per instance — except in the V1 releases 0.8.0–0.9.0, whose profiler counted
    every process's memory on the GPU, so a server's fraction there adds those started before it
    (``before``; servers sharing a GPU start in model order)."""
    if version is None or version >= KV_CACHE_BYTES_SINCE or not any(f.key == "kv-cache-memory-bytes" for f in flags):
        return flags
    kept = [f for f in flags if f.key != "kv-cache-memory-bytes"]
    if not (V1_DEFAULT_SINCE <= version < PER_INSTANCE_AGAIN_SINCE) or not before:
        return kept
    out = []
    for flag in kept:
        if flag.key == "gpu-memory-utilization" and flag.values:
            flag = P.Flag(flag.name, f"{min(1.0, float(flag.values[-1]) + before):.4f}")
        out.append(flag)
    return out


def fixed_start_order(version: tuple[int, ...] | None) -> bool:
    """vLLM before ``--kv-cache-memory-bytes`` holds a shared GPU by fractions, which its memory profiling
    checks against what is free at start: servers sharing a GPU start one after the other, in model order
    (the order :func:`_fractions_before` counted in), so none profiles while another loads."""
    return version is not None and version < KV_CACHE_BYTES_SINCE


def start_now(specs: list[ServerSpec], version: tuple[int, ...] | None) -> list[ServerSpec]:
    """Which of ``specs`` (waiting, in model order) start now: all of them, unless the vLLM ``version``
    needs a fixed start order — then none that shares a GPU with one before it still waiting (it starts
    once those have answered)."""
    if not fixed_start_order(version) or not any(s.engine == VLLM for s in specs):
        return list(specs)
    chosen, blocked = [], set()
    for spec in specs:
        if not blocked & set(spec.slots):
            chosen.append(spec)
        blocked |= set(spec.slots)
    return chosen


def _fractions_before(specs: list[ServerSpec]) -> None:
    """Each vLLM server's share of the GPUs it shares that servers earlier in model order hold."""
    taken: dict[int, float] = {}
    for spec in specs:
        fraction = next(
            (float(f.values[-1]) for f in spec.flags if f.key == "gpu-memory-utilization" and f.values), 0.0
        )
        spec.gpu_fraction_before = max((taken.get(g, 0.0) for g in spec.slots), default=0.0)
        for g in spec.slots:
            taken[g] = taken.get(g, 0.0) + fraction


def server_specs(
    multi_model_config: dict[str, Any],
    engine: str,
    slots: list[int],
    replicas: int = 1,
    idle_sleep: dict[str, int] | None = None,
    device: str = CPU,
) -> list[ServerSpec]:
    """Servers for every model of the config, slots handed out in model order.

    A model with LoRA adapters is one server holding the base once and every adapter (llama.cpp
    ``--lora … --lora-init-without-apply``, the router sets each request's ``lora``; vLLM
    ``--enable-lora --lora-modules``): one copy of the base weights, not one per adapter.

    ``replicas`` > 1 (a deployment's ``instance_count``) runs that many copies of each llama.cpp
    server, each on its own share of the model's cores (the same cores in all, split), so one
    machine behaves like an OCI instance pool behind its load balancer.

    ``device`` CUDA: the slots are GPU indices and llama.cpp servers run on them; models beyond the
    slots share the last GPUs (several models on one GPU, each within the sizes its params give).  An
    entry's ``gpu_indices`` (a plan's placement, set by the local platform) name its GPUs among the slots."""
    if replicas > 1 and engine != LLAMA_CPP:
        raise ValueError("replicas are run for llama.cpp servers only")
    specs: list[ServerSpec] = []
    for replica in range(replicas):
        # replica r takes every replicas-th core of each model's share: disjoint while cores last
        for spec in _one_instance(multi_model_config, engine, slots):
            share = spec.slots[replica::replicas] or spec.slots[replica % len(spec.slots) :][:1] or spec.slots
            spec.slots, spec.replica, spec.replicas = share, replica, replicas
            spec.idle_sleep_s = (idle_sleep or {}).get(spec.served_name)
            spec.device = device if engine == LLAMA_CPP else CPU
            specs.append(spec)
    if engine == VLLM:
        _fractions_before(specs)
    return specs


def _one_instance(multi_model_config: dict[str, Any], engine: str, slots: list[int]) -> list[ServerSpec]:
    specs: list[ServerSpec] = []
    cursor = 0
    for entry in multi_model_config["models"]:
        flags = P.parse_params(entry.get("params", ""))
        owned = {f.key: f.value for f in flags if f.key in P.OWNED_FLAGS}
        name = owned.get("served-model-name") or entry.get("model_id") or entry["model_path"]
        count = int(owned.get("tensor-parallel-size") or 1)
        seed = int(owned.get("seed") or P.SEED)
        if entry.get("gpu_indices") is not None:  # a plan's placement: GPU i of the deployment's, shared or not
            mine = [slots[i] for i in entry["gpu_indices"] if i < len(slots)] or slots[-count:]
        else:
            mine = slots[cursor : cursor + count] or slots[-count:]
            cursor += count
        rest = P.not_owned(flags)  # an abbreviation of an owned flag never reaches the engine either
        weights = entry.get("fine_tune_weights") or []
        model_id = entry.get("model_id", name)
        specs.append(
            ServerSpec(
                name,
                model_id,
                engine,
                mine,
                entry["model_path"],
                rest,
                seed=seed,
                lora_modules={w["model_name"]: w["model_path"] for w in weights},
            )
        )
    return specs
