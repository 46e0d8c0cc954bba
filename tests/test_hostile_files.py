"""Files the server opens on a user's behalf, made hostile (issue 24, items 2–4): devices, FIFOs,
symlink loops, JSON nested 100 000 deep, 5 000-digit numbers, lone surrogates, model folders broken
before or after they were registered.  Each is a quick 4xx naming the field, never a 500, a hang or
a read of the whole device, and one broken model never breaks the catalog.

Anything that could read a device without end runs in a subprocess under ``RLIMIT_AS``; anything
that could block on a FIFO runs under a time limit, and the FIFO is opened for writing afterwards so
that a reader stuck in a regression is released."""

from __future__ import annotations

import asyncio
import json
import os
import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest

from aqua_lab.catalog import load_deployment_config_file
from aqua_lab.errors import ConfigFileError, InvalidInput
from aqua_lab.evaluation import report
from aqua_lab.evaluation.datasets import Row
from aqua_lab.evaluation.runner import ModelScores, Prediction
from aqua_lab.platforms.local import LocalPlatform
from aqua_lab.platforms.local.models import SMOLLM2_ID
from tests import test_evaluation_fronts as fronts
from tests.test_evaluation_routes import spec
from tests.test_model_files import write_safetensors

# the stand-in deployment, its server config and the request helper: the front tests' own
fake, jp_server_config, call = fronts.fake, fronts.jp_server_config, fronts.call

pytest_plugins = ["pytest_jupyter.jupyter_server"]

#: a refusal must come at once: nothing may be read before the path is checked
QUICK_S = 5
GOOD = '{"prompt": "a", "completion": "b"}'
DEEP = "[" * 100_000 + "]" * 100_000
HUGE_INT = "1" + "0" * 5_000
CONFIG = {"num_hidden_layers": 2, "hidden_size": 64, "num_attention_heads": 4, "max_position_embeddings": 512}


def release(fifo: Path) -> None:
    """Open a FIFO for writing and close it: a reader blocked on it (a regression) gets EOF."""
    try:
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
    except OSError:
        pass  # no reader is waiting: nothing is stuck


async def quick(jp_fetch, *parts, fifos=(), **kwargs):
    """``call`` bounded by :data:`QUICK_S`, releasing ``fifos`` whatever happened."""
    started = time.monotonic()
    try:
        answer = await asyncio.wait_for(call(jp_fetch, *parts, **kwargs), QUICK_S)
    finally:
        for fifo in fifos:
            release(fifo)
    assert time.monotonic() - started < QUICK_S
    return answer


def hf_folder(root: Path, name: str = "tiny", config: object = CONFIG) -> Path:
    folder = root / name
    folder.mkdir()
    (folder / "config.json").write_text(config if isinstance(config, str) else json.dumps(config))
    write_safetensors(folder / "model.safetensors", {"w": ("BF16", [16, 64])})
    return folder


def tiny_gguf(path: Path) -> Path:
    """A GGUF header with no keys and no tensors: readable, and all a registration reads."""
    path.write_bytes(b"GGUF" + struct.pack("<IQQ", 3, 0, 0) + bytes(32))
    return path


# datasets ------------------------------------------------------------------------------------------


@pytest.mark.evaluation
def test_devices_and_huge_files_as_datasets_are_refused_without_being_read(tmp_path):
    """/dev/zero was read into memory until the OOM killer took the Jupyter server: run under a
    1.5 GiB address-space limit, so a regression fails here instead of taking the machine down."""
    (tmp_path / "zero.jsonl").symlink_to("/dev/zero")
    sparse = tmp_path / "sparse.jsonl"
    with open(sparse, "wb") as f:
        f.truncate(200 * 1024 * 1024)  # 200 MB that take no disk
    code = (
        "import resource, sys, time\n"
        "resource.setrlimit(resource.RLIMIT_AS, (1536 << 20, 1536 << 20))\n"
        "from aqua_lab.errors import InvalidInput\n"
        "from aqua_lab.evaluation.datasets import load_dataset\n"
        "for path in sys.argv[1:]:\n"
        "    started = time.monotonic()\n"
        "    try:\n"
        "        load_dataset(path)\n"
        "        print('READ', path)\n"
        "    except InvalidInput as exc:\n"
        "        print(f'{time.monotonic() - started:.2f}', exc)\n"
    )
    paths = ["/dev/zero", "/dev/urandom", str(tmp_path / "zero.jsonl"), str(sparse), "/proc/self/environ"]
    done = subprocess.run([sys.executable, "-c", code, *paths], capture_output=True, text=True, timeout=120)
    lines = done.stdout.splitlines()
    assert done.returncode == 0 and len(lines) == len(paths), done.stdout + done.stderr
    assert all(float(line.split()[0]) < 1 for line in lines), lines
    assert "dataset_path: '/dev/zero' is under /dev, the system's own files" in lines[0]
    assert "/dev/urandom' is under /dev" in lines[1]
    assert "zero.jsonl' is under /dev" in lines[2]  # a link to a device is the device
    assert "dataset_path: the dataset is 200 MiB; the limit is 64 MiB" in lines[3]
    assert "is under /proc" in lines[4]


