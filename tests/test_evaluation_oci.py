"""Evaluations on OCI as ADS stores them (issue 13 point 5, issue 20 point 7), against the emulator,
whose job runs score for real: the seed's ``ads aqua evaluation create`` through the CLI, the service,
and records written the way ADS writes them."""

from __future__ import annotations

import json
import os
import time

import pytest

os.environ.setdefault("OCI_SDK_DEFAULT_RETRY_ENABLED", "false")  # before oci is imported anywhere
os.environ.setdefault("OCI_SDK_DEFAULT_CIRCUITBREAKER_ENABLED", "false")

from aqua_lab.domain import DeploymentSpec, EvaluationSpec  # noqa: E402
from aqua_lab.emulator import Emulator, seed_from_bundled, write_api_key_config  # noqa: E402
from aqua_lab.errors import Conflict, InvalidInput, UpstreamError  # noqa: E402
from aqua_lab.platforms.oci import OciPlatform, Settings, resolve_auth  # noqa: E402
from aqua_lab.service import AquaLabService  # noqa: E402
from tests.helpers.cli import run_cli  # noqa: E402

pytestmark = [pytest.mark.evaluation, pytest.mark.oci]

HOME = "ocid1.compartment.oc1..home"
SERVICE = "ocid1.compartment.oc1..service"
PROJECT = "ocid1.datascienceproject.oc1..aqua"
NS, BUCKET = "emunamespace", "evals"
MISTRAL, FALCON = "mistralai/Mistral-7B-v0.1", "tiiuae/falcon-7b"
DATASET = f"oci://{BUCKET}@{NS}/path/to/the/dataset.jsonl"
ROWS = [
    {
        "prompt": "what is an activation function?",
        "completion": "a function applied to a neuron's output",
        "category": "ml",
    },
    {"prompt": "name a prime number", "completion": "seven is a prime number", "category": "math"},
    {"prompt": "what colour is the sky?", "completion": "the sky is blue on a clear day", "category": "general"},
    {"prompt": "what is rouge?", "completion": "rouge answers a question about overlap", "category": "ml"},
]

# the fields of the seed's `evaluation create` output, in the seed's types
SEED_FIELDS = {
    "id": str,
    "name": str,
    "aqua_service_model": bool,
    "state": str,
    "description": (str, type(None)),
    "created_on": str,
    "created_by": str,
    "endpoint": str,
    "console_link": str,
    "shape_info": dict,
    "tags": dict,
}
SHAPE_INFO_FIELDS = {"instance_shape": str, "instance_count": int, "ocpus": float, "memory_in_gbs": float}
# ADS 2.16's AquaEvaluationSummary (what `ads aqua evaluation create` really prints)
ADS_FIELDS = {
    "lifecycle_state": str,
    "lifecycle_details": str,
    "time_created": str,
    "console_url": str,
    "experiment": dict,
    "source": dict,
    "job": dict,
    "parameters": dict,
}


def assert_fields(record: dict, fields: dict, what: str) -> None:
    for name, kind in fields.items():
        assert name in record, f"{what} lacks the field {name!r}"
        assert isinstance(record[name], kind), f"{what}.{name} = {record[name]!r}, expected {kind}"
        if kind is int:
            assert not isinstance(record[name], bool)


def objects(text: str) -> list:
    decoder, values, i = json.JSONDecoder(), [], 0
    while True:
        while i < len(text) and text[i].isspace():
            i += 1
        if i == len(text):
            return values
        value, i = decoder.raw_decode(text, i)
        values.append(value)


def jsonl(rows: list[dict]) -> bytes:
    return "".join(json.dumps(r) + "\n" for r in rows).encode()


@pytest.fixture(scope="module")
def emulator():
    emulator = Emulator(polls_to_active=1).start()
    emulator.ids = seed_from_bundled(emulator, SERVICE)
    emulator.put_object(BUCKET, "path/to/the/dataset.jsonl", jsonl(ROWS))
    yield emulator
    for run in emulator.state.job_runs.values():  # no job thread outlives the module
        if "_cancel" in run:
            run["_cancel"].set()
    for thread in emulator.job_threads.values():
        thread.join(10)
    emulator.stop()


@pytest.fixture(scope="module")
def config_file(emulator, tmp_path_factory):
    return write_api_key_config(emulator, tmp_path_factory.mktemp("oci"))


@pytest.fixture(scope="module")
def service(emulator, config_file):
    platform = OciPlatform(
        resolve_auth(config_file=config_file),
        Settings(
            compartment_id=HOME,
            project_id=PROJECT,
            service_compartment_id=SERVICE,
            endpoint=emulator.url,
            retry_base_s=0.01,
        ),
    )
    return AquaLabService(platform)


@pytest.fixture(scope="module")
def deployment(emulator, service):
    """The seed's two-model deployment, ACTIVE."""
    spec = DeploymentSpec(
        models=[
            {"model_id": emulator.ids[MISTRAL], "gpu_count": 1},
            {"model_id": emulator.ids[FALCON], "gpu_count": 1},
        ],
        instance_shape="VM.GPU.A10.2",
        display_name="modelDeployment_multmodel_model1_model2",
        compartment_id=HOME,
    )
    d = service.wait(service.create_deployment(spec).id, timeout=10, interval=0.01)
    assert d.state == "ACTIVE" and d.served_names() == [MISTRAL, FALCON]
    yield d
    service.delete(d.id)


