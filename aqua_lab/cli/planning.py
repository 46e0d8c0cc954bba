"""Planning verbs: shapes, the ADS multi-model config, ``plan`` (a table of GPU splits), and
checking a request (``validate``) or previewing the OCI bodies it becomes (``payload``)."""

from __future__ import annotations

import argparse
import re
import string

from ..domain import CapacityInputs, MemoryFit, Plan, Shape, ValidationResult, machine_words
from ..service import AquaLabService
from .common import (
    DEFAULT_PLATFORM,
    add_array,
    add_platform,
    add_request_options,
    custom_models,
    dump,
    dump_items,
    model_ids,
    service_for,
    validated,
    validated_request,
)
from .cpu_plan import flex_rows
from .hints import say_which_platform
from .values import number, real_arg, whole_arg


def render_plan(result: Plan, service: AquaLabService, show_all: bool = False, verbose: bool = False) -> str:
    lines = []
    if result.primary_model_id:
        lines.append(f"primary model: {result.primary_model_id}")
    if not result.gpu_allocation:
        lines.append(f"No shape fits: {result.error_message}")
    shapes = service.shape_catalog()
    for shape_name, shape_plan in result.gpu_allocation.items():
        shape = shapes.find(shape_name)
        labels = row_labels(shape_plan.models)
        # a model asked twice: the first copy's letter draws a shared GPU (its id names both)
        letters = dict(reversed(list(zip((m.ocid for m in shape_plan.models), labels, strict=True))))
        if shape_plan.slot_unit == "OCPU":  # a flex shape, sized for this plan: its slots are OCPUs
            lines += flex_rows(shape_name, shape_plan, labels, _cells(shape_plan, shape_plan.models, letters))
            continue
        gpu = ""
        unit = shape.unit if shape else (lambda n=2: "GPU" if n == 1 else "GPUs")
        if shape and shape.gpu_specs:
            memory = f"{number(shape.per_gpu_memory_in_gbs)} GB" if shape.per_gpu_memory_in_gbs else "memory unknown"
            if shape.is_cpu:  # a CPU machine: its slots are cores sharing its RAM
                gpu = f"{shape.gpu_count} cores, {memory} RAM each"
            else:
                gpu = f"{shape.gpu_count} × {shape.gpu_specs.gpu_type or 'GPU'} {memory}"

        def cells(models=None, plan=shape_plan, letters=letters):
            return _cells(plan, models or plan.models, letters, shared=models is None and plan.shares_gpus)

        lines.append("")
        lines.append(f"{shape_name}  ({gpu})  uses {shape_plan.used_gpus}/{shape_plan.total_gpus_available} {unit()}")
        lines.append(f"  {unit():<5} " + cells())
        if shape_plan.shares_gpus:
            lines += _gpu_stacks(shape_plan, letters)
        for label, m in zip(labels, shape_plan.models, strict=True):
            star = " *primary" if m.ocid == result.primary_model_id else ""
            est = " (estimated)" if m.estimated else ""
            mem = f"{number(m.gpu_memory_in_gbs)} GB" if m.gpu_memory_in_gbs else ""
            params = " ".join(m.parameters.values())
            name = m.model_name or m.ocid
            count = f"{m.gpu_count} {unit(m.gpu_count) if shape and shape.is_cpu else 'GPU'}"
            row = f"  {label} {name:<44} {count}  {mem:>7}{est}{star}  {params}"
            lines.append(row.rstrip())
            if m.memory is not None:
                lines.append("      " + machine_words(_memory_cell(m.memory, m.suggested_parameters), shape))
        for note in shape_plan.notes:
            lines.append(f"  note: {note}")
        for alt in shape_plan.alternatives:
            labelled = zip(row_labels(alt.models), alt.models, strict=True)
            split = ", ".join(f"{label} {m.gpu_count}" for label, m in labelled)
            lines.append(f"  alternative  {cells(alt.models)}  {split}: {alt.note}")
    hidden = 0
    if result.incompatible_shapes:
        lines.append("")
        lines.append("Shapes that cannot hold these models:")
        for shape_name, reasons in result.incompatible_shapes.items():
            unconfigured = all("has no multi_model_deployment entry" in r for r in reasons)
            if not show_all and unconfigured and len(reasons) == len(result.deployment_config):
                hidden += 1
                continue
            lines.append(f"  {shape_name}: " + "; ".join(reasons))
        if hidden:
            lines.append(f"  (+{hidden} shapes no selected model is configured for; --all shows them)")
    for warning in result.warnings if verbose else condensed(result.warnings):
        lines.append(f"warning: {warning}")
    return "\n".join(lines).lstrip("\n")


def row_labels(models) -> list[str]:
    """A letter per planned model, in the request's order: the same model asked twice is two rows with
    two letters (its id would give both the same)."""
    return [string.ascii_uppercase[i % 26] for i in range(len(models))]


