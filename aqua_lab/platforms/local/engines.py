"""From a ``MULTI_MODEL_CONFIG`` entry to the model-server processes that serve it.

The runtime reads the same ``{"models": [{"params", "model_path", "fine_tune_weights"}]}`` the OCI
container reads.  ``--served-model-name`` and ``--tensor-parallel-size`` come out of ``params`` and
become the engine's own options: for llama.cpp the model alias and its thread count (the share of
cores the planner gave the model), for vLLM the served name, the tensor-parallel size and
``CUDA_VISIBLE_DEVICES``.  The model's other flags are handed to its engine unchanged.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import Any

from ...planning import params as P

LLAMA_CPP = "llama_cpp"
VLLM = "vllm"


@dataclass
class ServerSpec:
    """One model-server process: the names it answers to, its command and where it runs."""

    served_name: str
    model_id: str
    engine: str
    slots: list[int]  # cores (CPU) or GPU indices
    model_path: str
    flags: list[P.Flag] = field(default_factory=list)
    lora_path: str | None = None  # llama.cpp: one adapter per server
    lora_modules: dict[str, str] = field(default_factory=dict)  # vLLM: name → path
    seed: int = P.SEED

    @property
    def names(self) -> list[str]:
        return [self.served_name, *self.lora_modules]

    def command(self, port: int) -> list[str]:
        if self.engine == LLAMA_CPP:
            threads = str(max(1, len(self.slots)))
            cmd = [
                sys.executable,
                "-m",
                "llama_cpp.server",
                "--model",
                self.model_path,
                "--model_alias",
                self.served_name,
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--n_threads",
                threads,
                "--n_threads_batch",
                threads,
                "--seed",
                str(self.seed),
                # llama_cpp.server cancels a running request when another arrives; queue them instead
                "--interrupt_requests",
                "False",
            ]
            if self.lora_path:
                cmd += ["--lora_path", self.lora_path]
        else:
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
        for flag in self.flags:
            if self.engine == VLLM and self.lora_modules and flag.key == "enable-lora":
                continue
            cmd.append(flag.name)
            if flag.value is not None:
                cmd.append(flag.value)
        return cmd

    def environment(self) -> dict[str, str]:
        if self.engine == VLLM:
            return {"CUDA_VISIBLE_DEVICES": ",".join(map(str, self.slots)), "VLLM_ALLOW_RUNTIME_LORA_UPDATING": "true"}
        return {"OMP_NUM_THREADS": str(max(1, len(self.slots)))}


def server_specs(multi_model_config: dict[str, Any], engine: str, slots: list[int]) -> list[ServerSpec]:
    """Servers for every model of the config, slots handed out in model order.

    On llama.cpp a model with LoRA adapters becomes one server for the base plus one per adapter
    (each loads the base with ``--lora_path``); they share the model's slots.  On vLLM one server
    serves the base and every adapter (``--enable-lora --lora-modules``)."""
    specs: list[ServerSpec] = []
    cursor = 0
    for entry in multi_model_config["models"]:
        flags = P.parse_params(entry.get("params", ""))
        owned = {f.key: f.value for f in flags if f.key in P.OWNED_FLAGS}
        name = owned.get("served-model-name") or entry.get("model_id") or entry["model_path"]
        count = int(owned.get("tensor-parallel-size") or 1)
        seed = int(owned.get("seed") or P.SEED)
        mine = slots[cursor : cursor + count] or slots[-count:]
        cursor += count
        rest = [f for f in flags if f.key not in P.OWNED_FLAGS]
        weights = entry.get("fine_tune_weights") or []
        model_id = entry.get("model_id", name)
        if engine == VLLM:
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
            continue
        servers = 1 + len(weights)
        shares = [mine[i::servers] or mine for i in range(servers)]
        specs.append(ServerSpec(name, model_id, engine, shares[0], entry["model_path"], rest, seed=seed))
        for w, share in zip(weights, shares[1:], strict=True):
            specs.append(
                ServerSpec(
                    w["model_name"],
                    w.get("model_id", w["model_name"]),
                    engine,
                    share,
                    entry["model_path"],
                    rest,
                    lora_path=w["model_path"],
                    seed=seed,
                )
            )
    return specs