@pytest.fixture(scope="module")
def cli(emulator, config_file):
    base = {k: v for k, v in os.environ.items() if not k.startswith("AQUA_LAB_") and k != "PROJECT_OCID"}
    base.update(
        {
            "OCI_CONFIG_LOCATION": str(config_file),
            "AQUA_LAB_OCI_ENDPOINT": emulator.url,
            "AQUA_LAB_COMPARTMENT_OCID": HOME,
            "AQUA_LAB_SERVICE_COMPARTMENT_OCID": SERVICE,
            "OCI_SDK_DEFAULT_RETRY_ENABLED": "false",
        }
    )
    return lambda *args: run_cli(*args, env=base)


@pytest.fixture
def slow_jobs(emulator):
    """Each answer takes a while, so progress and cancel can be seen."""
    emulator.job_start_delay_s, emulator.job_row_delay_s = 0.3, 0.3
    yield
    emulator.job_start_delay_s, emulator.job_row_delay_s = 0.0, 0.0


def _spec(deployment, **overrides) -> EvaluationSpec:
    request = {
        "evaluation_source_id": deployment.id,
        "evaluation_name": "test_evaluation",
        "dataset_path": DATASET,
        "report_path": f"oci://{BUCKET}@{NS}/report/path/",
        "model_parameters": {"model": FALCON, "max_tokens": 8},
        "metrics": [{"name": "rouge", "args": {}}, {"name": "bleu", "args": {}}],
        **overrides,
    }
    return EvaluationSpec.model_validate(request)


def _wait(service, evaluation_id, timeout=60):
    seen = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        e = service.get_evaluation(evaluation_id)
        if not seen or seen[-1] != e.state:
            seen.append(e.state)
        if e.state not in ("ACCEPTED", "IN_PROGRESS", "CANCELING"):
            return e, seen
        time.sleep(0.05)
    raise AssertionError(f"{evaluation_id} still {seen[-1]} after {timeout}s")


def _custom(record: dict) -> dict:
    return {m["key"]: m["value"] for m in record["customMetadataList"]}


# --------------------------------------------------------------------------------------------------
# the seed's command, for every served model: one comparison


