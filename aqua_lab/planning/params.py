"""vLLM command-line parameters: parse with ``shlex``, merge flag by flag, render back.

Merge rule (documented in docs/parameters.md):

* ``params`` absent (``None``) → the config's defaults for this shape and GPU count;
* ``params`` empty (``""`` or ``{}``) → no defaults at all;
* otherwise each flag the user gives replaces every occurrence of the same flag among the defaults
  (``--max_model_len`` and ``--max-model-len`` are the same flag); the user's flags keep their own
  order and may repeat; defaults the user does not mention are kept.

Flags aqua_lab owns — served name, tensor parallel size, host, port, seed — are refused in user
params (with the option to use instead) and dropped, with a warning, from config defaults; so is
any abbreviation of them (``--hos``, ``--por``, ``--served``, ``--tensor-p``), since vLLM's argparse
takes an unambiguous prefix of a long option as the option itself.

A flag may take several values (vLLM's ``nargs='+'``: ``--lora-modules a=x b=y``): every word up to
the next flag belongs to it, the values are kept as a tuple and rendered as separate words, exactly
as a shell would pass them to vLLM.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import InvalidInput, Problem

SEED = 42
#: where deployment configs keep vLLM flags (per shape and per multi-model GPU count)
VLLM_PARAMS = "VLLM_PARAMS"

# key (see flag_key) → what the user should do instead
OWNED_FLAGS = {
    "served-model-name": "set the model's model_name instead",
    "tensor-parallel-size": "set the model's gpu_count instead",
    "port": "aqua_lab assigns ports",
    "host": "aqua_lab chooses the host",
    "seed": f"aqua_lab sets --seed {SEED} for reproducible sampling",
}

_SHORT_ALIASES = {"tp": "tensor-parallel-size", "pp": "pipeline-parallel-size", "q": "quantization"}

#: vLLM flags declared ``nargs='+'``: in ADS's dict form their value is one space-separated string
#: (``{"--lora-modules": "a=x b=y"}``), which means several words, not one quoted word.
MULTI_VALUE_FLAGS = frozenset({"lora-modules", "prompt-adapters", "cuda-graph-sizes", "long-lora-scaling-factors"})


@dataclass(frozen=True)
class Flag:
    """One flag: ``value`` is ``None`` (a switch), one string, or a tuple of several (nargs='+')."""

    name: str
    value: str | tuple[str, ...] | None = None

    @property
    def key(self) -> str:
        return flag_key(self.name)

    @property
    def owned(self) -> str | None:
        """The owned flag this one sets, by its name or by an abbreviation of it (argparse, and so
        vLLM, accepts any unambiguous prefix of a long option: ``--hos`` is ``--host``), else None."""
        return owned_key(self.name)

    @property
    def values(self) -> tuple[str, ...]:
        if self.value is None:
            return ()
        return self.value if isinstance(self.value, tuple) else (self.value,)

    def argv(self) -> list[str]:
        """The words a process gets for this flag (one per value)."""
        return [self.name, *self.values]

    def render(self) -> str:
        return " ".join([self.name, *(shlex.quote(v) for v in self.values)])

    def with_value(self, token: str) -> Flag:
        values = (*self.values, token)
        return Flag(self.name, values[0] if len(values) == 1 else values)


def flag_key(name: str) -> str:
    bare = name.lstrip("-")
    if not name.startswith("--"):
        bare = _SHORT_ALIASES.get(bare, bare)
    return bare.replace("_", "-").lower()


def owned_key(name: str) -> str | None:
    key = flag_key(name)
    if key in OWNED_FLAGS:
        return key
    if name.startswith("--") and key:
        return next((owned for owned in OWNED_FLAGS if owned.startswith(key)), None)
    return None


def _is_flag(token: str) -> bool:
    if not token.startswith("-") or token == "-" or token == "--":
        return False
    try:
        float(token)
        return False  # a negative number is a value
    except ValueError:
        return True


def parse_params(text: str, field: str = "params") -> list[Flag]:
    """``"--max-model-len 4096 --trust-remote-code"`` → flags, honouring shell quoting, so values may
    contain spaces, ``=`` or ``--`` (``--served-model-name my--model`` keeps ``my--model``)."""
    try:
        tokens = shlex.split(text)
    except ValueError as exc:
        raise InvalidInput(Problem(field, f"cannot split {text!r}: {exc}", "balance the quotes")) from None
    flags: list[Flag] = []
    for token in tokens:
        if _is_flag(token):
            if token.startswith("--") and "=" in token:
                name, value = token.split("=", 1)
                flags.append(Flag(name, value))
            else:
                flags.append(Flag(token))
        elif flags:
            flags[-1] = flags[-1].with_value(token)
        else:
            raise InvalidInput(
                Problem(
                    field,
                    f"value {token!r} has no flag before it",
                    "write flags as '--name value'; quote values that contain spaces",
                )
            )
    return flags


def params_from_mapping(params: Mapping[str, Any], field: str = "params") -> list[Flag]:
    """ADS's dict form ``{"--max-model-len": "4096", "--trust-remote-code": ""}``.  A list value is
    several values; so is a space-separated string for a flag of :data:`MULTI_VALUE_FLAGS`, as in
    ADS's own ``{"--lora-modules": "a=x b=y"}``."""
    flags = []
    for name, value in params.items():
        if not isinstance(name, str) or not name.strip("-"):
            raise InvalidInput(Problem(f"{field}.{name}", "empty flag name", "use names like '--max-model-len'"))
        name = name if name.startswith("-") else f"--{name}"
        if isinstance(value, (list, tuple)):
            words = tuple(str(v) for v in value)
        elif value in (None, ""):
            words = ()
        elif flag_key(name) in MULTI_VALUE_FLAGS and isinstance(value, str):
            try:
                words = tuple(shlex.split(value))
            except ValueError as exc:
                raise InvalidInput(
                    Problem(f"{field}.{name}", f"cannot split {value!r}: {exc}", "balance the quotes")
                ) from None
        else:
            words = (str(value),)
        flags.append(Flag(name, None if not words else words[0] if len(words) == 1 else words))
    return flags


