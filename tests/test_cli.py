"""The aqua-lab command line, run as a user would (a subprocess through the installed script)."""

from __future__ import annotations

import json

import pytest

from tests.helpers.cli import run_cli

pytestmark = [pytest.mark.cli, pytest.mark.planning]


def on_bundled(*args: str, **kwargs):
    """Planning with OCI's service models and shapes as shipped (this machine, local, is the default)."""
    return run_cli(*args, "--platform", "bundled", **kwargs)


def test_list_shapes_prints_the_seeds_fields_with_canonical_names():
    out = on_bundled("deployment", "list_shapes", "--array")
    assert out.returncode == 0, out.stderr
    shapes = {s["name"]: s for s in json.loads(out.stdout)}
    assert shapes["VM.GPU.A10.2"]["gpu_specs"] == {
        "gpu_memory_in_gbs": 48,
        "gpu_count": 2,
        "gpu_type": "A10",
        "per_gpu_memory_in_gbs": 24.0,
    }
    assert "BM.GPU.A100-v2.8" in shapes and "BM.GPU3.8" in shapes and "VM.GPU3.8" not in shapes


def test_get_multimodel_deployment_config_has_the_ads_output_shape():
    out = on_bundled(
        "deployment",
        "get_multimodel_deployment_config",
        "--model_ids",
        '["google/gemma-2b", "meta-llama/Llama-3.2-1B", "microsoft/phi-2"]',
        "--primary_model_id",
        "microsoft/phi-2",
    )
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["error_message"] is None
    a10 = data["gpu_allocation"]["BM.GPU.A10.4"]
    assert [(m["ocid"], m["gpu_count"]) for m in a10["models"]] == [
        ("google/gemma-2b", 1),
        ("meta-llama/Llama-3.2-1B", 1),
        ("microsoft/phi-2", 2),
    ]
    assert a10["total_gpus_available"] == 4 and a10["primary_honoured"] is True


def test_plan_prints_a_gpu_split_table():
    out = on_bundled(
        "plan", "--model_ids", "gemma-2b,Llama-3.2-1B,phi-2", "--primary_model_id", "phi-2", "--shape", "bm.gpu.a10.4"
    )
    assert out.returncode == 0, out.stderr
    assert "BM.GPU.A10.4  (4 × A10 24 GB)  uses 4/4 GPUs" in out.stdout
    assert "GPUs  |A|B|C|C|" in out.stdout
    assert "*primary" in out.stdout


def test_plan_shows_the_alternative_that_fills_more_gpus():
    out = on_bundled(
        "plan",
        "--model_ids",
        "google/codegemma-1.1-2b,codellama/CodeLlama-7b-Instruct-hf",
        "--primary_model_id",
        "google/codegemma-1.1-2b",
        "--shape",
        "BM.GPU.A10.4",
    )
    assert out.returncode == 0, out.stderr
    assert "GPUs  |A|B|·|·|" in out.stdout
    assert "alternative  |A|B|B|·|  A 1, B 2: fills 3 of 4 GPUs (+1)" in out.stdout


