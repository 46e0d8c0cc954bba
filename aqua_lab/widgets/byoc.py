"""The deploy form's fields for a bring-your-own-container (HETEROGENEOUS) model group on OCI: the
image, its digest, entrypoint, cmd, ports and environment, each with the server's refusal under it."""

from __future__ import annotations

import json

import ipywidgets as w

from ..errors import InvalidInput, Problem
from .common import full_width, message

#: the model-group types the form offers on OCI (STACKED needs adapters, which the form does not pick)
DEPLOYMENT_TYPES = [
    ("MULTI: one vLLM server per model", "MULTI"),
    ("SINGLE: one model", "SINGLE"),
    ("HETEROGENEOUS: your own container (BYOC)", "HETEROGENEOUS"),
]


def number(field: str, text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise InvalidInput(Problem(field, f"{text!r} is not a number", "give a number, e.g. 8")) from None


def _words(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip()]


class ByocFields:
    """The container fields, and an error line under every field a server problem may name.

    ``container`` and ``env`` are the deploy form's own (they serve every type: a custom vLLM image, the
    model servers' environment); for a BYOC group they move here, beside the fields only BYOC takes."""

    def __init__(self, container: w.Text, env: w.Textarea):
        self.container, self.env = container, env
        self.digest = w.Text(description="Digest", placeholder="sha256:… (pins the image)", layout=full_width())
        self.entrypoint = w.Textarea(description="Entrypoint", placeholder="one argument per line")
        self.cmd = w.Textarea(description="Cmd", placeholder="one argument per line")
        self.server_port = w.BoundedIntText(value=8080, min=1, max=65535, description="Server port")
        self.health_port = w.BoundedIntText(value=8080, min=1, max=65535, description="Health port")
        self.errors: dict[str, w.HTML] = {}
        self._rows = {
            field: w.VBox([control, self._error(field)])
            for field, control in (
                ("container_image_uri", container),
                ("image_digest", self.digest),
                ("entrypoint", self.entrypoint),
                ("cmd_var", self.cmd),
                ("server_port", self.server_port),
                ("health_check_port", self.health_port),
                ("env_var", env),
            )
        }
        self.box = w.VBox([w.HTML("<b>Your container</b> (HETEROGENEOUS: it serves every model of the group)")])

    def _error(self, field: str) -> w.HTML:
        self.errors[field] = w.HTML()
        return self.errors[field]

    def with_error(self, *pairs) -> list[w.VBox]:
        """Other fields (``field, control, …``) with an error line the server's problems can reach."""
        return [w.VBox([control, self._error(field)]) for field, control in zip(pairs[::2], pairs[1::2], strict=True)]

    def show(self, byoc: bool) -> None:
        self.box.children = [self.box.children[0], *self._rows.values()] if byoc else [self.box.children[0]]
        self.box.layout.display = None if byoc else "none"

    def shared_rows(self) -> list[w.VBox]:
        """The fields every type takes, shown among the advanced options when the group is not BYOC."""
        return [self._rows["container_image_uri"], self._rows["env_var"]]

    def values(self, byoc: bool) -> dict:
        out: dict = {}
        if self.container.value.strip():
            out["container_image_uri"] = self.container.value.strip()
        if self.env.value.strip():
            try:
                out["env_var"] = json.loads(self.env.value)
            except json.JSONDecodeError as exc:
                raise InvalidInput(Problem("Env", f"not valid JSON ({exc.msg})", 'give {"KEY": "value"}')) from exc
        if byoc:
            if self.digest.value.strip():
                out["image_digest"] = self.digest.value.strip()
            for field, box in (("entrypoint", self.entrypoint), ("cmd_var", self.cmd)):
                if words := _words(box.value):
                    out[field] = words
            out["server_port"], out["health_check_port"] = self.server_port.value, self.health_port.value
        return out

    def clear_errors(self) -> None:
        for error in self.errors.values():
            error.value = ""

    def mark(self, problem: Problem) -> bool:
        """Put ``problem`` under its field; False when no shown field is the one it names."""
        root = problem.field.split(".")[0].split("[")[0]
        error = self.errors.get(root)
        if error is None:
            return False
        error.value = message(problem.message + (f" — {problem.fix}" if problem.fix else ""), "error")
        return True