@pytest.mark.evaluation
@pytest.mark.parametrize("kind", ["fifo", "symlink loop", "empty path"])
async def test_a_dataset_path_that_is_no_regular_file_is_a_quick_422(jp_fetch, fake, tmp_path, kind):
    _, deployment_id = fake
    path = tmp_path / "data.jsonl"
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "symlink loop":
        path.symlink_to(path)
    dataset = "" if kind == "empty path" else str(path)
    body = spec(deployment_id, tmp_path, dataset_path=dataset)
    refused = await quick(
        jp_fetch, "evaluations", method="POST", body=body, expect=422, fifos=[path] * (kind == "fifo")
    )
    expected = {"fifo": "is a FIFO (named pipe), not a regular file", "symlink loop": "is a symlink loop"}
    assert refused["errors"][0]["field"] == "dataset_path"
    assert expected.get(kind, "empty") in refused["errors"][0]["message"]


@pytest.mark.evaluation
@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('{"prompt": ' + DEEP + ', "completion": "b"}', "nested more than 64 levels deep"),
        ('{"prompt": ' + HUGE_INT + ', "completion": "b"}', "has a number of more than 4300 digits"),
    ],
    ids=["nested 100 000 deep", "5 000-digit number"],
)
async def test_hostile_json_in_a_dataset_line_is_a_422_naming_the_line(jp_fetch, fake, tmp_path, line, message):
    _, deployment_id = fake
    content = f"{GOOD}\n{line}\n"
    uploaded = await quick(
        jp_fetch, "evaluations", "datasets", method="POST", body={"filename": "x.jsonl", "content": content}, expect=422
    )
    assert uploaded["errors"][0]["field"] == "content line 2" and message in uploaded["errors"][0]["message"]
    (tmp_path / "x.jsonl").write_text(content)
    body = spec(deployment_id, tmp_path, dataset_path=str(tmp_path / "x.jsonl"))
    created = await quick(jp_fetch, "evaluations", method="POST", body=body, expect=422)
    assert created["errors"][0]["field"] == "dataset_path line 2" and message in created["errors"][0]["message"]


@pytest.mark.evaluation
async def test_a_lone_surrogate_in_a_row_is_refused_before_any_row_is_generated(jp_fetch, fake, tmp_path):
    _, deployment_id = fake
    (tmp_path / "s.jsonl").write_text(GOOD + '\n{"prompt": "half a pair: \\ud800", "completion": "b"}\n')
    body = spec(deployment_id, tmp_path, dataset_path=str(tmp_path / "s.jsonl"))
    refused = await quick(jp_fetch, "evaluations", method="POST", body=body, expect=422)
    assert refused["errors"][0]["field"] == "dataset_path line 2: prompt"
    assert refused["errors"][0]["message"] == "a lone UTF-16 surrogate (0xd800) at character 13"


# report folders ------------------------------------------------------------------------------------


@pytest.mark.evaluation
@pytest.mark.parametrize(
    ("report_path", "message"),
    [("", "empty"), ("/proc/self", "'/proc/self' is under /proc"), ("/dev/shm/r", "is under /dev")],
)
async def test_a_report_path_that_is_no_folder_of_the_users_is_a_422(jp_fetch, fake, tmp_path, report_path, message):
    _, deployment_id = fake
    body = spec(deployment_id, tmp_path, report_path=report_path)
    refused = await quick(jp_fetch, "evaluations", method="POST", body=body, expect=422)
    assert refused["errors"][0]["field"] == "report_path" and message in refused["errors"][0]["message"]


@pytest.mark.evaluation
def test_a_report_keeps_every_row_when_an_answer_is_not_text(tmp_path):
    """A model's answer with a lone surrogate failed the HTML write after every row was generated."""
    rows = [Row(0, "prompt", "reference")]
    scores = ModelScores("m", [], [Prediction(0, "m", "half a pair: \ud800")], {"answered": 1})
    written = report.write_reports(tmp_path, [report.model_report(rows, scores, {"evaluation_id": "e"})])
    assert set(written) == {"m", "comparison"}
    assert json.loads((tmp_path / "m" / "report.json").read_text())["data"][0]["prediction"] == "half a pair: \ud800"
    assert "half a pair: \\ud800" in (tmp_path / "comparison.html").read_text()


