"""The emulator's Data Science models, model version sets, jobs and job runs — and the evaluation
container: a job run whose job carries ``AIP_SMC_EVALUATION_ARGUMENTS`` (what ``ads aqua evaluation
create`` and aqua_lab submit) runs for real in a background thread, as ``odsc-llm-evaluate`` would:

1. ACCEPTED → IN_PROGRESS; the dataset is read from the emulator's Object Storage (``input_data.url``);
2. every row is sent to the emulator's own ``/{deployment}/predict`` for ``params.model`` (routed by
   ``model`` like vLLM behind LiteLLM), signed with a key the emulator trusts (the job's principal);
3. the answers are scored with aqua_lab's engine and ``report.json``, ``report.html`` and ``report.md``
   are written to ``<output_dir>/<evaluation_id>/`` in Object Storage (where ADS's ``download_report``
   looks when the model has no artifact) and as the evaluation model's artifact (a zip, where ADS
   looks first);
4. the run ends SUCCEEDED, or FAILED with ``lifecycleDetails`` saying why (a missing or bad dataset,
   no answers), or CANCELED after a cancel (CANCELING while the rows in flight finish).

Each answer takes ``Emulator.job_row_delay_s`` (0 by default) so that tests can watch progress or cancel.
The route functions take ``(handler, request, **path parameters)`` like the handler's own methods.
"""

from __future__ import annotations

import asyncio
import io
import json
import re
import threading
import time
import zipfile
from typing import Any

from .common import Reply, Request, check_compartment, lookup, now, ocid, public

EVALUATION_ARGUMENTS = "AIP_SMC_EVALUATION_ARGUMENTS"
OBJECT_URI = re.compile(r"^oci://([^@/]+)@([^/]+)/(.+)$")
RUNNING = ("ACCEPTED", "IN_PROGRESS", "CANCELING")


def _body(r: Any) -> dict:
    try:
        return json.loads(r.body or b"{}")
    except json.JSONDecodeError:
        raise Reply(400, "InvalidParameter", "The request body is not JSON.") from None


# models ---------------------------------------------------------------------------------------------


def create_model(h: Any, r: Any) -> None:
    s = h.emu.state
    request = _body(r)
    check_compartment(h.emu, request.get("compartmentId"))
    mvs_id = request.get("modelVersionSetId")
    mvs = lookup(s.version_sets, mvs_id) if mvs_id else None
    model_id = ocid("datasciencemodel")
    s.models[model_id] = {
        "customMetadataList": [],
        "definedMetadataList": [],
        **request,
        "id": model_id,
        "lifecycleState": "ACTIVE",
        "timeCreated": now(),
        "createdBy": "ocid1.user.oc1..emu",
        "freeformTags": request.get("freeformTags") or {},
        "definedTags": request.get("definedTags") or {},
        "modelVersionSetName": mvs["name"] if mvs else None,
        "versionId": 1 if mvs else None,
    }
    h._send(200, public(s.models[model_id]), {"etag": "1"})


def update_model(h: Any, r: Any, model_id: str) -> None:
    model = lookup(h.emu.state.models, model_id)
    for key, value in _body(r).items():
        if value is not None:
            model[key] = value
    h._send(200, public(model), {"etag": "1"})


def delete_model(h: Any, r: Any, model_id: str) -> None:
    lookup(h.emu.state.models, model_id)["lifecycleState"] = "DELETED"
    h.emu.state.artifacts.pop(model_id, None)
    h._send(204)


def get_provenance(h: Any, r: Any, model_id: str) -> None:
    model = lookup(h.emu.state.models, model_id)
    if model.get("_provenance") is None:
        raise Reply(404, "NotAuthorizedOrNotFound", "The model has no provenance.")
    h._send(200, model["_provenance"], {"etag": "1"})


