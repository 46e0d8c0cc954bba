"""Choosing between models in a notebook: a blind A/B vote (the Compare panel's blind mode), the
deployment's leaderboard, and "Save as dataset row" (a prompt and the answer kept as its reference,
added to a dataset for the next evaluation)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import ipywidgets as w

from ..errors import AquaLabError
from ..service import AquaLabService
from ..service.arena import SOURCES, BlindPair, BlindPairRequest, Leaderboard, VoteRequest
from ..service.datasets import DatasetRow
from .common import esc, fits, in_background, message, run_async

VERDICT_BUTTONS = (("a", "A is better"), ("b", "B is better"), ("tie", "Tie"), ("both_bad", "Both bad"))


class BlindVote(w.VBox):
    """Two answers as A and B from two of the deployment's models (the pair compared least so far),
    four vote buttons, and the names revealed once the vote is in."""

    def __init__(self, service: AquaLabService, deployment_id: str, on_voted: Callable[[], None] | None = None):
        self.service, self.deployment_id, self.on_voted = service, deployment_id, on_voted
        self.pair: BlindPair | None = None
        self.columns = w.HBox(layout=w.Layout(flex_flow="row wrap"))
        self.buttons = {v: w.Button(description=text, disabled=True) for v, text in VERDICT_BUTTONS}
        for verdict, button in self.buttons.items():
            button.on_click(lambda _, v=verdict: self.cast(v))
        self.reveal = w.HTML()
        self.save_row = SaveRow(service)
        self.worker: threading.Thread | None = None
        super().__init__([self.columns, w.HBox(list(self.buttons.values())), self.reveal, self.save_row])

    def ask(self, text: str, sampling: dict[str, Any], done: Callable[[], None], failed: Callable) -> None:
        self.reveal.value = message("two models answer…")
        self.columns.children = ()
        self._enable(False)

        def work() -> None:
            request = BlindPairRequest(prompt=text, **sampling)
            self.pair = run_async(lambda: self.service.blind_pair(self.deployment_id, request))
            self.columns.children = [
                w.HTML(
                    f'<div class="aqua-blind" data-label="{a.label}" style="padding:4px;min-width:220px">'
                    f'<b>{a.label}</b><div style="white-space:pre-wrap">{esc(a.text)}</div></div>',
                    layout=w.Layout(flex="1 1 240px"),
                )
                for a in self.pair.answers
            ]
            self.reveal.value = message("Which answer is better? The models are named after your vote.")
            self._enable(True)
            done()

        self.worker = in_background(work, failed)

    def cast(self, verdict: str) -> None:
        if self.pair is None:
            return
        self._enable(False)
        try:
            vote = self.service.vote(self.deployment_id, VoteRequest(pair_id=self.pair.id, verdict=verdict))
        except AquaLabError as exc:
            self.reveal.value = message(str(exc), "error")
            return
        pair, self.pair = self.pair, None
        self.reveal.value = message(f"A was {vote.model_a}, B was {vote.model_b} — your vote: {verdict}", "info")
        answers = {f"A ({vote.model_a})": pair.answers[0].text, f"B ({vote.model_b})": pair.answers[1].text}
        preferred = {"a": 0, "b": 1}.get(verdict, 0)
        self.save_row.offer(pair.prompt, answers, list(answers)[preferred])
        if self.on_voted:
            self.on_voted()

    def _enable(self, on: bool) -> None:
        for button in self.buttons.values():
            button.disabled = not on


class LeaderboardView(w.VBox):
    """The deployment's standings: Elo-scale strengths with their 95 % intervals drawn as bars, the
    record and the comparisons per model, and which models the votes cannot yet tell apart."""

    def __init__(self, service: AquaLabService, deployment_id: str):
        self.service, self.deployment_id = service, deployment_id
        self.source = w.Dropdown(options=list(SOURCES), value="votes", description="from")
        self.refresh_button = w.Button(description="Refresh", icon="refresh")
        self.table = w.HTML()
        self.refresh_button.on_click(lambda _: self.refresh())
        self.source.observe(lambda _: self.refresh(), names="value")
        super().__init__([w.HBox([self.source, self.refresh_button]), self.table])
        self.refresh()

    def refresh(self) -> None:
        try:
            board = self.service.leaderboard(self.deployment_id, self.source.value)
        except AquaLabError as exc:
            self.table.value = message(str(exc), "error")
            return
        self.table.value = leaderboard_html(board)


def leaderboard_html(board: Leaderboard) -> str:
    rated = [s for s in board.standings if s.elo_low is not None]
    low = min((s.elo_low for s in rated), default=0.0)
    high = max((s.elo_high for s in rated), default=1.0)
    span = max(high - low, 1.0)
    rows = []
    for s in board.standings:
        if s.elo is None:
            rows.append(f"<tr><td></td><td>{esc(s.model)}</td><td colspan=4>no comparisons yet</td></tr>")
            continue
        bar = ""
        if s.elo_low is not None:
            left, width = 100 * (s.elo_low - low) / span, max(100 * (s.elo_high - s.elo_low) / span, 1)
            dot = 100 * (s.elo - low) / span
            bar = (
                f'<div class="aqua-interval" style="position:relative;height:10px;width:160px;background:#eee">'
                f'<div style="position:absolute;left:{left:.1f}%;width:{width:.1f}%;height:10px;background:#8ab"></div>'
                f'<div style="position:absolute;left:{dot:.1f}%;width:2px;height:10px;background:#024"></div></div>'
                f"{s.elo_low:.0f}–{s.elo_high:.0f}"
            )
        note = f"≈ {esc(', '.join(s.unresolved))}" if s.unresolved else ""  # why: the notes below
        rows.append(
            f'<tr class="aqua-standing" data-model="{esc(s.model)}"><td>{s.rank}</td><td>{esc(s.model)}</td>'
            f"<td>{s.elo:.0f}</td><td>{bar}</td><td>{s.wins:g}-{s.losses:g}-{s.ties:g} ({s.comparisons})</td>"
            f"<td>{note}</td></tr>"
        )
    notes = "".join(message(n, "warning") for n in board.notes)
    return (
        "<table><tr><th>rank</th><th>model</th><th>Elo</th><th>95% interval</th><th>W-L-T (n)</th><th></th></tr>"
        f"{''.join(rows)}</table><div>{board.votes} {board.source}</div>{notes}"
    )


class SaveRow(w.VBox):
    """Save as dataset row: the last prompt with an answer to keep as its reference (picked from the
    turn's answers, then editable) appended to the dataset named here — the next evaluation's dataset."""

    def __init__(self, service: AquaLabService):
        self.service = service
        self.prompt = ""
        self.answers: dict[str, str] = {}
        self.choice = w.Dropdown(description="answer", options=[])
        self.completion = w.Textarea(placeholder="the reference answer (edit it as you like)", layout=fits())
        self.dataset = w.Text(placeholder="dataset name", description="dataset")
        self.category = w.Text(placeholder="category (optional)")
        self.button = w.Button(description="Save as dataset row", icon="save", disabled=True)
        self.status = w.HTML()
        self.choice.observe(lambda _: self._pick(), names="value")
        self.button.on_click(lambda _: self.save())
        super().__init__(
            [w.HBox([self.choice, self.dataset, self.category]), self.completion, w.HBox([self.button, self.status])]
        )
        self.layout.display = "none"  # until a turn has answered

    def offer(self, prompt: str, answers: dict[str, str], preferred: str | None = None) -> None:
        """A finished turn: its prompt and answers (by model, or by label), ``preferred`` picked first."""
        if not answers:
            return
        self.prompt, self.answers = prompt, dict(answers)
        self.choice.options = list(answers)
        self.choice.value = preferred if preferred in answers else next(iter(answers), None)
        self._pick()
        self.status.value = ""
        self.button.disabled = False
        self.layout.display = None

    def _pick(self) -> None:
        if self.choice.value is not None:
            self.completion.value = self.answers.get(self.choice.value, "")

    def save(self) -> None:
        category = self.category.value.strip() or None
        try:
            row = DatasetRow(prompt=self.prompt, completion=self.completion.value, category=category)
            saved = self.service.save_dataset_row(self.dataset.value.strip(), row)
        except AquaLabError as exc:
            self.status.value = message(str(exc), "error")
            return
        self.button.disabled = True  # once per turn: a second click would add the same row again
        rows = f"{saved.rows} row{'s' * (saved.rows != 1)}"
        self.status.value = message(f"saved: {saved.name} has {rows} — dataset_path {saved.dataset_path}")