def test_the_seeds_command_for_both_models_is_one_comparison_scored_for_real(cli, emulator, deployment, slow_jobs):
    emulator.job_row_delay_s = 2.0  # IN_PROGRESS outlasts a CLI poll (a process start) on a busy machine
    created = cli(
        "evaluation",
        "create",
        "--evaluation_source_id",
        deployment.id,
        "--evaluation_name",
        "test_evaluation",
        "--dataset_path",
        DATASET,
        "--report_path",
        f"oci://{BUCKET}@{NS}/report/path/",
        "--model_parameters",
        '{"max_tokens": 500, "temperature": 0.7, "top_p": 1.0, "top_k": 50}',
        "--shape_name",
        "VM.Standard.E4.Flex",
        "--block_storage_size",
        "50",
        "--metrics",
        '[{"name": "bertscore", "args": {}}, {"name": "rouge", "args": {}}]',
        "--experiment_name",
        "seed experiments",
    )
    assert created.returncode == 0, created.stderr
    out = json.loads(created.stdout)
    assert_fields(out, SEED_FIELDS, "evaluation create")
    assert_fields(out["shape_info"], SHAPE_INFO_FIELDS, "shape_info")
    assert_fields(out, ADS_FIELDS, "evaluation create (ADS)")
    assert out["shape_info"] == {
        "instance_shape": "VM.Standard.E4.Flex",
        "instance_count": 1,
        "ocpus": 1.0,
        "memory_in_gbs": 16.0,
    }
    assert out["id"].startswith("ocid1.datasciencemodel.") and out["state"] in ("ACCEPTED", "IN_PROGRESS")
    assert out["endpoint"] == deployment.endpoint and out["console_link"].endswith(
        f"/models/{out['id']}?region=us-ashburn-1"
    )
    assert out["aqua_service_model"] is deployment.aqua_service_model  # the evaluated deployment's, as ADS prints it
    assert out["tags"]["aqua_evaluation"] == "aqua_evaluation"
    assert out["source"]["id"] == deployment.id and out["experiment"]["name"] == "seed experiments"
    rows = {m["model"]: m for m in out["models"]}
    assert list(rows) == [MISTRAL, FALCON] and rows[MISTRAL]["evaluation_id"] == out["id"]  # the first is the id

    # stored as ADS stores it: one evaluation model, job and run per model, the model OCID in the job
    for served, row in rows.items():
        model = emulator.state.models[row["evaluation_id"]]
        meta = _custom(model)
        assert model["freeformTags"]["aqua_evaluation"] == "aqua_evaluation"
        assert model["freeformTags"]["aqua_lab_comparison"] == out["id"]
        assert meta["evaluation_source"] == deployment.id and meta["evaluation_source_name"] == deployment.display_name
        assert meta["evaluation_output_path"] == f"oci://{BUCKET}@{NS}/report/path/"
        params = json.loads(model["definedMetadataList"][0]["value"])["model_params"]
        assert params == {
            "shape": "VM.Standard.E4.Flex",
            "dataset_path": DATASET,
            "report_path": f"oci://{BUCKET}@{NS}/report/path/",
            "max_tokens": 500,
            "temperature": 0.7,
            "top_p": 1.0,
            "top_k": 50,
            "model": served,
        }
        job, run = (
            emulator.state.jobs[meta["evaluation_job_id"]],
            emulator.state.job_runs[meta["evaluation_job_run_id"]],
        )
        assert model["_provenance"]["trainingId"] == run["id"] and run["jobId"] == job["id"]
        arguments = json.loads(job["jobConfigurationDetails"]["environmentVariables"]["AIP_SMC_EVALUATION_ARGUMENTS"])
        assert arguments["evaluation_id"] == model["id"] and arguments["params"]["model"] == served
        assert job["freeformTags"] == {"aqua_evaluation": "aqua_evaluation", "evaluation_model_id": model["id"]}
        assert job["projectId"] == deployment.project_id  # the evaluated deployment's project

    # status progresses while the jobs run, through ADS's words
    states = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        status = cli("evaluation", "status", "--evaluation_id", out["id"])
        assert status.returncode == 0, status.stderr
        state = json.loads(status.stdout)["lifecycle_state"]
        if not states or states[-1] != state:
            states.append(state)
        if state not in ("ACCEPTED", "IN_PROGRESS"):
            break
    assert states[-1] == "SUCCEEDED" and "IN_PROGRESS" in states, states
    assert set(json.loads(status.stdout)) >= {"id", "lifecycle_state", "lifecycle_details", "log_id", "loggroup_url"}

    # each model's report.json as the container writes it, its scores those of the libraries
    report = cli("evaluation", "report", "--evaluation_id", out["id"], "--model", FALCON)
    assert report.returncode == 0, report.stderr
    falcon = json.loads(report.stdout)
    assert set(falcon) >= {"metric_summary_result", "metric_results", "model_params", "data"}
    assert falcon["model"] == FALCON and [m["metric"] for m in falcon["metric_summary_result"]] == [
        "bertscore",
        "rouge",
    ]
    assert [r["reference"] for r in falcon["data"]] == [r["completion"] for r in ROWS]
    from rouge_score import rouge_scorer

    scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL", "rougeLsum"], use_stemmer=True)
    for row in falcon["data"]:
        assert row["prediction"].startswith(f"{FALCON} answers:")
        expected = scorer.score(row["reference"], row["prediction"])
        for key in ("rouge1", "rouge2", "rougeL", "rougeLsum"):
            assert row[key] == pytest.approx(expected[key].fmeasure), key
        assert 0 < row["bertscore_f1"] <= 1
    stored = emulator.state.objects[(NS, BUCKET, f"report/path/{rows[FALCON]['evaluation_id']}/report.json")]
    assert json.loads(stored) == falcon
    html = cli(
        "evaluation", "report", "--evaluation_id", rows[FALCON]["evaluation_id"], "--model", FALCON, "--format", "html"
    )
    assert html.returncode == 0 and "<svg" in html.stdout and "</html>" in html.stdout
    # a report file read on its own says what was evaluated
    assert f"<th>evaluation</th><td>test_evaluation {rows[FALCON]['evaluation_id']}</td>" in html.stdout
    assert f"<th>deployment</th><td>{deployment.id}</td>" in html.stdout and "<th>model parameters</th>" in html.stdout

    # the comparison, built from both members' report.json
    comparison = json.loads(cli("evaluation", "report", "--evaluation_id", out["id"]).stdout)
    assert comparison["models"] == [MISTRAL, FALCON] and comparison["evaluation_id"] == out["id"]
    assert set(comparison["metrics"]["rougeL"]["models"]) == {MISTRAL, FALCON}
    assert comparison["rows"][0]["answers"][MISTRAL].startswith(f"{MISTRAL} answers:")
    page = cli("evaluation", "report", "--evaluation_id", out["id"], "--format", "html").stdout
    assert f"<th>models</th><td>{MISTRAL}, {FALCON}</td>" in page and f"<td>{deployment.id}</td>" in page
    # a member's id with the other model: the message points at the comparison
    wrong = cli("evaluation", "report", "--evaluation_id", rows[FALCON]["evaluation_id"], "--model", MISTRAL)
    assert wrong.returncode == 2 and f"the whole comparison: --evaluation_id {out['id']}" in wrong.stderr

    # listed once, as one comparison, in ADS's framing
    listed = objects(cli("evaluation", "list", "--platform", "oci").stdout)
    mine = [e for e in listed if e["id"] == out["id"]]
    assert len(mine) == 1 and [m["model"] for m in mine[0]["models"]] == [MISTRAL, FALCON]
    assert rows[FALCON]["evaluation_id"] not in [e["id"] for e in listed]
    assert_fields(mine[0], ADS_FIELDS, "evaluation list")


# --------------------------------------------------------------------------------------------------
# one model, experiments


