"""Chat with each model of a deployment — streaming, multi-turn — or compare them side by side."""

from __future__ import annotations

import threading
import time
from typing import Any

import ipywidgets as w

from ..domain import ChatRequest, CompareRequest, chunk_text
from ..errors import AquaLabError
from ..service import AquaLabService
from ..service.chat import LOADING_OBJECT, loading_text
from .arena import BlindVote, SaveRow
from .common import esc, fits, gone, in_background, message, palette, run_async


class ChatPanel(w.VBox):
    """One conversation per model; in compare mode one prompt goes to every model at once and each
    answer shows its time-to-first-token and tokens/s."""

    def __init__(self, service: AquaLabService, deployment_id: str, **kwargs):
        self.service, self.deployment_id = service, deployment_id
        self._loading_shown = False  # the status line says a model is waking
        deployment = service.get_deployment(deployment_id)
        self.names = deployment.served_names()
        self.model = w.Dropdown(options=self.names, description="Model")
        self.compare = w.Checkbox(description="compare all models", indent=False)
        # blind: two models at a time as A and B, names shown after the vote (widgets/arena.py)
        self.blind = w.Checkbox(description="blind vote", indent=False)
        self.blind_vote = BlindVote(service, deployment_id)
        self.save_row = SaveRow(service)  # the last turn's prompt and an answer → a dataset
        self.system = w.Textarea(placeholder="system prompt (optional)", layout=fits())
        self.temperature = w.FloatSlider(value=0.7, min=0, max=2, step=0.05, description="temperature")
        self.top_p = w.FloatSlider(value=1.0, min=0.05, max=1, step=0.05, description="top_p")
        self.max_tokens = w.IntSlider(value=128, min=1, max=2048, description="max_tokens")
        self.prompt = w.Textarea(placeholder="Ask something…", layout=fits())
        self.send_button = w.Button(description="Send", button_style="primary", icon="paper-plane")
        self.stop = w.Button(description="Stop", icon="stop", disabled=True)
        self.clear = w.Button(description="New chat", icon="eraser")
        self.transcript = w.HTML(layout=w.Layout(max_height="420px", overflow="auto"))
        self.columns = w.HBox(layout=w.Layout(flex_flow="row wrap"))
        self.status = w.HTML()
        self.histories: dict[str, list[dict[str, str]]] = {n: [] for n in self.names}
        self.answers: dict[str, str] = {}
        self.stats: dict[str, dict[str, Any]] = {}
        self._stop = threading.Event()
        self.worker: threading.Thread | None = None
        self.send_button.on_click(lambda _: self.ask())
        self.stop.on_click(lambda _: self._stop.set())
        self.clear.on_click(lambda _: self.reset())
        self.model.observe(lambda _: self._render(), names="value")
        settings = w.Accordion([w.VBox([self.system, self.temperature, self.top_p, self.max_tokens])])
        settings.set_title(0, "System prompt and sampling")
        settings.selected_index = None
        super().__init__(
            [
                w.HBox([self.model, self.compare, self.blind]),
                settings,
                self.transcript,
                self.columns,
                self.blind_vote,
                self.save_row,
                self.prompt,
                w.HBox([self.send_button, self.stop, self.clear]),
                self.status,
            ],
            **kwargs,
        )

    def _sampling(self) -> dict[str, Any]:
        return {"temperature": self.temperature.value, "top_p": self.top_p.value, "max_tokens": self.max_tokens.value}

    def _messages(self, name: str, text: str) -> list[dict[str, str]]:
        system = [{"role": "system", "content": self.system.value}] if self.system.value.strip() else []
        return system + self.histories[name] + [{"role": "user", "content": text}]

    def gone(self) -> str | None:
        """Why this deployment can no longer answer (deleted, even from another cell), else None."""
        return gone(self.service, self.deployment_id)

    def ask(self, text: str | None = None) -> None:
        text = (text if text is not None else self.prompt.value).strip()
        if not text:
            self.status.value = message("Type a prompt first.", "warning")
            return
        if why := self.gone():
            self.status.value = message(why, "error")
            self.send_button.disabled = True
            return
        self.prompt.value = ""
        self._stop.clear()
        self.send_button.disabled, self.stop.disabled = True, False
        if self.blind.value:
            self.blind_vote.ask(text, self._sampling(), lambda: self._done(""), self._failed)
            self.worker = self.blind_vote.worker
            return
        target = self._ask_all if self.compare.value else self._ask_one
        self.worker = in_background(lambda: target(text), self._failed)

    def _ask_one(self, text: str) -> None:
        name = self.model.value
        request = ChatRequest(model=name, messages=self._messages(name, text), **self._sampling())
        self.histories[name].append({"role": "user", "content": text})
        self.answers[name] = ""

        async def stream() -> None:
            async for chunk in self.service.chat_stream(self.deployment_id, request):
                if self._stop.is_set():
                    break  # leaving the loop closes the stream: the model stops generating
                if self._waking(chunk):
                    continue
                self.answers[name] += chunk_text(chunk)
                self._render(streaming=True)

        try:
            run_async(stream)
        except BaseException:
            # a failed turn leaves no trace in the history (an empty answer would go back to the model
            # with the next message); its prompt returns to the box for a retry
            self.histories[name].pop()
            self.prompt.value = text
            self._render()
            raise
        self.histories[name].append({"role": "assistant", "content": self.answers[name]})
        self.save_row.offer(text, {name: self.answers[name]})
        self._done("stopped" if self._stop.is_set() else "")

    def _ask_all(self, text: str) -> None:
        system = [{"role": "system", "content": self.system.value}] if self.system.value.strip() else []
        request = CompareRequest(messages=[*system, {"role": "user", "content": text}], **self._sampling())
        self.answers = {n: "" for n in self.names}
        self.stats = {}

        async def stream() -> None:
            async for item in self.service.compare(self.deployment_id, request):
                if self._stop.is_set():
                    break
                name = item["model"]
                if item["type"] == "loading":
                    self._waking({**item, "object": LOADING_OBJECT})
                elif item["type"] == "chunk":
                    self.answers[name] += chunk_text(item["data"])
                else:
                    self.stats[name] = item
                self._render_columns()

        try:
            run_async(stream)
            self.save_row.offer(text, {n: a for n, a in self.answers.items() if a})
        finally:
            self._done("stopped" if self._stop.is_set() else "")

    def _waking(self, chunk: dict[str, Any]) -> bool:
        """A sleeping model loads its weights first: the status line says so until it answers."""
        if chunk.get("object") == LOADING_OBJECT:
            self.status.value = message(loading_text(chunk))
            self._loading_shown = True
            return True
        if self._loading_shown and chunk_text(chunk):
            self.status.value, self._loading_shown = "", False
        return False

    def _done(self, note: str) -> None:
        self.send_button.disabled, self.stop.disabled = False, True
        self.status.value = message(note) if note else ""
        if not self.compare.value and not self.blind.value:
            self._render()

    def _failed(self, exc: BaseException) -> None:
        self.send_button.disabled, self.stop.disabled = False, True
        self.status.value = message(str(exc) if isinstance(exc, AquaLabError) else repr(exc), "error")

    def reset(self) -> None:
        self.histories = {n: [] for n in self.names}
        self.answers, self.stats = {}, {}
        self.transcript.value, self.columns.children = "", ()

    def _render(self, streaming: bool = False) -> None:
        name = self.model.value
        turns = list(self.histories[name])
        if streaming:
            turns.append({"role": "assistant", "content": self.answers.get(name, "") + "▌"})
        self.transcript.value = "".join(
            f'<div class="aqua-turn aqua-{t["role"]}" style="margin:4px 0"><b>{esc(t["role"])}</b>: '
            f'<span style="white-space:pre-wrap">{esc(t["content"])}</span></div>'
            for t in turns
        )

    def _render_columns(self) -> None:
        boxes = []
        tints = palette(self.names)
        for name in self.names:
            s = self.stats.get(name, {})
            if s.get("type") == "error":
                footer = message(s["message"], "error")
            elif s:
                footer = message(f"first token {s['ttft_ms']} ms · {s['tokens_per_s']} tokens/s", "info")
            else:
                footer = message("…")
            boxes.append(
                w.HTML(
                    f'<div class="aqua-column" data-model="{esc(name)}" style="border-top:3px solid {tints[name]};'
                    f'padding:4px;min-width:220px"><b>{esc(name)}</b><div style="white-space:pre-wrap">'
                    f"{esc(self.answers.get(name, ''))}</div>{footer}</div>",
                    layout=w.Layout(flex="1 1 240px"),
                )
            )
        self.columns.children = boxes

    def wait(self, timeout: float = 120) -> None:
        if self.worker is not None:
            self.worker.join(timeout)
            deadline = time.monotonic() + 1
            while self.send_button.disabled and time.monotonic() < deadline:
                time.sleep(0.01)