def create_provenance(h: Any, r: Any, model_id: str) -> None:
    model = lookup(h.emu.state.models, model_id)
    if model.get("_provenance") is not None:
        raise Reply(409, "Conflict", "The model already has provenance; update it instead.")
    model["_provenance"] = _body(r)
    h._send(200, model["_provenance"], {"etag": "1"})


def update_provenance(h: Any, r: Any, model_id: str) -> None:
    model = lookup(h.emu.state.models, model_id)
    if model.get("_provenance") is None:
        raise Reply(404, "NotAuthorizedOrNotFound", "The model has no provenance; create it first.")
    model["_provenance"] = {**model["_provenance"], **_body(r)}
    h._send(200, model["_provenance"], {"etag": "1"})


FILE_NAME = re.compile(r'filename\*?=(?:UTF-8\'\')?"?([^";]+)"?', re.I)


def put_artifact(h: Any, r: Any, model_id: str) -> None:
    lookup(h.emu.state.models, model_id)
    h.emu.state.artifacts[model_id] = r.body
    # the file name the uploader gave (ADS: ``<model id>.zip``, or ``.json`` for a model by reference)
    named = FILE_NAME.search(h.headers.get("content-disposition") or "")
    h.emu.state.artifact_names[model_id] = named.group(1) if named else "artifact.zip"
    h._send(200)


def get_artifact(h: Any, r: Any, model_id: str) -> None:
    lookup(h.emu.state.models, model_id)
    data = h.emu.state.artifacts.get(model_id)
    if data is None:
        raise Reply(404, "NotAuthorizedOrNotFound", "The model has no artifact.")
    # ADS reads the file name (and by it, zip or a by-reference JSON) from this header, spelled so
    name = h.emu.state.artifact_names.get(model_id, "artifact.zip")
    h._send(
        200, data, {"content-type": "application/octet-stream", "content-disposition": f"attachment; filename={name}"}
    )


# model version sets (AQUA's "experiments") ---------------------------------------------------------


def create_version_set(h: Any, r: Any) -> None:
    s = h.emu.state
    request = _body(r)
    check_compartment(h.emu, request.get("compartmentId"))
    taken = [
        v
        for v in s.version_sets.values()
        if v["name"] == request.get("name")
        and v["compartmentId"] == request.get("compartmentId")
        and v["lifecycleState"] != "DELETED"
    ]
    if taken:
        raise Reply(409, "Conflict", f"A model version set named {request.get('name')!r} already exists.")
    mvs_id = ocid("datasciencemodelversionset")
    s.version_sets[mvs_id] = {
        **request,
        "id": mvs_id,
        "lifecycleState": "ACTIVE",
        "timeCreated": now(),
        "timeUpdated": now(),
        "createdBy": "ocid1.user.oc1..emu",
        "freeformTags": request.get("freeformTags") or {},
        "definedTags": request.get("definedTags") or {},
    }
    h._send(200, s.version_sets[mvs_id], {"etag": "1"})


def list_version_sets(h: Any, r: Any) -> None:
    q = r.query
    check_compartment(h.emu, q.get("compartmentId"))
    rows = [
        v
        for v in h.emu.state.version_sets.values()
        if v["compartmentId"] == q.get("compartmentId")
        and v["lifecycleState"] != "DELETED"
        and (not q.get("name") or v["name"] == q["name"])
    ]
    h._send(200, rows)


def get_version_set(h: Any, r: Any, mvs_id: str) -> None:
    h._send(200, lookup(h.emu.state.version_sets, mvs_id), {"etag": "1"})


def delete_version_set(h: Any, r: Any, mvs_id: str) -> None:
    lookup(h.emu.state.version_sets, mvs_id)["lifecycleState"] = "DELETED"
    h._send(202)


# jobs and job runs ---------------------------------------------------------------------------------