def test_with_model_one_ads_evaluation_and_an_experiment_made_once(service, emulator, deployment):
    first = service.create_evaluation(_spec(deployment, experiment_name="reused", experiment_description="a set"))
    assert first.id.startswith("ocid1.datasciencemodel.") and [m.model for m in first.models] == [FALCON]
    assert "aqua_lab_comparison" not in emulator.state.models[first.id]["freeformTags"]
    second = service.create_evaluation(_spec(deployment, experiment_name="reused"))
    sets = [v for v in emulator.state.version_sets.values() if v["name"] == "reused"]
    assert len(sets) == 1 and sets[0]["freeformTags"] == {"aqua_evaluation": "aqua_evaluation"}
    assert sets[0]["description"] == "a set"
    assert first.experiment.id == second.experiment.id == sets[0]["id"]
    by_id = service.create_evaluation(_spec(deployment, experiment_id=sets[0]["id"]))
    assert by_id.experiment.name == "reused"
    done, _ = _wait(service, by_id.id)
    assert done.state == "SUCCEEDED" and done.details == "The evaluation ran successfully."
    report = json.loads(service.evaluation_report(by_id.id, FALCON))
    from sacrebleu.metrics import BLEU

    for row in report["data"]:
        expected = BLEU(tokenize="13a", lowercase=False, effective_order=True).sentence_score(
            row["prediction"], [row["reference"]]
        )
        assert row["bleu"] == pytest.approx(expected.score)

    # an experiment that is not one made for evaluations is refused, naming the option
    other = emulator.state.version_sets
    plain = service.platform.ds.create_model_version_set(
        service.platform._sdk(
            {"compartmentId": HOME, "projectId": PROJECT, "name": "plain"}, "CreateModelVersionSetDetails"
        )
    ).data
    with pytest.raises(InvalidInput) as err:
        service.create_evaluation(_spec(deployment, experiment_id=plain.id))
    assert err.value.problems[0].field == "experiment_id" and "aqua_evaluation" in str(err.value.problems[0])
    assert plain.id in other
    for e in (first, second, by_id):
        _wait(service, e.id)
        service.delete_evaluation(e.id)


def test_a_model_the_deployment_does_not_serve_is_refused_with_the_served_names(service, deployment):
    with pytest.raises(InvalidInput) as err:
        service.create_evaluation(_spec(deployment, model_parameters={"model": "nope"}))
    assert f"one of ['{MISTRAL}', '{FALCON}']" in str(err.value.problems[0])


def test_log_id_without_its_log_group_is_one_line_naming_both(cli, deployment):
    out = cli(
        "evaluation",
        "create",
        "--evaluation_source_id",
        deployment.id,
        "--evaluation_name",
        "e",
        "--dataset_path",
        DATASET,
        "--report_path",
        f"oci://{BUCKET}@{NS}/r/",
        "--model_parameters",
        json.dumps({"model": FALCON}),
        "--log_id",
        "ocid1.log.oc1..x",
    )
    assert out.returncode == 2 and len(out.stderr.strip().splitlines()) == 1
    assert "log_id" in out.stderr and "log_group_id" in out.stderr


def test_log_links_come_from_the_job_run(service, deployment):
    e = service.create_evaluation(_spec(deployment, log_group_id="ocid1.loggroup.oc1..g", log_id="ocid1.log.oc1..l"))
    assert e.log_group.id == "ocid1.loggroup.oc1..g" and e.log.id == "ocid1.log.oc1..l"
    assert e.log.url.startswith("https://cloud.oracle.com/logging/search?")
    # as ADS prints them: create names the job, get (and list) the job run
    assert e.job.id == e.job_id and e.job.url.endswith(f"/jobs/{e.job_id}?region=us-ashburn-1")
    assert service.get_evaluation(e.id).job.id.startswith("ocid1.datasciencejobrun")
    _wait(service, e.id)
    service.delete_evaluation(e.id)


# --------------------------------------------------------------------------------------------------
# evaluations ADS made