def _cells(plan, models, letters: dict[str, str], shared: bool = False) -> str:
    """The shape's slots, each with the letter of the model that holds it (· idle)."""
    if shared:  # a shared GPU is drawn by its first model; _gpu_stacks lists them all
        owners = [letters[o] if o else "·" for o in plan.gpu_owners()]
    else:
        owners = [label for label, m in zip(row_labels(models), models, strict=True) for _ in range(m.gpu_count)]
        owners += ["·"] * (plan.total_gpus_available - len(owners))
    return "|" + "|".join(owners) + "|"


def _gpu_stacks(plan, letters: dict[str, str]) -> list[str]:
    """Where models share GPUs (the local platform): each GPU's budgets, model by model, and what is left."""
    out = []
    usable = plan.gpu_usable_in_gbs or 0.0
    for g, stack in enumerate(plan.gpu_stacks()):
        parts = " + ".join(f"{letters[m]} {budget:.1f} GB" for m, budget in stack) or "idle"
        out.append(f"  GPU {g}: {parts}, {usable - sum(b for _, b in stack):.1f} of {usable:g} GB free")
    return out


_AT_PATH = re.compile(r"^(?P<head>.*?): \$(?P<path>\S+) (?P<tail>.*)$")


def condensed(warnings: list[str]) -> list[str]:
    """One line for a data warning that repeats per shape (phi-4's ``gpu_count`` 5 on four shapes),
    naming where; ``--verbose`` prints each."""
    groups: dict[tuple[str, str, str], list[str]] = {}
    plain: list[str] = []
    for warning in warnings:
        found = _AT_PATH.match(warning)
        if not found:
            plain.append(warning)
            continue
        field = found["path"].rsplit(".", 1)[-1]
        shape = re.search(r"\['([^']+)'\]", found["path"])
        groups.setdefault((found["head"], field, found["tail"]), []).append(shape[1] if shape else found["path"])
    out = []
    for (head, field, tail), where in groups.items():
        if len(where) == 1:
            out.append(f"{head}: {field} {tail} ({where[0]})")
        else:
            out.append(f"{head}: {field} {tail} on {len(where)} shapes ({', '.join(where)}; --verbose for each)")
    return out + plain


def _memory_cell(fit: MemoryFit, suggested: str | None) -> str:
    """Weights, KV capacity and the context that fits, per GPU, in one line under the model."""
    ok = "fits" if fit.fits else "DOES NOT FIT"
    cell = (
        f"weights {number(fit.weights_gb)} GB/GPU  KV {fit.kv_capacity_tokens:,} tokens  "
        f"max context {fit.max_model_len_fit:,} at concurrency {fit.concurrency}  "
        f"{fit.per_gpu_gb:.1f}/{fit.gpu_memory_gb:.1f} GB at {fit.max_model_len:,}: {ok}"
    )
    return f"{cell}  → {suggested}" if suggested else cell