def create_job(h: Any, r: Any) -> None:
    request = _body(r)
    check_compartment(h.emu, request.get("compartmentId"))
    job_id = ocid("datasciencejob")
    h.emu.state.jobs[job_id] = {
        **request,
        "id": job_id,
        "lifecycleState": "ACTIVE",
        "timeCreated": now(),
        "createdBy": "ocid1.user.oc1..emu",
        "freeformTags": request.get("freeformTags") or {},
        "definedTags": request.get("definedTags") or {},
    }
    h._send(200, h.emu.state.jobs[job_id], {"etag": "1"})


def list_jobs(h: Any, r: Any) -> None:
    q = r.query
    rows = [
        j
        for j in h.emu.state.jobs.values()
        if j["compartmentId"] == q.get("compartmentId") and j["lifecycleState"] != "DELETED"
    ]
    h._send(200, rows)


def get_job(h: Any, r: Request, job_id: str) -> None:
    h._send(200, lookup(h.emu.state.jobs, job_id))


def delete_job(h: Any, r: Any, job_id: str) -> None:
    s = h.emu.state
    job = lookup(s.jobs, job_id)
    runs = [x for x in s.job_runs.values() if x["jobId"] == job_id and x["lifecycleState"] != "DELETED"]
    if any(x["lifecycleState"] in RUNNING for x in runs) and r.query.get("deleteRelatedJobRuns") != "true":
        raise Reply(
            409, "Conflict", "The job has job runs in progress; cancel them or delete with deleteRelatedJobRuns."
        )
    if r.query.get("deleteRelatedJobRuns") == "true":
        for x in runs:
            _stop(h.emu, x)
            x["lifecycleState"] = "DELETED"
    job["lifecycleState"] = "DELETED"
    h._send(202)


def create_job_run(h: Any, r: Any) -> None:
    s, emu = h.emu.state, h.emu
    request = _body(r)
    check_compartment(h.emu, request.get("compartmentId"))
    job = lookup(s.jobs, request.get("jobId", ""))
    run_id = ocid("datasciencejobrun")
    logging = job.get("jobLogConfigurationDetails") or {}
    run = {
        **request,
        "id": run_id,
        "lifecycleState": "ACCEPTED",
        "lifecycleDetails": None,
        "timeAccepted": now(),
        "createdBy": "ocid1.user.oc1..emu",
        "freeformTags": request.get("freeformTags") or {},
        "definedTags": request.get("definedTags") or {},
        "jobInfrastructureConfigurationDetails": job.get("jobInfrastructureConfigurationDetails"),
        "logDetails": (
            {"logGroupId": logging["logGroupId"], "logId": logging.get("logId") or ocid("log")}
            if logging.get("enableLogging") and logging.get("logGroupId")
            else None
        ),
    }
    s.job_runs[run_id] = run
    env = {
        **((job.get("jobConfigurationDetails") or {}).get("environmentVariables") or {}),
        **((request.get("jobConfigurationOverrideDetails") or {}).get("environmentVariables") or {}),
    }
    if EVALUATION_ARGUMENTS in env:
        cancel = threading.Event()
        run["_cancel"] = cancel
        thread = threading.Thread(
            target=_evaluate, args=(emu, run_id, env[EVALUATION_ARGUMENTS], cancel), daemon=True, name=run_id
        )
        emu.job_threads[run_id] = thread
        thread.start()
    h._send(200, public(run), {"etag": "1"})


def list_job_runs(h: Any, r: Any) -> None:
    q = r.query
    rows = [
        public(x)
        for x in h.emu.state.job_runs.values()
        if x["compartmentId"] == q.get("compartmentId")
        and x["lifecycleState"] != "DELETED"
        and (not q.get("jobId") or x["jobId"] == q["jobId"])
    ]
    h._send(200, rows)


def get_job_run(h: Any, r: Any, job_run_id: str) -> None:
    h._send(200, public(lookup(h.emu.state.job_runs, job_run_id)), {"etag": "1"})