def test_an_evaluation_written_as_ads_writes_it_is_listed_read_and_scored(service, emulator, deployment, cli):
    """The records of ``AquaEvaluationApp.create`` made with the SDK calls ADS makes (ADS 2.16:
    version set, model, job, job run, model update, provenance update) — no aqua_lab code."""
    p = service.platform
    ds, sdk = p.ds, p._sdk
    mvs = ds.create_model_version_set(
        sdk(
            {
                "compartmentId": HOME,
                "projectId": PROJECT,
                "name": "Experiment 1",
                "freeformTags": {"aqua_evaluation": "aqua_evaluation"},
            },
            "CreateModelVersionSetDetails",
        )
    ).data
    report_path = f"oci://{BUCKET}@{NS}/ads-made/"
    custom = [
        {"key": "evaluation_source", "value": deployment.id, "category": "Other", "description": ""},
        {"key": "evaluation_output_path", "value": report_path, "category": "Other", "description": ""},
        {"key": "evaluation_source_name", "value": deployment.display_name, "category": "Other", "description": ""},
    ]
    params = {
        "model": MISTRAL,
        "max_tokens": 500,
        "top_p": 1,
        "top_k": 50,
        "temperature": 0.7,
        "presence_penalty": 0,
        "frequency_penalty": 0,
        "stop": [],
    }
    hyper = {
        "model_params": {**params, "shape": "VM.Standard.E3.Flex", "dataset_path": DATASET, "report_path": report_path}
    }
    model = ds.create_model(
        sdk(
            {
                "compartmentId": HOME,
                "projectId": PROJECT,
                "displayName": "Eval2",
                "modelVersionSetId": mvs.id,
                "customMetadataList": custom,
                "definedMetadataList": [{"key": "Hyperparameters", "value": json.dumps(hyper)}],
            },
            "CreateModelDetails",
        )
    ).data
    ds.create_model_provenance(model.id, sdk({"trainingId": ""}, "CreateModelProvenanceDetails"))  # ADS: UNKNOWN
    arguments = {
        "evaluation_id": model.id,
        "evaluation_target_id": deployment.id,
        "input_data": {"format": ".jsonl", "url": DATASET},
        "metrics": [{"name": "rouge", "args": {}}],
        "output_dir": report_path,
        "params": params,
    }
    tags = {"aqua_evaluation": "aqua_evaluation", "evaluation_model_id": model.id}
    job = ds.create_job(
        sdk(
            {
                "projectId": PROJECT,
                "compartmentId": HOME,
                "displayName": "Eval2",
                "jobConfigurationDetails": {
                    "jobType": "DEFAULT",
                    "environmentVariables": {
                        "AIP_SMC_EVALUATION_ARGUMENTS": json.dumps(arguments),
                        "CONDA_BUCKET_NS": "x",
                    },
                },
                "jobInfrastructureConfigurationDetails": {
                    "jobInfrastructureType": "STANDALONE",
                    "shapeName": "VM.Standard.E3.Flex",
                    "blockStorageSizeInGBs": 512,
                    "subnetId": "ocid1.subnet.oc1.iad.x",
                    "jobShapeConfigDetails": {"ocpus": 1.0, "memoryInGBs": 16.0},
                },
                "jobEnvironmentConfigurationDetails": {
                    "jobEnvironmentType": "OCIR_CONTAINER",
                    "image": "dsmc://odsc-llm-evaluate:0.1.3.4",
                },
                "freeformTags": tags,
            },
            "CreateJobDetails",
        )
    ).data
    run = ds.create_job_run(
        sdk(
            {
                "projectId": PROJECT,
                "compartmentId": HOME,
                "jobId": job.id,
                "displayName": "Eval2",
                "freeformTags": tags,
            },
            "CreateJobRunDetails",
        )
    ).data
    ds.update_model(
        model.id,
        sdk(
            {
                "customMetadataList": [
                    *custom,
                    {"key": "evaluation_job_id", "value": job.id, "category": "Other", "description": ""},
                    {"key": "evaluation_job_run_id", "value": run.id, "category": "Other", "description": ""},
                ],
                "freeformTags": {"aqua_evaluation": "aqua_evaluation"},
            },
            "UpdateModelDetails",
        ),
    )
    ds.update_model_provenance(model.id, sdk({"trainingId": run.id}, "UpdateModelProvenanceDetails"))

    listed = {e.id: e for e in service.list_evaluations()}
    assert model.id in listed and listed[model.id].name == "Eval2"
    done, _ = _wait(service, model.id)
    assert done.state == "SUCCEEDED" and done.model == MISTRAL
    assert done.experiment.name == "Experiment 1" and done.source.name == deployment.display_name
    assert (
        done.parameters["shape"] == "VM.Standard.E3.Flex" and done.shape_info["instance_shape"] == "VM.Standard.E3.Flex"
    )
    assert done.job.id == run.id and [m.name for m in done.metrics] == ["rouge"]
    got = cli("evaluation", "get", "--eval_id", model.id)  # ADS's option name; the OCID picks OCI
    assert got.returncode == 0, got.stderr
    assert_fields(json.loads(got.stdout), {**SEED_FIELDS, **ADS_FIELDS}, "evaluation get")
    report = json.loads(service.evaluation_report(model.id, MISTRAL))
    assert report["metric_summary_result"][0]["metric"] == "rouge" and len(report["data"]) == len(ROWS)
    # ADS reads the artifact first: the container wrote the reports there too
    import io
    import zipfile

    names = zipfile.ZipFile(io.BytesIO(emulator.state.artifacts[model.id])).namelist()
    assert sorted(names) == ["report.html", "report.json", "report.md"]
    service.delete_evaluation(model.id)


# --------------------------------------------------------------------------------------------------
# cancel, delete, failures


def test_cancel_stops_the_job_runs(service, emulator, deployment, slow_jobs):
    emulator.put_object(BUCKET, "long.jsonl", jsonl(ROWS * 10))
    e = service.create_evaluation(
        _spec(deployment, dataset_path=f"oci://{BUCKET}@{NS}/long.jsonl", model_parameters={})
    )
    assert len(e.models) == 2
    time.sleep(0.5)
    cancelled = service.cancel_evaluation(e.id)
    assert cancelled.state in ("CANCELING", "CANCELED")
    done, _ = _wait(service, e.id)
    assert done.state == "CANCELED" and {m.state for m in done.models} == {"CANCELED"}
    with pytest.raises(Conflict, match="already CANCELED"):
        service.cancel_evaluation(e.id)
    with pytest.raises(Conflict, match="CANCELED; a report comes when it SUCCEEDED"):
        service.evaluation_report(e.id)
    service.delete_evaluation(e.id)


def test_delete_removes_model_job_and_run_and_leaves_the_reports(cli, service, emulator, deployment):
    e = service.create_evaluation(_spec(deployment, report_path=f"oci://{BUCKET}@{NS}/kept/"))
    _wait(service, e.id)
    meta = _custom(emulator.state.models[e.id])
    deleted = cli("evaluation", "delete", "--evaluation_id", e.id)
    assert deleted.returncode == 0, deleted.stderr
    assert json.loads(deleted.stdout)["state"] == "DELETED"
    assert [m["state"] for m in json.loads(deleted.stdout)["models"]] == ["DELETED"]  # no row still SUCCEEDED
    assert emulator.state.models[e.id]["lifecycleState"] == "DELETED"
    assert emulator.state.jobs[meta["evaluation_job_id"]]["lifecycleState"] == "DELETED"
    assert emulator.state.job_runs[meta["evaluation_job_run_id"]]["lifecycleState"] == "DELETED"
    assert (NS, BUCKET, f"kept/{e.id}/report.json") in emulator.state.objects
    assert e.id not in [x.id for x in service.list_evaluations()]
    gone = cli("evaluation", "get", "--evaluation_id", e.id)
    assert gone.returncode == 2 and "evaluation" in gone.stderr