def fold_legacy_params(
    params: str | Mapping[str, Any] | None, env_var: Mapping[str, str], field: str = "params"
) -> tuple[list[Flag] | None, dict[str, str], bool]:
    """ADS's ``AquaMultiModelRef`` rule for the legacy ``env_var["PARAMS"]``: its flags move into
    ``params``; a flag the user also gave in ``params`` keeps the user's value.  Returns the user
    flags (``None`` when neither gives any), ``env_var`` without ``PARAMS``, and whether it folded."""
    user = to_flags(params, field)
    legacy_text = env_var.get("PARAMS")
    env = {k: v for k, v in env_var.items() if k != "PARAMS"}
    if not legacy_text:
        return user, env, False
    legacy = parse_params(legacy_text, field.rsplit(".", 1)[0] + ".env_var.PARAMS")
    given = {f.key for f in user or []}
    return list(user or []) + [f for f in legacy if f.key not in given], env, True


def to_flags(params: str | Mapping[str, Any] | None, field: str = "params") -> list[Flag] | None:
    if params is None:
        return None
    if isinstance(params, str):
        return parse_params(params, field)
    return params_from_mapping(params, field)


def multi_value_warnings(flags: list[Flag], field: str) -> list[str]:
    """Several values for a flag that vLLM is not known to take several for: most vLLM flags take
    one, and vLLM would refuse to start — but its list of nargs='+' flags grows, so warn, not refuse."""
    return [
        f"{field}: {f.name} has {len(f.values)} values ({' '.join(f.values)}); vLLM takes several only for "
        f"flags like --lora-modules — check that {f.name} does"
        for f in flags
        if len(f.values) > 1 and f.key not in MULTI_VALUE_FLAGS
    ]


def owned_flags(flags: list[Flag]) -> list[Flag]:
    return [f for f in flags if f.owned is not None]


def not_owned(flags: list[Flag]) -> list[Flag]:
    return [f for f in flags if f.owned is None]


def owned_reason(flag: Flag) -> str:
    """Why a flag is refused or dropped, naming the owned flag an abbreviation reaches."""
    owned = flag.owned or flag.key
    reason = OWNED_FLAGS[owned]
    return reason if flag.key == owned else f"{flag.name} abbreviates --{owned}: {reason}"


def refuse_owned(flags: list[Flag], field: str) -> list[Problem]:
    return [
        Problem(field, f"{f.name} is set by aqua_lab and cannot be given here", owned_reason(f))
        for f in owned_flags(flags)
    ]


def without_owned(text: str) -> tuple[str, list[Flag]]:
    """A config's flag string as it will be sent: the owned flags taken out (and returned)."""
    try:
        flags = parse_params(text)
    except InvalidInput:
        return text, []  # validate reports it; the plan shows the config as written
    dropped = owned_flags(flags)
    if not dropped:
        return text, []
    return render(not_owned(flags)), dropped


def merge(defaults: list[Flag], overrides: list[Flag] | None) -> list[Flag]:
    """Apply the merge rule in the module docstring."""
    if overrides is None:
        return list(defaults)
    if not overrides:
        return []
    replaced = {f.key for f in overrides}
    return [f for f in defaults if f.key not in replaced] + list(overrides)


def render(flags: list[Flag]) -> str:
    return " ".join(f.render() for f in flags)


def served_params(model_name: str, gpu_count: int, flags: list[Flag]) -> str:
    """The full flag string for one model server: the owned flags first, as AQUA writes them
    (``--served-model-name X --seed 42 --tensor-parallel-size N``), then the model's own."""
    owned = [
        Flag("--served-model-name", model_name),
        Flag("--seed", str(SEED)),
        Flag("--tensor-parallel-size", str(gpu_count)),
    ]
    return render(owned + not_owned(flags))
