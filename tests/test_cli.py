"""The aqua-lab command line, run as a user would (a subprocess through the installed script)."""

from __future__ import annotations

import json

import pytest

from tests.helpers.cli import run_cli

pytestmark = [pytest.mark.cli, pytest.mark.planning]


def test_list_shapes_prints_the_seeds_fields_with_canonical_names():
    out = run_cli("deployment", "list_shapes", "--array")
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
    out = run_cli(
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
    out = run_cli(
        "plan", "--model_ids", "gemma-2b,Llama-3.2-1B,phi-2", "--primary_model_id", "phi-2", "--shape", "bm.gpu.a10.4"
    )
    assert out.returncode == 0, out.stderr
    assert "BM.GPU.A10.4  (4 × A10 24 GB)  uses 4/4 GPUs" in out.stdout
    assert "GPUs  |A|B|C|C|" in out.stdout
    assert "*primary" in out.stdout


def test_plan_shows_the_alternative_that_fills_more_gpus():
    out = run_cli(
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
    bad = run_cli("plan", "--model_ids", "mine,gemma-2b", "--model_config", f"mine={cfg}")
    assert bad.returncode == 2
    assert bad.stderr.strip().count("\n") == 0
    assert f"{cfg}, line 5, column 19: $: trailing comma" in bad.stderr
    cfg.write_text(
        seed_sample_text.replace('"BM.GPU.A10.4",\n', '"BM.GPU.A10.4"\n').replace('"gpu_count": 2,', '"gpu_count": 2')
    )
    good = run_cli("plan", "--model_ids", "mine,gemma-2b", "--model_config", f"mine={cfg}", "--json")
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
    out = run_cli(*args)
    assert out.returncode == 2
    assert message in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1
    assert "Traceback" not in out.stderr


def test_payload_prints_the_model_group_and_deployment_bodies():
    out = run_cli(
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
    out = run_cli("model", "list")
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
    out = run_cli(
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
    fp8 = run_cli(
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
    ads = run_cli(
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
        (["--weight_precision", "q9"], "--weight_precision: Value error, unknown precision 'q9'"),
        (["--gpu_memory_utilization", "1.5"], "--gpu_memory_utilization: Input should be less than or equal to 1"),
        (["--kv_cache_dtype", "int2"], "invalid choice: 'int2'"),
    ],
)
def test_bad_what_if_input_is_one_line_and_exit_2(args, message):
    out = run_cli("plan", "--model_ids", "phi-4", *args)
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
    out = run_cli("plan", "--model_ids", '["google/gemma-2b"]', "--shape", "VM.GPU.A10.2")
    assert out.returncode == 0, out.stderr
    assert "VM.GPU.A10.2" in out.stdout and "not offered by this platform" not in out.stdout
    phi4 = run_cli("plan", "--model_ids", '["microsoft/phi-4", "google/gemma-2b"]')
    lines = [line for line in phi4.stdout.splitlines() if "gpu_count is 5" in line]
    assert len(lines) == 1 and "on 4 shapes" in lines[0] and "--verbose" in lines[0], phi4.stdout
    verbose = run_cli("plan", "--verbose", "--model_ids", '["microsoft/phi-4", "google/gemma-2b"]')
    assert len([line for line in verbose.stdout.splitlines() if "gpu_count is 5" in line]) == 4


def test_a_model_typo_and_a_shape_typo_are_both_reported_and_suggestions_rank_by_version():
    out = run_cli("plan", "--model_ids", '["gema-2b"]', "--shape", "VM.GPU.A1")
    assert out.returncode == 2 and "model_ids[0]: unknown model 'gema-2b'" in out.stderr
    assert "shape: unknown shape 'VM.GPU.A1'" in out.stderr
    llama = run_cli("plan", "--model_ids", '["llama-3.1-8b"]')
    assert "did you mean 'meta-llama/Meta-Llama-3.1-8B'" in llama.stderr, llama.stderr


def test_lists_have_tables_with_headers_and_registered_models_have_a_size(tmp_path):
    from aqua_lab.platforms.local.models import smollm2_path

    env = {**__import__("os").environ, "AQUA_LAB_DATA_DIR": str(tmp_path / "data")}
    shapes = run_cli("deployment", "list_shapes", "--table")
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