def test_a_bad_dataset_fails_the_run_with_the_reason(service, emulator, deployment):
    # through the emulator's unsigned control API, as a manual run would put it there
    import urllib.request

    text = (jsonl(ROWS[:1]) + b'{"prompt": "no completion"}\n').decode()
    request = urllib.request.Request(
        f"{emulator.url}/_emulator/objects",
        data=json.dumps({"bucket": BUCKET, "name": "bad.jsonl", "text": text}).encode(),
    )
    with urllib.request.urlopen(request) as answer:
        assert json.loads(answer.read())["uri"] == f"oci://{BUCKET}@{NS}/bad.jsonl"
    bad = service.create_evaluation(_spec(deployment, dataset_path=f"oci://{BUCKET}@{NS}/bad.jsonl"))
    # one removed after the create (the job reads it later) fails the run, saying which
    emulator.put_object(BUCKET, "gone.jsonl", jsonl(ROWS))
    emulator.job_start_delay_s = 0.5
    try:
        gone = service.create_evaluation(_spec(deployment, dataset_path=f"oci://{BUCKET}@{NS}/gone.jsonl"))
        del emulator.state.objects[(NS, BUCKET, "gone.jsonl")]
    finally:
        emulator.job_start_delay_s = 0.0
    failed, _ = _wait(service, bad.id)
    assert failed.state == "FAILED" and "line 2" in failed.details and "completion" in failed.details
    failed, _ = _wait(service, gone.id)
    assert failed.state == "FAILED" and "gone.jsonl was not found" in failed.details
    for e in (bad, gone):
        service.delete_evaluation(e.id)


def test_a_dataset_not_in_object_storage_is_refused_before_anything_is_made(cli, emulator, deployment):
    """The seed's command with a path that is not there (here: another namespace, the usual slip)
    is one line naming --dataset_path and the namespace, exit 2, and no evaluation model is made."""
    models = len(emulator.state.models)
    out = cli(
        "evaluation",
        "create",
        "--evaluation_source_id",
        deployment.id,
        "--evaluation_name",
        "test_evaluation",
        "--dataset_path",
        f"oci://{BUCKET}@othernamespace/path/to/the/dataset.jsonl",
        "--report_path",
        f"oci://{BUCKET}@{NS}/report/path/",
        "--model_parameters",
        json.dumps({"model": FALCON}),
    )
    assert out.returncode == 2 and len(out.stderr.strip().splitlines()) == 1, out.stderr
    assert "dataset_path" in out.stderr and "namespace 'othernamespace'" in out.stderr and "oci os ns get" in out.stderr
    assert len(emulator.state.models) == models


def test_a_create_that_fails_midway_leaves_nothing_behind(service, emulator, deployment):
    def live(table: dict) -> set[str]:
        return {k for k, v in table.items() if v["lifecycleState"] not in ("DELETED", "CANCELED")}

    before = (live(emulator.state.models), live(emulator.state.jobs), live(emulator.state.job_runs))
    # the first model's run is made, the second model's is refused (every retry of it)
    emulator.inject(r"^/20190101/jobRuns$", status=500, count=10, method="POST", skip=1)
    try:
        with pytest.raises(UpstreamError, match="create job run failed: 500"):
            service.create_evaluation(_spec(deployment, model_parameters={}, experiment_name="made by a failed create"))
    finally:
        emulator.faults.clear()
    assert (live(emulator.state.models), live(emulator.state.jobs), live(emulator.state.job_runs)) == before
    assert "made by a failed create" not in {
        v["name"] for v in emulator.state.version_sets.values() if v["lifecycleState"] != "DELETED"
    }


def test_states_follow_ads_lifecycle_rules():
    from aqua_lab.platforms.oci.evaluations import comparison_state, evaluation_state

    assert evaluation_state("ACTIVE", "IN_PROGRESS") == "IN_PROGRESS"
    assert evaluation_state("ACTIVE", "NEEDS_ATTENTION") == "FAILED"
    assert evaluation_state("ACTIVE", None) == "NEEDS_ATTENTION"  # ADS: the run is missing
    assert evaluation_state("DELETED", "SUCCEEDED") == "DELETED"  # the model's state wins once not ACTIVE
    assert comparison_state(["SUCCEEDED", "IN_PROGRESS"]) == "IN_PROGRESS"
    assert comparison_state(["CANCELED", "CANCELING"]) == "CANCELING"
    assert comparison_state(["SUCCEEDED", "FAILED"]) == "FAILED"
    assert comparison_state(["SUCCEEDED", "SUCCEEDED"]) == "SUCCEEDED"