@pytest.mark.evaluation
def test_a_fifo_where_a_report_goes_is_replaced_not_written_into(tmp_path):
    """Writing into a FIFO blocks until someone reads it: the job would never finish."""
    (tmp_path / "m").mkdir()
    os.mkfifo(tmp_path / "m" / "report.html")
    code = (
        "import sys\n"
        "from pathlib import Path\n"
        "from aqua_lab.evaluation import report\n"
        "from aqua_lab.evaluation.datasets import Row\n"
        "from aqua_lab.evaluation.runner import ModelScores, Prediction\n"
        "scores = ModelScores('m', [], [Prediction(0, 'm', 'answer')], {})\n"
        "report.write_reports(Path(sys.argv[1]), [report.model_report([Row(0, 'p', 'r')], scores, {})])\n"
    )
    try:
        subprocess.run([sys.executable, "-c", code, str(tmp_path)], check=True, timeout=30)
    finally:
        release(tmp_path / "m" / "report.html")
    assert (tmp_path / "m" / "report.html").is_file()
    assert "Evaluation of m" in (tmp_path / "m" / "report.html").read_text()


# model folders at registration ---------------------------------------------------------------------


def _safetensors_with_header(path: Path, header: bytes, length: int | None = None) -> None:
    path.write_bytes(struct.pack("<Q", len(header) if length is None else length) + header)


BROKEN_FOLDERS = {
    "config.json is []": (lambda f: (f / "config.json").write_text("[]"), "config.json is a JSON list, not an object"),
    "config.json nested 100 000 deep": (
        lambda f: (f / "config.json").write_text(DEEP),
        "config.json: nested more than 64 levels deep",
    ),
    "config.json with a word for a count": (
        lambda f: (f / "config.json").write_text(json.dumps({**CONFIG, "num_hidden_layers": "many"})),
        "config.json: num_hidden_layers is 'many', not a whole number",
    ),
    "config.json with a 5 000-digit count": (
        lambda f: (f / "config.json").write_text('{"num_hidden_layers": ' + HUGE_INT + "}"),
        "config.json: has a number of more than 4300 digits",
    ),
    "config.json with no heads": (
        lambda f: (f / "config.json").write_text(json.dumps({**CONFIG, "num_attention_heads": 0})),
        "num_attention_heads is 0, not a whole number from 1",
    ),
    "config.json a FIFO": (
        lambda f: ((f / "config.json").unlink(), os.mkfifo(f / "config.json")),
        "is a FIFO (named pipe), not a regular file",
    ),
    "a safetensors header nested deep": (
        lambda f: _safetensors_with_header(f / "model.safetensors", DEEP.encode()),
        "model.safetensors: the safetensors header is not usable JSON: nested more than 64 levels deep",
    ),
    "a safetensors header claiming 1 TiB": (
        lambda f: _safetensors_with_header(f / "model.safetensors", b"{}", 1 << 40),
        "a safetensors header of 1099511627776 bytes in a file of 10",
    ),
    "a tensor past the file's end": (
        lambda f: _safetensors_with_header(
            f / "model.safetensors", b'{"w": {"dtype": "BF16", "shape": [2], "data_offsets": [0, 1000000]}}'
        ),
        "model.safetensors: tensor 'w' lies past the file's end",
    ),
    "a FIFO .safetensors": (
        lambda f: ((f / "model.safetensors").unlink(), os.mkfifo(f / "model.safetensors")),
        "model.safetensors' is a FIFO (named pipe), not a regular file",
    ),
    "a symlink loop .safetensors": (
        lambda f: (f / "loop.safetensors").symlink_to(f / "loop.safetensors"),
        "loop.safetensors' is a symlink loop",
    ),
    "an index naming a file elsewhere": (
        lambda f: (f / "model.safetensors.index.json").write_text(json.dumps({"weight_map": {"w": "/dev/zero"}})),
        "weight_map names '/dev/zero', not a file of this folder",
    ),
}


@pytest.mark.local
@pytest.mark.parametrize("case", list(BROKEN_FOLDERS))
def test_a_broken_hugging_face_folder_is_refused_at_registration_saying_what_is_wrong(tmp_path, case):
    breaks, message = BROKEN_FOLDERS[case]
    folder = hf_folder(tmp_path)
    breaks(folder)
    platform = LocalPlatform(data_dir=tmp_path / "data")
    started = time.monotonic()
    try:
        with pytest.raises(InvalidInput) as refused:
            platform.register_model(str(folder))
    finally:
        for fifo in folder.iterdir():
            if fifo.is_fifo():
                release(fifo)
    assert time.monotonic() - started < QUICK_S
    assert refused.value.problems[0].field == "path" and message in refused.value.problems[0].message
    assert platform.store.models() == []