def cancel_job_run(h: Any, r: Any, job_run_id: str) -> None:
    run = lookup(h.emu.state.job_runs, job_run_id)
    if run["lifecycleState"] not in ("ACCEPTED", "IN_PROGRESS", "NEEDS_ATTENTION"):
        raise Reply(409, "IncorrectState", f"The job run is {run['lifecycleState']}; it cannot be canceled.")
    _stop(h.emu, run)
    h._send(200)


def delete_job_run(h: Any, r: Any, job_run_id: str) -> None:
    run = lookup(h.emu.state.job_runs, job_run_id)
    if run["lifecycleState"] in RUNNING:
        raise Reply(409, "IncorrectState", f"The job run is {run['lifecycleState']}; cancel it first.")
    run["lifecycleState"] = "DELETED"
    h._send(204)


def _stop(emu: Any, run: dict) -> None:
    """A run with a container goes CANCELING until it stops; one without stops at once."""
    if run["lifecycleState"] not in ("ACCEPTED", "IN_PROGRESS", "NEEDS_ATTENTION"):
        return
    cancel = run.get("_cancel")
    thread = emu.job_threads.get(run["id"])
    if cancel is not None and thread is not None and thread.is_alive():
        run["lifecycleState"], run["lifecycleDetails"] = "CANCELING", "Cancel requested by the user"
        cancel.set()
    else:
        run.update(lifecycleState="CANCELED", lifecycleDetails="Canceled by the user", timeFinished=now())


# the evaluation container ---------------------------------------------------------------------------


def _set(emu: Any, run_id: str, **fields: Any) -> dict:
    with emu._lock:
        run = emu.state.job_runs[run_id]
        run.update(fields)
        return run


def _finish(emu: Any, run_id: str, state: str, details: str | None) -> None:
    with emu._lock:
        run = emu.state.job_runs[run_id]
        if run["lifecycleState"] == "CANCELING":
            state, details = "CANCELED", "Canceled by the user"
        if run["lifecycleState"] in ("DELETED", "CANCELED"):
            return
        run.update(lifecycleState=state, lifecycleDetails=details, timeFinished=now())


def _read_object(emu: Any, uri: str) -> bytes:
    found = OBJECT_URI.match(uri or "")
    if not found:
        raise ValueError(f"input_data.url {uri!r} is not an Object Storage path (oci://bucket@namespace/path)")
    bucket, namespace, name = found.groups()
    with emu._lock:
        data = emu.state.objects.get((namespace, bucket, name))
    if data is None:
        raise ValueError(f"the dataset {uri} was not found in Object Storage (bucket {bucket}, object {name})")
    return data


def _write_object(emu: Any, uri: str, data: bytes) -> None:
    bucket, namespace, name = OBJECT_URI.match(uri).groups()
    with emu._lock:
        emu.state.objects[(namespace, bucket, name)] = data


def _evaluate(emu: Any, run_id: str, raw_arguments: str, cancel: threading.Event) -> None:
    """The container's work; every failure ends the run FAILED with the reason."""
    try:
        if emu.job_start_delay_s:
            time.sleep(emu.job_start_delay_s)
        if cancel.is_set():
            return _finish(emu, run_id, "CANCELED", "Canceled by the user")
        _set(emu, run_id, lifecycleState="IN_PROGRESS", lifecycleDetails="Evaluating", timeStarted=now())
        _run_evaluation(emu, run_id, json.loads(raw_arguments), cancel)
    except Exception as exc:  # the container's exit: the reason is what a user reads in the console
        reason = str(exc) or type(exc).__name__
        _finish(emu, run_id, "FAILED", f"The evaluation failed: {reason}")