def test_a_dataset_on_this_machine_is_checked_then_uploaded_next_to_the_report(service, emulator, deployment, tmp_path):
    mine = tmp_path / "mine.jsonl"
    mine.write_bytes(jsonl(ROWS))
    report_path = f"oci://{BUCKET}@{NS}/uploads/"
    e = service.create_evaluation(_spec(deployment, dataset_path=str(mine), report_path=report_path))
    assert emulator.state.objects[(NS, BUCKET, "uploads/mine.jsonl")] == jsonl(ROWS)
    assert e.dataset_path == f"oci://{BUCKET}@{NS}/uploads/mine.jsonl" == e.parameters["dataset_path"]
    done, _ = _wait(service, e.id)
    assert done.state == "SUCCEEDED"
    mine.write_bytes(jsonl(ROWS[:2]))
    with pytest.raises(InvalidInput) as err:  # ADS: a file of that name is there already
        service.create_evaluation(_spec(deployment, dataset_path=str(mine), report_path=report_path))
    assert "mine.jsonl already exists" in str(err.value.problems[0])
    assert "force_overwrite" in str(err.value.problems[0])
    assert emulator.state.objects[(NS, BUCKET, "uploads/mine.jsonl")] == jsonl(ROWS)
    again = service.create_evaluation(
        _spec(deployment, dataset_path=str(mine), report_path=report_path, force_overwrite=True)
    )
    assert emulator.state.objects[(NS, BUCKET, "uploads/mine.jsonl")] == jsonl(ROWS[:2])
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt": "p"}\n')
    with pytest.raises(InvalidInput) as err:  # refused here, before anything is made on OCI
        service.create_evaluation(_spec(deployment, dataset_path=str(bad), report_path=report_path))
    assert err.value.problems[0].field.startswith("dataset_path line 1")
    assert (NS, BUCKET, "uploads/bad.jsonl") not in emulator.state.objects
    for x in (e, again):
        _wait(service, x.id)
        service.delete_evaluation(x.id)


# --------------------------------------------------------------------------------------------------
# what a new user trips over: each refused at create, one line naming the option, nothing made


@pytest.mark.parametrize(
    ("options", "named", "says"),
    [
        (["--model_parameters", '{"max_tokens": "five"}'], "model_parameters.max_tokens", "a whole number between 1"),
        (["--model_parameters", '{"top_p": 1.5, "model": "tiiuae/falcon-7b"}'], "model_parameters.top_p", "between 0"),
        (["--model_parameters", '{"stop": 3}'], "model_parameters.stop", "a list of strings"),
        (["--evaluation_source_id", "ocid1.datasciencemodel.oc1.iad.abc"], "evaluation_source_id", "deploy a model"),
        (
            ["--evaluation_source_id", "ocid1.datasciencemodeldeployment.oc1.iad.gone"],
            "evaluation_source_id",
            "aqua-lab deployment list",
        ),
        (["--experiment_id", "ocid1.datasciencemodelversionset.oc1..gone"], "experiment_id", "--experiment_name"),
    ],
)
def test_a_wrong_option_is_one_line_naming_it_and_nothing_is_made(cli, emulator, deployment, options, named, says):
    given = dict(zip(options[::2], options[1::2], strict=True))
    request = {
        "--evaluation_source_id": deployment.id,
        "--evaluation_name": "test_evaluation",
        "--dataset_path": DATASET,
        "--report_path": f"oci://{BUCKET}@{NS}/report/path/",
        "--model_parameters": "{}",
        **given,
    }
    models, jobs = len(emulator.state.models), len(emulator.state.jobs)
    out = cli("evaluation", "create", *[x for pair in request.items() for x in pair])
    assert out.returncode == 2 and len(out.stderr.strip().splitlines()) == 1, out.stderr
    assert f"{named}:" in out.stderr and says in out.stderr and "Traceback" not in out.stderr
    assert (len(emulator.state.models), len(emulator.state.jobs)) == (models, jobs)


def test_list_shows_what_get_shows_and_get_has_ads_log_identifiers(cli, service, emulator, deployment):
    e = service.create_evaluation(_spec(deployment, ocpus=2, memory_in_gbs=32))
    _wait(service, e.id)
    got = json.loads(cli("evaluation", "get", "--eval_id", e.id).stdout)
    listed = [x for x in objects(cli("evaluation", "list", "--platform", "oci").stdout) if x["id"] == e.id]
    assert len(listed) == 1
    for field in ("endpoint", "shape_info", "metrics", "aqua_service_model", "state", "source", "job"):
        assert listed[0][field] == got[field], field
    assert got["endpoint"] == deployment.endpoint
    assert got["shape_info"] == {
        "instance_shape": "VM.Standard.E4.Flex",
        "instance_count": 1,
        "ocpus": 2.0,
        "memory_in_gbs": 32.0,
    }
    assert [m["name"] for m in listed[0]["metrics"]] == ["rouge", "bleu"]
    # ADS's AquaEvaluationDetail: a job that logs nowhere has empty identifiers, not null
    assert got["log_group"] == got["log"] == {"id": "", "name": "", "url": ""}
    service.delete_evaluation(e.id)


# the report.json of ADS's own test data (ads/aqua tests: valid_eval_artifact/report.json), the shape
# the AQUA evaluation container writes: metric_results by key/name/description, scores as text
ADS_CONTAINER_REPORT = {
    "data": [],
    "metric_results": {"metric1": {"description": "This is a description.", "key": "metric1", "name": "METRIC 1"}},
    "metric_summary_result": [
        {"grade": "Poor", "metric": "METRIC 1", "score": "Median F1: 0.598 (SD: 0.018)"},
    ],
}


