"""Who judges an evaluation: a model of the evaluated deployment (its served name), a model of another
deployment of the same platform (``{"deployment_id", "model"}``), or an external OpenAI-compatible
endpoint (``{"url", "model", "api_key_env"}``).  An external key is read from an environment variable
of the server at run time, so it never enters the evaluation's record, its reports or a REST answer.

:func:`judge_problems` is the shape check (pure, with the other metric arguments); :func:`resolve_judge`
checks the judge exists and answers, at create, so a wrong one is a 4xx then and not a failed job."""

from __future__ import annotations

import os
from typing import Any

from ..domain import Deployment
from ..errors import AquaLabError, InvalidInput, NotFound, Problem, shown

JUDGE_KEYS = ("model", "deployment_id", "url", "api_key_env")
#: the judge's answer length when the evaluation does not say (room for a short explanation)
DEFAULT_JUDGE_MAX_TOKENS = 512
MAX_JUDGE_MAX_TOKENS = 4096
SELF_PREFERENCE = (
    "the judge {model} is one of the judged models: LLM judges tend to prefer their own answers "
    "(self-preference); a judge that is not judged gives fairer verdicts"
)


def judge_problems(value: Any, where: str) -> list[Problem]:
    """What is wrong with ``args.judge`` as written (None: the deployment's first model)."""
    if value is None or (isinstance(value, str) and value.strip()):
        return []
    fix = 'a served name, {"deployment_id": …, "model": …}, or {"url": …, "model": …, "api_key_env": …}'
    if not isinstance(value, dict):
        return [Problem(where, f"{shown(value)} is not a judge", fix)]
    problems = [
        Problem(f"{where}.{k}", "is not a judge field", f"use some of {list(JUDGE_KEYS)}")
        for k in value
        if k not in JUDGE_KEYS
    ]
    for key in JUDGE_KEYS:
        if key in value and value[key] is not None and not (isinstance(value[key], str) and value[key].strip()):
            problems.append(Problem(f"{where}.{key}", "must be a non-empty string", fix))
    url = value.get("url")
    if isinstance(url, str) and not url.startswith(("http://", "https://")):
        problems.append(Problem(f"{where}.url", f"{shown(url)} is not an http(s) URL", "e.g. https://host/v1"))
    if url and value.get("deployment_id"):
        problems.append(Problem(where, "names both a url and a deployment_id", "give one of them"))
    if url and not value.get("model"):
        problems.append(Problem(f"{where}.model", "missing", "the model name the endpoint serves"))
    if value.get("deployment_id") and not value.get("model"):
        problems.append(Problem(f"{where}.model", "missing", "a served name of that deployment"))
    return problems


def normalised(value: Any) -> dict[str, Any]:
    if value is None:
        return {"model": None}
    return {"model": value} if isinstance(value, str) else {k: v for k, v in value.items() if v is not None}


def judge_name(judge: dict[str, Any]) -> str:
    """How a judge is named in reports and on the leaderboard."""
    where = judge.get("url") or judge.get("deployment_id")
    return f"{judge['model']}@{where}" if where else str(judge["model"])


def resolve_judge(value: Any, deployment: Deployment, platform: Any, where: str) -> tuple[dict[str, Any], str | None]:
    """(the judge with its model filled in, a warning or None); an unknown model or deployment, or an
    endpoint that does not answer or refuses the key, is an :class:`InvalidInput` on ``where``."""
    judge = normalised(value)
    served = deployment.served_names()
    if judge.get("url"):
        _check_endpoint(judge, f"{where}")
        return judge, None
    if judge.get("deployment_id") and judge["deployment_id"] != deployment.id:
        try:
            other = platform.get_deployment(judge["deployment_id"])
        except NotFound:
            raise InvalidInput(
                Problem(f"{where}.deployment_id", f"no deployment {shown(judge['deployment_id'])}", "list them")
            ) from None
        if other.state not in ("ACTIVE", "NEEDS_ATTENTION"):
            raise InvalidInput(Problem(f"{where}.deployment_id", f"the deployment is {other.state}", "activate it"))
        if judge["model"] not in other.served_names():
            raise InvalidInput(
                Problem(
                    f"{where}.model",
                    f"{shown(judge['model'])} is not served by {other.id}",
                    f"use one of {other.served_names()}",
                )
            )
        return judge, None
    judge.pop("deployment_id", None)
    if judge["model"] is None:
        judge["model"] = served[0]
    elif judge["model"] not in served:
        field = f"{where}.model" if isinstance(value, dict) else where
        raise InvalidInput(
            Problem(field, f"{shown(judge['model'])} is not served by {deployment.id}", f"use one of {served}")
        )
    return judge, SELF_PREFERENCE.format(model=judge["model"])


def self_preference_warnings(metrics: list[dict[str, Any]], models: list[str]) -> list[str]:
    """The self-preference warnings of an evaluation's resolved judge metrics (``{"name", "args"}``):
    a judge of the evaluated deployment (no url, no other deployment) that is one of ``models``.
    Derived from the evaluation's record, so the warning stays for the evaluation's whole life."""
    warnings = []
    for m in metrics:
        judge = (m.get("args") or {}).get("judge")
        if m.get("name") not in ("pairwise_judge", "judge_score") or not isinstance(judge, dict):
            continue
        if judge.get("url") or judge.get("deployment_id") or judge.get("model") not in models:
            continue
        warning = SELF_PREFERENCE.format(model=judge["model"])
        if warning not in warnings:
            warnings.append(warning)
    return warnings


def endpoint_headers(judge: dict[str, Any]) -> dict[str, str]:
    env = judge.get("api_key_env")
    key = os.environ.get(env) if env else None
    return {"Authorization": f"Bearer {key}"} if key else {}


def _check_endpoint(judge: dict[str, Any], where: str) -> None:
    """``GET <url>/models`` with the key: the judge answers, and takes the key."""
    from ..inference.client import get_json_blocking
    from ..inference.timeouts import Timeouts

    env = judge.get("api_key_env")
    if env and not os.environ.get(env):
        raise InvalidInput(
            Problem(
                f"{where}.api_key_env",
                f"the server has no environment variable {env}",
                "set it where Jupyter runs, then restart it",
            )
        )
    url = judge["url"].rstrip("/")
    try:
        get_json_blocking(url + "/models", endpoint_headers(judge), Timeouts(connect_s=5, first_byte_s=10, total_s=15))
    except AquaLabError as exc:
        status = getattr(exc, "status", None)
        if status in (401, 403):
            raise InvalidInput(
                Problem(f"{where}.api_key_env", f"the judge at {url} refused the key ({status})", "check the key")
            ) from None
        raise InvalidInput(
            Problem(f"{where}.url", f"the judge at {url} is not reachable: {exc}", "check the URL (…/v1)")
        ) from None
    except (OSError, ValueError) as exc:
        raise InvalidInput(
            Problem(f"{where}.url", f"the judge at {url} is not reachable: {exc}", "check the URL (…/v1)")
        ) from None