def _number(value: float | None) -> float | int | None:
    """A whole number as the integer the seed prints (``"memory_in_gbs": 240``, not ``240.0``)."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


def cmd_list_shapes(args: argparse.Namespace) -> str:
    shapes = service_for(args).shapes()
    say_which_platform(args)
    if args.table:
        return shapes_table(shapes)
    rows = []
    for s in shapes:
        gpu = None
        if s.gpu_specs:
            gpu = {k: _number(v) if k != "gpu_type" else v for k, v in s.gpu_specs.model_dump().items()}
        rows.append(
            {
                "available": s.available,
                "core_count": s.core_count,
                "memory_in_gbs": _number(s.memory_in_gbs),
                "name": s.name,
                "shape_series": s.shape_series,
                "gpu_specs": gpu,
                **({"notes": s.notes} if s.notes else {}),  # e.g. GPU memory unknown for a shape no index has
            }
        )
    return dump_items(rows, args)


CAPACITY_OPTIONS = (
    "max_model_len",
    "concurrency",
    "kv_cache_dtype",
    "weight_precision",
    "gpu_memory_utilization",
    "ocpus",
    "memory_in_gbs",
)


def _capacity(args: argparse.Namespace) -> CapacityInputs:
    return validated(
        CapacityInputs, {k: getattr(args, k) for k in CAPACITY_OPTIONS if getattr(args, k, None) is not None}
    )


def _plan_from_args(args: argparse.Namespace) -> tuple[Plan, AquaLabService]:
    service = service_for(args)
    custom = custom_models(args.model_config)
    capacity = _capacity(args)
    shape = getattr(args, "shape", None)
    result = service.plan(model_ids(args.model_ids), args.primary_model_id, shape, custom, capacity)
    return result, service


def cmd_get_config(args: argparse.Namespace) -> str:
    return dump(_plan_from_args(args)[0])


def cmd_plan(args: argparse.Namespace) -> str:
    result, service = _plan_from_args(args)
    return dump(result) if args.json else render_plan(result, service, args.all, args.verbose)


def cmd_validate(args: argparse.Namespace) -> str:
    service = service_for(args)
    validated = validated_request(args, service)
    return dump(ValidationResult.of(validated))


def cmd_payload(args: argparse.Namespace) -> str:
    service = service_for(args)
    return dump(service.payload_preview(validated_request(args, service)))


def add_plan_options(p: argparse.ArgumentParser) -> None:
    add_platform(p, DEFAULT_PLATFORM)
    p.add_argument("--model_ids", required=True, help="JSON list or comma-separated model ids/names")
    p.add_argument("--primary_model_id", help="favour this model: it gets at least as many GPUs as any other")
    p.add_argument("--compartment_id", help="OCI: where the models and shapes are looked up")
    p.add_argument(
        "--model_config",
        action="append",
        metavar="ID=PATH",
        help="add your own model with its deployment_config.json (repeatable)",
    )
    what_if = p.add_argument_group("what-if (the memory model)")
    what_if.add_argument(
        "--max_model_len", type=whole_arg, help="context each sequence must hold (default: the config's)"
    )
    what_if.add_argument(
        "--concurrency", type=whole_arg, help="sequences of max_model_len that must fit at once (default 1)"
    )
    what_if.add_argument("--kv_cache_dtype", choices=["auto", "fp8"], help="KV cache dtype (default auto)")
    what_if.add_argument(
        "--weight_precision", help="auto, bf16, fp16, fp8, int8, int4, mxfp4 or a GGUF type (Q4_K_M, Q8_0, …)"
    )
    what_if.add_argument("--gpu_memory_utilization", type=real_arg, help="share of each GPU vLLM may use (default 0.9)")
    what_if.add_argument(
        "--ocpus", type=whole_arg, help="OCI: plan the CPU flex shapes (…Flex) at this many OCPUs (default 8)"
    )
    what_if.add_argument("--memory_in_gbs", type=real_arg, help="OCI: and this much memory in GB (default 16 per OCPU)")


def shapes_table(shapes: list[Shape]) -> str:
    """One line per shape, in its own words (a CPU machine: cores and RAM); each column as wide as
    its widest cell (series such as INTEL_SKYLAKE, OCI's long shape names), text left, sizes right."""
    header = ("SHAPE", "SERIES", "AVAILABLE", "SLOTS", "MEMORY EACH", "CORES", "RAM")
    right = (False, False, False, True, True, True, True)
    rows = [header]
    for s in shapes:
        rows.append(
            (
                s.name,
                s.shape_series or "",
                "yes" if s.available else "no",
                f"{s.gpu_count} {s.unit(s.gpu_count)}" if s.gpu_count else "-",
                f"{number(s.per_gpu_memory_in_gbs)} GB" if s.per_gpu_memory_in_gbs else "?",
                "" if s.core_count is None else str(s.core_count),
                f"{number(s.memory_in_gbs)} GB" if s.memory_in_gbs else "",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    return "\n".join(
        " ".join(cell.rjust(w) if r else cell.ljust(w) for cell, w, r in zip(row, widths, right, strict=True)).rstrip()
        for row in rows
    )


def add_deployment_verbs(dverbs: argparse._SubParsersAction) -> None:
    """``aqua-lab deployment list_shapes | get_multimodel_deployment_config | validate | payload``."""
    p = dverbs.add_parser("list_shapes", help="shapes with their GPU specs, one JSON object each (ADS's framing)")
    add_platform(p, DEFAULT_PLATFORM)
    p.add_argument("--compartment_id", help="OCI: the shapes offered in this compartment")
    p.add_argument("--table", action="store_true", help="a table instead of JSON")
    add_array(p)
    p.set_defaults(run=cmd_list_shapes)
    p = dverbs.add_parser(
        "get_multimodel_deployment_config",
        help="configs and GPU allocation on every compatible shape (ADS format + reasons)",
    )
    add_plan_options(p)
    p.set_defaults(run=cmd_get_config)
    p = dverbs.add_parser("validate", help="check a deployment request like `ads aqua deployment create` takes")
    add_request_options(p, DEFAULT_PLATFORM)
    p.set_defaults(run=cmd_validate)
    p = dverbs.add_parser("payload", help="the OCI model-group and model-deployment bodies, without sending")
    add_request_options(p, DEFAULT_PLATFORM)
    p.set_defaults(run=cmd_payload)


def add_top_verbs(verbs: argparse._SubParsersAction) -> None:
    """``aqua-lab plan``."""
    p = verbs.add_parser("plan", help="per-shape GPU split table for some models")
    add_plan_options(p)
    p.add_argument("--shape", help="only this shape")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.add_argument("--all", action="store_true", help="list every incompatible shape")
    p.add_argument("--verbose", action="store_true", help="every data warning, one line each")
    p.set_defaults(run=cmd_plan)