def test_plan_with_a_custom_model_config(tmp_path, seed_sample_text):
    cfg = tmp_path / "deployment_config.json"
    cfg.write_text(seed_sample_text)
    bad = on_bundled("plan", "--model_ids", "mine,gemma-2b", "--model_config", f"mine={cfg}")
    assert bad.returncode == 2
    assert bad.stderr.strip().count("\n") == 0
    assert f"{cfg}, line 5, column 19: $: trailing comma" in bad.stderr
    cfg.write_text(
        seed_sample_text.replace('"BM.GPU.A10.4",\n', '"BM.GPU.A10.4"\n').replace('"gpu_count": 2,', '"gpu_count": 2')
    )
    good = on_bundled("plan", "--model_ids", "mine,gemma-2b", "--model_config", f"mine={cfg}", "--json")
    assert good.returncode == 0, good.stderr
    assert "VM.GPU.A10.4" in good.stderr  # the dangling shape warning
    assert json.loads(good.stdout)["gpu_allocation"]["VM.GPU.A10.2"]["models"][0]["gpu_count"] == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["plan", "--model_ids", "[not json"], "--model_ids: not valid JSON"),
        (["plan", "--model_ids", "gemma-2c"], "unknown model 'gemma-2c' — did you mean 'google/gemma-2b'"),
        (
            ["plan", "--model_ids", "gemma-2b", "--primary_model_id", "phi-2"],
            "primary_model_id: 'microsoft/phi-2' is not one of",
        ),
        (
            [
                "deployment",
                "validate",
                "--models",
                '[{"model_id": "gemma-2b", "gpu_count": 3}]',
                "--instance_shape",
                "VM.GPU.A10.2",
                "--display_name",
                "x",
            ],
            "models[0].gpu_count: 3 is not a power of two",
        ),
        (
            [
                "deployment",
                "validate",
                "--models",
                '[{"model_id": "gemma-2b", "gpus": 1}]',
                "--instance_shape",
                "VM.GPU.A10.2",
                "--display_name",
                "x",
            ],
            "--models[0].gpus: Extra inputs are not permitted",
        ),
        (["deployment", "nope"], "invalid choice: 'nope'"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(args, message):
    out = on_bundled(*args)
    assert out.returncode == 2
    assert message in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1
    assert "Traceback" not in out.stderr


def test_payload_prints_the_model_group_and_deployment_bodies():
    out = on_bundled(
        "deployment",
        "payload",
        "--models",
        json.dumps([{"model_id": "gemma-2b", "gpu_count": 1, "model_name": name} for name in "ab"]),
        "--instance_shape",
        "vm.gpu.a10.2",
        "--display_name",
        "twins",
    )
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    params = [m["params"] for m in data["multi_model_config"]["models"]]
    assert params == [
        "--served-model-name a --seed 42 --tensor-parallel-size 1",
        "--served-model-name b --seed 42 --tensor-parallel-size 1",
    ]
    assert data["served_params"] == dict(zip("ab", params, strict=True))  # each model's effective flags
    assert data["model_group"]["memberModelEntries"]["memberModelDetails"] == [{"modelId": "google/gemma-2b"}]
    shape = data["model_deployment"]["modelDeploymentConfigurationDetails"]["infrastructureConfigurationDetails"]
    assert shape["instanceConfiguration"]["instanceShapeName"] == "VM.GPU.A10.2"


def test_model_list_and_config_check(tmp_path):
    out = on_bundled("model", "list")
    assert out.returncode == 0 and "meta-llama/Meta-Llama-3.1-70B-Instruct" in out.stdout and "70B" in out.stdout
    cfg = tmp_path / "c.json"
    cfg.write_text(
        json.dumps(
            {
                "shape": ["VM.GPU.A10.2"],
                "configuration": {"vm.gpu.a10.2": {"multi_model_deployment": [{"gpu_count": 1}]}},
            }
        )
    )
    out = run_cli("config", "check", str(cfg))
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["multi_model_gpu_counts"] == {"VM.GPU.A10.2": [1]}


def test_plan_what_if_options_show_weights_kv_capacity_and_max_context():
    out = on_bundled(
        "plan",
        "--model_ids",
        "Meta-Llama-3.1-8B-Instruct,gpt-oss-20b,phi-4",
        "--shape",
        "BM.GPU.A10.4",
        "--max_model_len",
        "32768",
        "--concurrency",
        "4",
    )
    assert out.returncode == 0, out.stderr
    assert "weights 16.06 GB/GPU  KV 27,008 tokens  max context 6,752 at concurrency 4" in out.stdout
    assert "DOES NOT FIT  → --max-model-len 6656" in out.stdout
    fp8 = on_bundled(
        "plan",
        "--model_ids",
        "Meta-Llama-3.1-8B-Instruct",
        "--shape",
        "VM.GPU.A10.2",
        "--kv_cache_dtype",
        "fp8",
        "--json",
    )
    assert fp8.returncode == 0, fp8.stderr
    result = json.loads(fp8.stdout)
    memory = result["gpu_allocation"]["VM.GPU.A10.2"]["models"][0]["memory"]
    assert memory["kv_cache_dtype"] == "fp8" and memory["tensor_parallel_size"] == 2
    assert memory["kv_bytes_per_token"] == 2 * 32 * 4 * 128 * 1  # 4 of 8 KV heads per GPU, 1 byte each
    assert result["capacity"]["kv_cache_dtype"] == "fp8"
    ads = on_bundled(
        "deployment",
        "get_multimodel_deployment_config",
        "--model_ids",
        "phi-4",
        "--weight_precision",
        "Q4_K_M",
        "--gpu_memory_utilization",
        "0.8",
    )
    assert ads.returncode == 0, ads.stderr
    fit = json.loads(ads.stdout)["gpu_allocation"]["BM.GPU.A10.4"]["models"][0]["memory"]
    assert fit["weight_precision"] == "Q4_K_M" and fit["gpu_memory_utilization"] == 0.8


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--concurrency", "0"], "--concurrency: Input should be greater than or equal to 1"),
        (["--weight_precision", "q9"], "--weight_precision: unknown precision 'q9'"),
        (["--gpu_memory_utilization", "1.5"], "--gpu_memory_utilization: Input should be less than or equal to 1"),
        (["--kv_cache_dtype", "int2"], "invalid choice: 'int2'"),
    ],
)
def test_bad_what_if_input_is_one_line_and_exit_2(args, message):
    out = on_bundled("plan", "--model_ids", "phi-4", *args)
    assert out.returncode == 2
    assert message in out.stderr and len(out.stderr.strip().splitlines()) == 1