def test_the_comparison_reads_reports_the_aqua_container_wrote(cli, service, emulator, deployment):
    e = service.create_evaluation(_spec(deployment, model_parameters={}, report_path=f"oci://{BUCKET}@{NS}/ads/"))
    done, _ = _wait(service, e.id)
    assert done.state == "SUCCEEDED"
    for i, row in enumerate(done.models):  # what a real container leaves there instead of ours
        report = json.loads(json.dumps(ADS_CONTAINER_REPORT))
        report["metric_summary_result"][0]["score"] = f"Median F1: 0.{i + 5}00 (SD: 0.018)"
        emulator.put_object(BUCKET, f"ads/{row.evaluation_id}/report.json", json.dumps(report).encode())
    out = cli("evaluation", "report", "--evaluation_id", e.id)
    assert out.returncode == 0 and "Traceback" not in out.stderr, out.stderr
    comparison = json.loads(out.stdout)
    assert comparison["models"] == [MISTRAL, FALCON]
    assert comparison["metrics"]["metric1"]["label"] == "METRIC 1"
    assert {m: s["median"] for m, s in comparison["metrics"]["metric1"]["models"].items()} == {
        MISTRAL: 0.5,
        FALCON: 0.6,
    }
    html = cli("evaluation", "report", "--evaluation_id", e.id, "--format", "html")
    assert html.returncode == 0 and "<td>0.500</td><td>0.600</td>" in html.stdout
    # ADS's load_metrics of that evaluation (its own model: the first), as AquaEvalMetrics
    loaded = cli("evaluation", "load_metrics", "--eval_id", e.id)
    assert loaded.returncode == 0, loaded.stderr
    metrics = json.loads(loaded.stdout)
    assert metrics["id"] == e.id
    assert metrics["metric_results"] == [
        {"key": "metric1", "name": "METRIC 1", "description": "This is a description."}
    ]
    assert metrics["metric_summary_result"] == [
        {"metric": "METRIC 1", "score": "Median F1: 0.500 (SD: 0.018)", "grade": "Poor"}
    ]
    import base64

    assert "| METRIC 1 | Median F1: 0.500 (SD: 0.018) |" in base64.b64decode(metrics["report"]).decode()
    service.delete_evaluation(e.id)


def test_the_emulators_reports_carry_what_ads_load_metrics_reads(cli, service, emulator, deployment):
    e = service.create_evaluation(_spec(deployment))
    _wait(service, e.id)
    report = json.loads(service.evaluation_report(e.id, FALCON))
    for name, result in report["metric_results"].items():  # ADS's EvaluationMetricResult keys
        assert result["key"] == name and result["name"] == result["label"] and "description" in result
    loaded = json.loads(cli("evaluation", "load_metrics", "--eval_id", e.id).stdout)
    assert [m["key"] for m in loaded["metric_results"]] == ["rouge", "bleu"]
    assert loaded["metric_summary_result"][0]["score"] == report["metric_summary_result"][0]["score"]
    service.delete_evaluation(e.id)


def test_the_emulator_names_its_namespace_and_refuses_a_bad_max_tokens(emulator, deployment):
    import urllib.error
    import urllib.request

    from aqua_lab.emulator.jobs import _predict

    request = urllib.request.Request(
        f"{emulator.url}/_emulator/objects",
        data=json.dumps({"bucket": BUCKET, "namespace": "ns", "name": "x.jsonl", "text": "{}"}).encode(),
    )
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(request)
    assert err.value.code == 400 and NS in err.value.read().decode()
    body = {"model": FALCON, "messages": [{"role": "user", "content": "hi"}], "max_tokens": "five"}
    with pytest.raises(RuntimeError, match="answered 400.*max_tokens must be a positive integer"):
        _predict(emulator, deployment.id, body)
    assert _predict(emulator, deployment.id, {**body, "max_tokens": 3})["choices"][0]["message"]["content"]


def test_a_reader_that_stops_early_is_no_traceback(config_file, emulator):
    """``aqua-lab evaluation list … | head -2``: the reader closes the pipe before the list is written."""
    import subprocess
    import sys

    env = {
        **os.environ,
        "OCI_CONFIG_LOCATION": str(config_file),
        "AQUA_LAB_OCI_ENDPOINT": emulator.url,
        "AQUA_LAB_COMPARTMENT_OCID": HOME,
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "aqua_lab", "evaluation", "metrics", "--platform", "oci"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    proc.stdout.close()  # before the process is up: its first write meets a closed pipe
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0 and b"Traceback" not in err and b"BrokenPipe" not in err, err.decode()


def test_a_plot_of_scores_that_cannot_be_negative_has_no_negative_axis():
    """ROUGE-2 of short answers is often 0 for every row: its box plot read -0.55 … 0.55."""
    import re

    from aqua_lab.evaluation.svg import box_plot

    def ticks(svg: str) -> list[float]:
        return [float(t) for t in re.findall(r">(-?\d+(?:\.\d+)?)</text>", svg)]

    zeros = ticks(box_plot({"a": [0.0, 0.0], "b": [0.0]}, "rouge2"))
    assert min(zeros) == 0 and max(zeros) > 0
    assert min(ticks(box_plot({"a": [-1.0, 0.2]}, "delta"))) <= -1  # a score that can be negative keeps its room