def _run_evaluation(emu: Any, run_id: str, arguments: dict, cancel: threading.Event) -> None:
    from ..errors import InvalidInput
    from ..evaluation.datasets import parse_dataset
    from ..evaluation.metrics import check_metrics
    from ..evaluation.report import model_report
    from ..evaluation.runner import generate, score_model

    data = _read_object(emu, (arguments.get("input_data") or {}).get("url", ""))
    try:
        rows = parse_dataset(data, "input_data.url")
        metrics = check_metrics(arguments.get("metrics") or [{"name": "bertscore"}, {"name": "rouge"}])
    except InvalidInput as exc:
        raise ValueError("; ".join(str(p) for p in exc.problems)) from None
    if not rows:
        raise ValueError("the dataset has no rows")
    target = arguments["evaluation_target_id"]
    params = dict(arguments.get("params") or {})
    with emu._lock:
        deployment = emu.state.deployments.get(target)
        names = emu.served_names(deployment) if deployment else []
    if deployment is None:
        raise ValueError(f"the evaluation target {target} is not a model deployment")
    model = params.get("model") or names[0]

    async def chat(name: str, body: dict) -> dict:
        if emu.job_row_delay_s:
            await asyncio.sleep(emu.job_row_delay_s)
        return await asyncio.to_thread(_predict, emu, target, body)

    stop = asyncio.Event()

    async def main() -> dict:
        async def watch() -> None:
            while not cancel.is_set():
                await asyncio.sleep(0.02)
            stop.set()

        watcher = asyncio.create_task(watch())
        try:
            return await generate(rows, [model], chat, params, concurrency=4, cancel=stop)
        finally:
            watcher.cancel()

    done = asyncio.run(main())
    if cancel.is_set():
        return _finish(emu, run_id, "CANCELED", "Canceled by the user")
    scores = score_model(rows, model, done[model], metrics)
    meta = {
        "evaluation_id": arguments.get("evaluation_id"),
        "evaluation_name": emu.state.job_runs[run_id].get("displayName"),
        "evaluation_source_id": target,
        "model_parameters": params,
    }
    report = model_report(rows, scores, meta)
    if not report["generation"]["answered"]:
        first = next((p.error for p in done[model].values() if p.error), "no answers")
        raise ValueError(f"the model {model!r} answered no row: {first}")
    write_reports(emu, arguments, report)
    _finish(emu, run_id, "SUCCEEDED", "The evaluation ran successfully.")


def _predict(emu: Any, deployment_id: str, body: dict) -> dict:
    """One chat completion from the emulator's own endpoint, signed as the job's principal."""
    from oci._vendor import requests

    response = requests.post(
        f"{emu.url}/{deployment_id}/predict",
        data=json.dumps(body).encode(),
        headers={"content-type": "application/json", "route": "/v1/chat/completions"},
        auth=emu.job_signer(),
        timeout=30,
    )
    if response.status_code != 200:
        raise RuntimeError(f"/predict answered {response.status_code}: {response.text[:200]}")
    return response.json()


def report_markdown(report: dict) -> str:
    """``report.md``: ADS's ``load_metrics`` requires one next to ``report.json``."""
    lines = [
        f"# Evaluation {report.get('evaluation_name') or ''}: {report['model']}",
        "",
        "| metric | score |",
        "|---|---|",
    ]
    lines += [f"| {m['label']} | {m['score']} |" for m in report["metric_summary_result"]]
    return "\n".join(lines) + "\n"


def write_reports(emu: Any, arguments: dict, report: dict) -> None:
    from ..evaluation.report import model_html

    files = {
        "report.json": json.dumps(report, indent=1).encode(),
        "report.html": model_html(report).encode(),
        "report.md": report_markdown(report).encode(),
    }
    evaluation_id = arguments.get("evaluation_id") or "evaluation"
    base = f"{arguments['output_dir'].rstrip('/')}/{evaluation_id}"
    for name, data in files.items():
        _write_object(emu, f"{base}/{name}", data)
    with emu._lock:  # the evaluation model's artifact, where ADS reads the reports first
        if evaluation_id in emu.state.models:
            buffer = io.BytesIO()
            with zipfile.ZipFile(buffer, "w") as z:
                for name, data in files.items():
                    z.writestr(name, data)
            emu.state.artifacts[evaluation_id] = buffer.getvalue()