def test_model_register_then_unregister(tmp_path):
    from tests.helpers.lora import write_lora_gguf

    env = {**__import__("os").environ, "AQUA_LAB_DATA_DIR": str(tmp_path / "data")}
    adapter = write_lora_gguf(tmp_path / "cli-lora.gguf")
    made = run_cli(
        "model", "register", str(adapter), "--name", "cli-lora", "--base_model_id", "smollm2-135m-instruct", env=env
    )
    assert made.returncode == 0, made.stderr
    model_id = json.loads(made.stdout)["id"]
    assert model_id in run_cli("model", "list", "--platform", "local", env=env).stdout
    gone = run_cli("model", "unregister", model_id, env=env)
    assert gone.returncode == 0, gone.stderr
    assert model_id not in run_cli("model", "list", "--platform", "local", env=env).stdout
    again = run_cli("model", "unregister", model_id, env=env)
    assert again.returncode != 0 and "unknown model" in again.stderr


def test_on_a_cpu_machine_plans_and_errors_say_cores_and_ram():
    from aqua_lab.platforms.local.hardware import local_shape

    if not local_shape().is_cpu:
        pytest.skip("this machine has GPUs")
    out = run_cli("plan", "--platform", "local", "--model_ids", '["smollm2-135m-instruct"]')
    assert out.returncode == 0, out.stderr
    assert "cores" in out.stdout and "RAM" in out.stdout and "GPU" not in out.stdout, out.stdout
    models = '[{"model_id": "smollm2-135m-instruct", "gpu_count": 64}]'
    bad = run_cli("deployment", "validate", "--platform", "local", "--models", models, "--display_name", "x")
    assert bad.returncode == 2 and "64 cores but LOCAL.CPU." in bad.stderr and "GPU" not in bad.stderr, bad.stderr


def test_plan_with_one_shape_says_nothing_of_the_others_and_data_warnings_come_once():
    out = on_bundled("plan", "--model_ids", '["google/gemma-2b"]', "--shape", "VM.GPU.A10.2")
    assert out.returncode == 0, out.stderr
    assert "VM.GPU.A10.2" in out.stdout and "not offered by this platform" not in out.stdout
    phi4 = on_bundled("plan", "--model_ids", '["microsoft/phi-4", "google/gemma-2b"]')
    lines = [line for line in phi4.stdout.splitlines() if "gpu_count is 5" in line]
    assert len(lines) == 1 and "on 4 shapes" in lines[0] and "--verbose" in lines[0], phi4.stdout
    verbose = on_bundled("plan", "--verbose", "--model_ids", '["microsoft/phi-4", "google/gemma-2b"]')
    assert len([line for line in verbose.stdout.splitlines() if "gpu_count is 5" in line]) == 4


