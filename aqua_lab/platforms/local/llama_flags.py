"""What a user may set for llama.cpp (``LLAMA_CPP_PARAMS``) and how it becomes ``llama-server`` options.

An allow-list, not a deny-list: a model server is a process on the user's machine, and an option such
as ``--host 0.0.0.0``, ``--model`` or a file path read into the logs must never be reachable from a
request body.  Names follow vLLM where the concept is the same (``--max-model-len`` is the context of
one request, ``--max-num-seqs`` the number of requests served at once, exactly what the OCI container
takes), llama-server's own long names are accepted too, and so are the old llama-cpp-python names
(``--n_ctx``) that earlier deployments saved.  Values are checked here, so a bad one is a 422 at
create time rather than a model server that exits.
"""

from __future__ import annotations

from dataclasses import dataclass

from ...errors import InvalidInput, Problem
from ...planning import params as P

DEFAULT_CONTEXT = 2048
DEFAULT_SLOTS = 4
MAX_SLOTS = 64
CACHE_TYPES = ("f32", "f16", "bf16", "q8_0", "q4_0", "q4_1", "iq4_nl", "q5_0", "q5_1")


@dataclass(frozen=True)
class Option:
    flag: str  # the llama-server option it becomes ("" for the two that aqua_lab computes)
    kind: str  # int | float | bool | choice | text
    choices: tuple[str, ...] = ()
    minimum: float | None = None


CONTEXT = "context"
SLOTS = "slots"
_pos_int = {"kind": "int", "minimum": 1}

OPTIONS: dict[str, Option] = {
    CONTEXT: Option("", **_pos_int),
    SLOTS: Option("", **_pos_int),
    "batch-size": Option("--batch-size", **_pos_int),
    "ubatch-size": Option("--ubatch-size", **_pos_int),
    "cache-type-k": Option("--cache-type-k", "choice", CACHE_TYPES),
    "cache-type-v": Option("--cache-type-v", "choice", CACHE_TYPES),
    "flash-attn": Option("--flash-attn", "choice", ("on", "off", "auto")),
    "chat-template": Option("--chat-template", "text"),
    "jinja": Option("--jinja", "bool"),
    "temp": Option("--temp", "float", minimum=0),
    "top-k": Option("--top-k", "int", minimum=0),
    "top-p": Option("--top-p", "float", minimum=0),
    "min-p": Option("--min-p", "float", minimum=0),
    "repeat-penalty": Option("--repeat-penalty", "float", minimum=0),
    "repeat-last-n": Option("--repeat-last-n", "int", minimum=-1),
    "presence-penalty": Option("--presence-penalty", "float"),
    "frequency-penalty": Option("--frequency-penalty", "float"),
    "n-predict": Option("--n-predict", "int", minimum=-1),
    "rope-freq-base": Option("--rope-freq-base", "float", minimum=0),
    "rope-freq-scale": Option("--rope-freq-scale", "float", minimum=0),
    "cache-reuse": Option("--cache-reuse", "int", minimum=0),
    "mlock": Option("--mlock", "bool"),
    "no-mmap": Option("--no-mmap", "bool"),
    "no-repack": Option("--no-repack", "bool"),
    "cont-batching": Option("--cont-batching", "bool"),
    "no-cont-batching": Option("--no-cont-batching", "bool"),
    "reasoning-format": Option("--reasoning-format", "choice", ("none", "deepseek", "deepseek-legacy", "auto")),
}
# other spellings (flag keys as planning.params.flag_key writes them) → the option above
ALIASES = {
    "max-model-len": CONTEXT,
    "ctx-size": CONTEXT,
    "c": CONTEXT,
    "n-ctx": CONTEXT,  # llama-cpp-python's server
    "max-num-seqs": SLOTS,
    "parallel": SLOTS,
    "np": SLOTS,
    "b": "batch-size",
    "n-batch": "batch-size",
    "ub": "ubatch-size",
    "n-ubatch": "ubatch-size",
    "ctk": "cache-type-k",
    "ctv": "cache-type-v",
    "fa": "flash-attn",
    "chat-format": "chat-template",
    "temperature": "temp",
    "n": "n-predict",
    "nr": "no-repack",
    "cb": "cont-batching",
    "nocb": "no-cont-batching",
}
# what aqua_lab sets itself, and what to do instead
OWNED = {
    "model": "the model comes from the deployment's model_id",
    "m": "the model comes from the deployment's model_id",
    "alias": "set the model's model_name instead",
    "a": "set the model's model_name instead",
    "model-alias": "set the model's model_name instead",
    "threads": "the plan gives each model its cores (its gpu_count on this CPU shape)",
    "t": "the plan gives each model its cores (its gpu_count on this CPU shape)",
    "n-threads": "the plan gives each model its cores (its gpu_count on this CPU shape)",
    "threads-batch": "the plan gives each model its cores (its gpu_count on this CPU shape)",
    "tb": "the plan gives each model its cores (its gpu_count on this CPU shape)",
    "n-threads-batch": "the plan gives each model its cores (its gpu_count on this CPU shape)",
    "lora": "add the adapter as fine_tune_weights",
    "lora-path": "add the adapter as fine_tune_weights",
    "api-key": "each deployment has its own key; aqua_lab passes it",
}