@pytest.mark.local
def test_registering_a_symlink_loop_is_a_422_not_a_500(tmp_path):
    (tmp_path / "model.gguf").symlink_to(tmp_path / "model.gguf")
    with pytest.raises(InvalidInput, match="model.gguf' is a symlink loop"):
        LocalPlatform(data_dir=tmp_path / "data").register_model(str(tmp_path / "model.gguf"))
    with pytest.raises(InvalidInput, match="path: empty"):
        LocalPlatform(data_dir=tmp_path / "data").register_model("")


@pytest.mark.catalog
def test_a_deployment_config_nested_100_000_deep_names_the_file(tmp_path):
    path = tmp_path / "deployment_config.json"
    path.write_text('{"shape": ' + DEEP + "}")
    with pytest.raises(ConfigFileError, match=r"deployment_config.json: \$: nested more than 64 levels deep"):
        load_deployment_config_file(path)


# one broken model in the catalog -------------------------------------------------------------------


@pytest.mark.local
@pytest.mark.server
async def test_one_model_broken_after_registration_never_breaks_the_catalog(jp_fetch, fake, tmp_path):
    data_dir, _ = fake
    folder = hf_folder(tmp_path)
    gguf = tiny_gguf(tmp_path / "tiny.gguf")
    hf = await quick(jp_fetch, "models", method="POST", body={"path": str(folder)}, expect=201)
    gg = await quick(jp_fetch, "models", method="POST", body={"path": str(gguf)}, expect=201)
    (folder / "config.json").write_text("[]")  # changed in place, after it was checked
    gguf.unlink()
    os.mkfifo(gguf)
    try:
        listed = {m["id"]: m for m in (await quick(jp_fetch, "models", fifos=[gguf]))["data"]}
        assert listed[hf["id"]]["tags"]["broken"] == "config.json is a JSON list, not an object"
        assert (
            listed[gg["id"]]["tags"]["broken"] == f"{gg['artifact_path']!r} is a FIFO (named pipe), not a regular file"
        )
        assert "broken" not in listed[SMOLLM2_ID]["tags"]
        plan = await quick(jp_fetch, "plans", method="POST", body={"model_ids": [SMOLLM2_ID]}, fifos=[gguf])
        assert list(plan["deployment_config"]) == [SMOLLM2_ID]  # planned (the stand-in deployment holds the cores)
        for broken in (hf["id"], gg["id"]):
            refused = await quick(jp_fetch, "plans", method="POST", body={"model_ids": [broken]}, expect=409)
            assert f"model {broken} cannot be used: " in refused["message"]
            shape = LocalPlatform(data_dir=data_dir).shape.name
            deployment = {
                "models": [{"model_id": broken, "gpu_count": 1}],
                "instance_shape": shape,
                "display_name": "x",
            }
            refused = await quick(jp_fetch, "deployments", method="POST", body=deployment, expect=409, fifos=[gguf])
            assert "repair its files, or unregister it" in refused["message"]
        # a later process (a restart) sees the same
        again = {m.id: m for m in LocalPlatform(data_dir=data_dir).list_models()}
        assert "broken" in again[hf["id"]].tags and "broken" in again[gg["id"]].tags
        for broken in (hf["id"], gg["id"]):
            gone = await quick(jp_fetch, "models", broken, method="DELETE", fifos=[gguf])
            assert gone["id"] == broken and "broken" in gone["tags"]
        remaining = [m["id"] for m in (await quick(jp_fetch, "models"))["data"]]
        assert hf["id"] not in remaining and gg["id"] not in remaining and SMOLLM2_ID in remaining
    finally:
        release(gguf)


@pytest.mark.evaluation
def test_a_lone_surrogate_in_a_models_answer_is_scored_and_reported_not_a_crash(tmp_path):
    """A model may answer with a JSON ``\\ud800`` escape: the answer must still be scored (BERTScore's
    tokenizer refuses lone surrogates) and written, the character shown as U+FFFD."""
    from aqua_lab.evaluation.metrics import score
    from aqua_lab.evaluation.runner import read_answer

    response = json.loads('{"choices": [{"message": {"content": "Paris \\ud800 is the capital"}}]}')
    answer = read_answer(0, "m", response, 12.0)
    assert answer.prediction.startswith("Paris \ufffd") and answer.prediction.endswith("is the capital")
    answer.prediction.encode("utf-8")  # what every report writer does
    result = score("bertscore", {}, [answer.prediction], ["Paris is the capital"])
    assert 0 < result.rows[0][result.keys[0]] < 1.001  # scored (float32 rounding may pass 1)