def test_a_model_typo_and_a_shape_typo_are_both_reported_and_suggestions_rank_by_version():
    out = on_bundled("plan", "--model_ids", '["gema-2b"]', "--shape", "VM.GPU.A1")
    assert out.returncode == 2 and "model_ids[0]: unknown model 'gema-2b'" in out.stderr
    assert "shape: unknown shape 'VM.GPU.A1'" in out.stderr
    llama = on_bundled("plan", "--model_ids", '["llama-3.1-8b"]')
    assert "did you mean 'meta-llama/Meta-Llama-3.1-8B'" in llama.stderr, llama.stderr


def test_lists_have_tables_with_headers_and_registered_models_have_a_size(tmp_path):
    from aqua_lab.platforms.local.models import smollm2_path

    env = {**__import__("os").environ, "AQUA_LAB_DATA_DIR": str(tmp_path / "data")}
    shapes = on_bundled("deployment", "list_shapes", "--table")
    assert shapes.stdout.splitlines()[0].split()[:2] == ["SHAPE", "SERIES"] and "VM.GPU.A10.2" in shapes.stdout
    local = run_cli("deployment", "list_shapes", "--platform", "local", "--table", env=env)
    assert "LOCAL." in local.stdout
    listed = run_cli("deployment", "list", "--table", env=env)
    assert listed.returncode == 0 and listed.stdout.strip() == "no deployments"
    made = run_cli("model", "register", str(smollm2_path()), "--name", "my-smol", env=env)
    assert made.returncode == 0, made.stderr
    models = run_cli("model", "list", "--platform", "local", env=env).stdout.splitlines()
    assert models[0].split() == ["MODEL", "ID", "TASK", "SIZE"]
    mine = next(line for line in models if line.startswith("my-smol"))
    assert any(w.endswith("B") and "0.1" in w for w in mine.split()), mine  # its size, read from the GGUF header


# --------------------------------------------------------------------------------------------------
# issue 25, item 10: what the CLI says, and where it runs without --platform


def _local_env(tmp_path) -> dict[str, str]:
    env = {k: v for k, v in __import__("os").environ.items() if k != "AQUA_LAB_PLATFORM"}
    return {**env, "AQUA_LAB_DATA_DIR": str(tmp_path / "data")}


def test_the_platform_note_comes_only_where_the_platform_may_be_why(tmp_path):
    env = _local_env(tmp_path)
    bad_option = run_cli("deployment", "create", "--models", "{", "--display_name", "x", env=env)
    assert bad_option.returncode == 2 and "--models: not valid JSON" in bad_option.stderr
    assert "platform" not in bad_option.stderr, bad_option.stderr  # a bad value is bad on every platform
    missing = run_cli("deployment", "get", "--model_deployment_id", "nope", env=env)
    assert missing.returncode == 2 and "unknown deployment 'nope'" in missing.stderr
    assert "(ran on the local platform, this verb's default: for OCI pass --platform oci" in missing.stderr


def test_plans_are_made_where_deployments_go_and_where_the_server_plans(tmp_path, monkeypatch):
    """One default: the CLI's planning verbs, its deployment verbs and REST's POST plans (the server's
    c.AquaLab.platform) all use the configured platform, else local."""
    from aqua_lab.cli import build_parser
    from aqua_lab.server.app import AquaLab

    monkeypatch.delenv("AQUA_LAB_PLATFORM", raising=False)
    parser = build_parser()
    request = ["--models", "[]", "--display_name", "x"]
    for argv in (
        ["plan", "--model_ids", "x"],
        ["deployment", "get_multimodel_deployment_config", "--model_ids", "x"],
        ["deployment", "validate", *request],
        ["deployment", "payload", *request],
        ["deployment", "list_shapes"],
        ["model", "list"],
        ["deployment", "create", *request],
    ):
        assert parser.parse_args(argv).platform_default == AquaLab().platform == "local", argv
    out = run_cli("plan", "--model_ids", "smollm2-135m-instruct", env=_local_env(tmp_path))
    assert out.returncode == 0 and "LOCAL." in out.stdout, out.stderr