@dataclass(frozen=True)
class EngineArgs:
    context: int  # per request
    slots: int  # requests decoded together
    args: list[str]  # the rest, as llama-server options


def _value(flag: P.Flag, option: Option, field: str) -> str | None:
    name = flag.name
    if isinstance(flag.value, tuple):  # llama-server options take one value each
        raise InvalidInput(
            Problem(field, f"{name} takes one value, got {len(flag.value)}: {' '.join(flag.value)}", "give one value")
        )
    if option.kind == "bool":
        if flag.value not in (None, "", "true", "True", "1"):
            raise InvalidInput(Problem(field, f"{name} takes no value (got {flag.value!r})", f"write just {name}"))
        return None
    if flag.value is None:
        raise InvalidInput(Problem(field, f"{name} needs a value", f"write '{name} VALUE'"))
    if option.kind == "choice":
        if flag.value not in option.choices:
            raise InvalidInput(
                Problem(field, f"{name} {flag.value!r} is not allowed", f"one of {list(option.choices)}")
            )
        return flag.value
    if option.kind == "text":
        if len(flag.value) > 4096 or "\x00" in flag.value:
            raise InvalidInput(Problem(field, f"{name}: value too long or not text", "a short template name"))
        return flag.value
    try:
        number = int(flag.value) if option.kind == "int" else float(flag.value)
    except ValueError:
        kind = "a whole number" if option.kind == "int" else "a number"
        raise InvalidInput(Problem(field, f"{name} {flag.value!r} is not {kind}", f"e.g. '{name} 4'")) from None
    if option.minimum is not None and number < option.minimum:
        raise InvalidInput(Problem(field, f"{name} {flag.value} is below {option.minimum:g}", "use a larger value"))
    return flag.value


def engine_args(flags: list[P.Flag], field: str = "params") -> EngineArgs:
    """Check the user's (and the config's) flags and translate them; raises :class:`InvalidInput`
    naming the flag and what to do.  Flags aqua_lab owns (served name, TP size, seed) are removed
    before this by the caller."""
    context, slots, args = DEFAULT_CONTEXT, DEFAULT_SLOTS, []
    for flag in flags:
        key = flag.key
        if key in OWNED:
            raise InvalidInput(Problem(field, f"{flag.name} is set by aqua_lab", OWNED[key]))
        key = ALIASES.get(key, key)
        option = OPTIONS.get(key)
        if option is None:
            allowed = sorted(
                {f"--{k}" for k in OPTIONS if k not in (CONTEXT, SLOTS)} | {"--max-model-len", "--max-num-seqs"}
            )
            raise InvalidInput(
                Problem(field, f"{flag.name} is not an option aqua_lab passes to llama.cpp", f"use one of {allowed}")
            )
        value = _value(flag, option, field)
        if key == CONTEXT:
            context = int(value)
        elif key == SLOTS:
            slots = int(value)
            if slots > MAX_SLOTS:
                raise InvalidInput(Problem(field, f"{flag.name} {slots} is more than {MAX_SLOTS}", "use fewer slots"))
        else:
            args += [option.flag] if value is None else [option.flag, value]
    return EngineArgs(context, slots, args)


def check_params(text: str, field: str) -> None:
    """Validate a LLAMA_CPP_PARAMS string as the runtime will read it (owned flags included)."""
    flags = [f for f in P.parse_params(text, field) if f.key not in P.OWNED_FLAGS]
    engine_args(flags, field)
