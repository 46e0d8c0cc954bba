"""Choosing between a deployment's models from the command line: ``deployment blind`` (two answers as
A and B), ``deployment vote``, ``deployment votes`` (``--export jsonl|csv``) and ``deployment leaderboard``;
``dataset add|list|get``: the prompts worth keeping, saved as the next evaluation's dataset."""

from __future__ import annotations

import argparse
import asyncio

from ..service import AquaLabService
from ..service.arena import EXPORT_FORMATS, SOURCES, BlindPairRequest, Leaderboard, VoteRequest
from ..service.datasets import DatasetRow
from .common import Parser, add_array, add_deployment_id, dump, dump_items, service_for, validated

VERDICTS = ("a", "b", "tie", "both_bad")


def cmd_blind(args: argparse.Namespace) -> str:
    raw = {"prompt": args.prompt, "max_tokens": args.max_tokens, "temperature": args.temperature}
    if args.models:
        raw["models"] = args.models.split(",")
    request = validated(BlindPairRequest, {k: v for k, v in raw.items() if v is not None}, {"prompt": "--prompt"})
    pair = asyncio.run(service_for(args).blind_pair(args.model_deployment_id, request))
    shown = "\n\n".join(f"── {a.label} ──\n{a.text}" for a in pair.answers)
    return (
        f"{shown}\n\nvote with: aqua-lab deployment vote --model_deployment_id {pair.deployment_id} "
        f"--pair_id {pair.id} --verdict a|b|tie|both_bad"
    )


def cmd_vote(args: argparse.Namespace) -> str:
    raw = {
        k: getattr(args, k)
        for k in ("verdict", "pair_id", "model_a", "model_b", "prompt", "answer_a", "answer_b")
        if getattr(args, k) is not None
    }
    request = validated(VoteRequest, raw, {k: f"--{k}" for k in raw})
    return dump(service_for(args).vote(args.model_deployment_id, request))  # the voter: the OS user


def cmd_votes(args: argparse.Namespace) -> str:
    service = service_for(args)
    if args.export:
        return service.export_votes(args.model_deployment_id, args.export, args.source).rstrip("\n")
    return dump_items(service.votes(args.model_deployment_id, args.source), args)


def cmd_leaderboard(args: argparse.Namespace) -> str:
    board = service_for(args).leaderboard(args.model_deployment_id, args.source, args.resamples)
    return dump(board) if args.json else table(board)


def table(board: Leaderboard) -> str:
    """The standings as a terminal table, best first; ≈ marks the models whose intervals overlap, and the
    board's notes below say why (few comparisons, or many with no difference found)."""
    lines = [f"{'rank':>4}  {'model':<28} {'elo':>6}  {'95% interval':<13} {'W-L-T':<13} {'n':>5}"]
    for s in board.standings:
        if s.elo is None:
            lines.append(f"{'-':>4}  {s.model:<28} {'-':>6}  {'':<13} {'':<13} {0:>5}  no comparisons yet")
            continue
        interval = f"{s.elo_low:.0f}–{s.elo_high:.0f}" if s.elo_low is not None else "-"
        record = f"{s.wins:g}-{s.losses:g}-{s.ties:g}"
        note = f"  ≈ {', '.join(s.unresolved)} (see below)" if s.unresolved else ""
        lines.append(f"{s.rank:>4}  {s.model:<28} {s.elo:>6.0f}  {interval:<13} {record:<13} {s.comparisons:>5}{note}")
    lines.append(f"{board.votes} {board.source} · {board.resamples} bootstrap resamples")
    return "\n".join([*lines, *board.notes])


def add_deployment_verbs(dverbs: argparse._SubParsersAction) -> None:
    p = dverbs.add_parser("blind", help="one prompt to two models of a deployment, answers shown as A and B")
    add_deployment_id(p)
    p.add_argument("--prompt", required=True)
    p.add_argument("--models", help="comma-separated served names to pick the pair from (default: all)")
    p.add_argument("--max_tokens", type=int)
    p.add_argument("--temperature", type=float)
    p.set_defaults(run=cmd_blind)
    p = dverbs.add_parser("vote", help="vote on a blind pair (--pair_id) or on two named models")
    add_deployment_id(p)
    p.add_argument("--verdict", required=True, choices=VERDICTS)
    p.add_argument("--pair_id")
    for name in ("model_a", "model_b", "prompt", "answer_a", "answer_b"):
        p.add_argument(f"--{name}")
    p.set_defaults(run=cmd_vote)
    p = dverbs.add_parser("votes", help="a deployment's votes and judge verdicts (--export jsonl|csv for a file)")
    add_deployment_id(p)
    p.add_argument("--source", choices=list(SOURCES), default="both")
    p.add_argument("--export", choices=EXPORT_FORMATS)
    add_array(p)
    p.set_defaults(run=cmd_votes)
    p = dverbs.add_parser("leaderboard", help="Bradley-Terry strengths (Elo scale) with 95%% intervals")
    add_deployment_id(p)
    p.add_argument("--source", choices=list(SOURCES), default="votes")
    p.add_argument("--resamples", type=int, default=200)
    p.add_argument("--json", action="store_true", help="the whole leaderboard as JSON")
    p.set_defaults(run=cmd_leaderboard)


def _here() -> AquaLabService:
    """Datasets live in this machine's data dir whatever the platform: the local service reaches it."""
    return AquaLabService("local")


def cmd_dataset_add(args: argparse.Namespace) -> str:
    raw = {"prompt": args.prompt, "completion": args.completion, "category": args.category}
    row = validated(DatasetRow, {k: v for k, v in raw.items() if v is not None})
    return dump(_here().save_dataset_row(args.name, row))


def cmd_dataset_list(args: argparse.Namespace) -> str:
    return dump_items(_here().list_datasets(), args)


def cmd_dataset_get(args: argparse.Namespace) -> str:
    return _here().get_dataset(args.name).rstrip("\n")


def add_top_verbs(verbs: argparse._SubParsersAction) -> None:
    """``aqua-lab dataset …``: datasets on this machine (beside the platform's state), whatever the platform."""
    group = verbs.add_parser("dataset", help="datasets saved from chats (Save as dataset row) or uploaded")
    dverbs = group.add_subparsers(dest="verb", required=True, parser_class=Parser)
    p = dverbs.add_parser("add", help="append a prompt and its reference answer to a dataset (made on first use)")
    p.add_argument("--name", required=True, help="the dataset: letters, digits, '.', '_', '-'; at most 60")
    p.add_argument("--prompt", required=True)
    p.add_argument("--completion", required=True, help="the reference answer: the one chosen, or edited")
    p.add_argument("--category")
    p.set_defaults(run=cmd_dataset_add)
    p = dverbs.add_parser("list", help="datasets with their rows, bytes and rows per category")
    add_array(p)
    p.set_defaults(run=cmd_dataset_list)
    p = dverbs.add_parser("get", help="print a dataset's JSONL (redirect it to a file to download it)")
    p.add_argument("--name", required=True)
    p.set_defaults(run=cmd_dataset_get)