def test_a_model_only_the_bundled_catalog_knows_is_named_with_the_platform_that_plans_it(tmp_path):
    env = _local_env(tmp_path)
    out = run_cli("plan", "--model_ids", "gemma-2b,smollm2-135m-instruct", env=env)
    assert out.returncode == 2 and len(out.stderr.strip().splitlines()) == 1
    assert "google/gemma-2b is in the bundled catalog of OCI's service models, not on this machine" in out.stderr
    assert "pass --platform bundled to plan with it" in out.stderr
    request = '[{"model_id": "microsoft/phi-4", "gpu_count": 1}, {"model_id": "gemma-2b", "gpu_count": 1}]'
    both = run_cli("deployment", "validate", "--models", request, "--display_name", "x", env=env)
    assert "microsoft/phi-4 and google/gemma-2b are in the bundled catalog" in both.stderr, both.stderr
    typo = run_cli("plan", "--model_ids", "gemma-2c", env=env)  # known nowhere: no such hint
    assert typo.returncode == 2 and "bundled catalog" not in typo.stderr


def test_numbers_print_as_people_write_them():
    from aqua_lab.cli.scaling import render_metrics
    from aqua_lab.domain import DeploymentMetrics, MetricPoint

    metrics = DeploymentMetrics(
        deployment_id="d",
        platform="oci",
        window_s=1048576,
        source="OCI Monitoring",
        models=[],
        deployment={"PredictRequestCount": [MetricPoint(time=0, value=2097152.0), MetricPoint(time=1, value=1048576)]},
    )
    text = render_metrics(metrics)
    assert "d over the last 1048576 s" in text and "last 1048576 (max 2097152, 2 points)" in text, text
    from aqua_lab.cli.values import number  # what plans, shapes and model sizes print with

    assert [number(v) for v in (16.06, 0.5, 1e-05, 2.5e6, 3)] == ["16.06", "0.5", "0.00001", "2500000", "3"]


ANSWER = {"id": "c1", "object": "chat.completion", "choices": [{"index": 0, "message": {"content": "Hi there"}}]}


@pytest.fixture
def answering(monkeypatch, tmp_path):
    """A deployment whose every chat answers ANSWER (the CLI's own part, without a model)."""
    from aqua_lab.service import AquaLabService

    async def chat(self, deployment_id, request):
        assert request.stream is False
        return ANSWER

    monkeypatch.setenv("AQUA_LAB_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setattr(AquaLabService, "chat", chat)


def test_no_stream_prints_the_answers_text_and_json_prints_the_answer(answering):
    from aqua_lab.cli import build_parser
    from tests.test_cli_fuzz import leaf_parsers, run_in_process

    ask = ["deployment", "chat", "--model_deployment_id", "d", "--model_name", "m", "--prompt", "Hello"]
    code, text, _ = run_in_process([*ask, "--no_stream"])
    assert code == 0 and text == "Hi there\n"
    code, raw, _ = run_in_process([*ask, "--json"])
    assert code == 0 and json.loads(raw) == ANSWER  # what the seed's requests.post(…).json() shows
    chat = dict(leaf_parsers(build_parser()))[("deployment", "chat")]
    helps = {a.dest: a.help for a in chat._actions}
    assert "JSON" not in helps["no_stream"] and "text" in helps["no_stream"] and "JSON" in helps["json"]


def test_update_of_the_instance_count_waits_as_create_does(monkeypatch, tmp_path):
    from aqua_lab.domain import Deployment
    from aqua_lab.service import AquaLabService
    from tests.test_cli_fuzz import run_in_process

    def state(name: str, progress: int) -> Deployment:
        return Deployment(
            id="d", display_name="x", platform="local", state=name, progress=progress, instance_shape="LOCAL.CPU.2",
            models=[],
        )  # fmt: skip

    seen = [state("CREATING", 50), state("ACTIVE", 100)]
    monkeypatch.setenv("AQUA_LAB_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setattr(AquaLabService, "update_scaling", lambda self, i, change: state("CREATING", 0))
    monkeypatch.setattr(AquaLabService, "get_deployment", lambda self, i: seen.pop(0))
    argv = ["deployment", "update", "--model_deployment_id", "d", "--instance_count", "2"]
    code, out, err = run_in_process([*argv, "--no_wait"])
    assert code == 0 and json.loads(out)["state"] == "CREATING" and len(seen) == 2  # returned at once
    code, out, err = run_in_process(argv)
    assert code == 0 and json.loads(out)["state"] == "ACTIVE" and not seen, err
    assert "CREATING          50%" in err  # the progress create shows
