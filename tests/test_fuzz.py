"""Fuzz every route of the REST API (as openapi.json lists them) against a real Jupyter server:
whatever the path, query and body, the answer is never a 5xx and always says what was wrong.  And
every route that opens a file on the user's behalf, pointed at hostile files on disk (devices,
FIFOs, sockets, symlink loops, a 200 MB sparse file, JSON nested 100 000 deep, 5 000-digit numbers),
answers — never a 5xx, never a hang."""

from __future__ import annotations

import json
import os
import socket
import struct
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aqua_lab.server.routes import ROUTES
from tests.helpers.servers import start_jupyter

pytestmark = pytest.mark.server

TOKEN = "fuzz-token"
BASE = "/fuzz%20base/"


@pytest.fixture(scope="module")
def fuzz_data(tmp_path_factory):
    return tmp_path_factory.mktemp("fuzz_data")


@pytest.fixture(scope="module")
def server(tmp_path_factory, fuzz_data):
    root = tmp_path_factory.mktemp("fuzz_root")
    proc, url = start_jupyter("jupyter_server", root, fuzz_data, TOKEN, BASE)
    yield url
    try:  # anything the fuzzer managed to create goes away with the server
        listed = json.loads(urllib.request.urlopen(f"{url}aqua/deployments?token={TOKEN}").read())
        for d in listed["data"]:
            request = urllib.request.Request(f"{url}aqua/deployments/{d['id']}?token={TOKEN}", method="DELETE")
            urllib.request.urlopen(request)
    finally:
        proc.terminate()
        proc.wait(10)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-10, 10**12) | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12,
)
field_names = st.sampled_from(
    [
        "model_ids",
        "primary_model_id",
        "shape",
        "models",
        "model_id",
        "gpu_count",
        "model_name",
        "params",
        "instance_shape",
        "display_name",
        "deployment_type",
        "model",
        "messages",
        "prompt",
        "stream",
        "route",
        "max_tokens",
        "temperature",
        "top_p",
        "env_var",
        "fine_tune_weights",
    ]
)
bodies = st.one_of(
    st.dictionaries(field_names, json_values, max_size=6).map(json.dumps),
    json_values.map(json.dumps),
    st.text(max_size=40),
    st.binary(max_size=40).map(lambda b: b.decode("latin-1")),
)
segments = st.one_of(
    st.sampled_from(["local-x", "google/gemma-2b", "smollm2-135m-instruct", "..", "%2F", "a,b", "ocid1.x.y"]),
    st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=12),
)
queries = st.dictionaries(
    st.sampled_from(["platform", "primary_model_id", "model_name", "lines"]),
    st.one_of(st.sampled_from(["local", "bundled", "oci", "-1", "99999999999", ""]), st.text(max_size=8)),
    max_size=3,
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_no_route_answers_5xx(server, data):
    route = data.draw(st.sampled_from(ROUTES))
    parts = [
        urllib.parse.quote(data.draw(segments), safe="/,") if p.startswith("{") else p for p in route.path.split("/")
    ]
    query = data.draw(queries)
    if query.get("platform") == "local" and route.method in ("POST", "DELETE"):
        query["platform"] = "bundled"  # random specs must not start real model servers
    url = f"{server}aqua/{'/'.join(parts)}?{urllib.parse.urlencode({**query, 'token': TOKEN})}"
    body = data.draw(bodies).encode("utf-8", "replace") if route.method in ("POST", "PUT") else None
    request = urllib.request.Request(url, data=body, method=route.method)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            status, payload = response.status, response.read()
    except urllib.error.HTTPError as exc:
        status, payload = exc.code, exc.read()
    assert status < 500, (route.method, url, body, payload[:300])
    if status >= 400:
        assert json.loads(payload)["message"], payload


# hostile files on disk ------------------------------------------------------------------------------

#: a request still unanswered after this is counted as a hang
HANG_S = 20
DEEP = "[" * 100_000 + "]" * 100_000
HUGE_INT = "1" + "0" * 5_000


def _hf(folder: Path, config: str, safetensors: bytes | None = None) -> str:
    folder.mkdir()
    (folder / "config.json").write_text(config)
    if safetensors is not None:
        (folder / "model.safetensors").write_bytes(safetensors)
    return str(folder)


def hostile_files(root: Path) -> tuple[dict[str, str], list[Path]]:
    """Name → path of everything a path field could name that is no dataset, folder or model; and
    the FIFOs among them (released after each request, so a regression cannot block for ever)."""
    fifo = root / "fifo.jsonl"
    os.mkfifo(fifo)
    (root / "loop").symlink_to(root / "loop")
    (root / "ping").symlink_to(root / "pong")
    (root / "pong").symlink_to(root / "ping")
    (root / "zero.jsonl").symlink_to("/dev/zero")
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(root / "sock"))  # a socket file stays after its socket is closed
    sock.close()
    with open(root / "sparse.jsonl", "wb") as f:
        f.truncate(200 * 1024 * 1024)
    with open(root / "sparse.gguf", "wb") as f:  # a GGUF claiming the most keys and tensors, all zeros
        f.write(b"GGUF" + struct.pack("<IQQ", 3, (1 << 18), (1 << 16)))
        f.truncate(200 * 1024 * 1024)
    (root / "crafted.gguf").write_bytes(b"GGUF" + struct.pack("<IQQQ", 3, 0, 1, 1 << 62) + b"x" * 16)
    gguf_fifo = root / "model.gguf"
    os.mkfifo(gguf_fifo)
    (root / "deep.jsonl").write_text('{"prompt": ' + DEEP + ', "completion": "b"}\n')
    (root / "int.jsonl").write_text('{"prompt": ' + HUGE_INT + ', "completion": "b"}\n')
    (root / "surrogate.jsonl").write_text('{"prompt": "\\ud800", "completion": "b"}\n')
    (root / "binary.jsonl").write_bytes(bytes(range(256)) * 16)
    (root / "empty.jsonl").write_bytes(b"")
    (root / "dir").mkdir()
    config = '{"num_hidden_layers": 2, "num_attention_heads": 4, "hidden_size": 64}'
    st_fifo = Path(_hf(root / "hf_st_fifo", config))
    os.mkfifo(st_fifo / "model.safetensors")
    config_fifo = root / "hf_config_fifo"
    config_fifo.mkdir()
    os.mkfifo(config_fifo / "config.json")
    st_loop = Path(_hf(root / "hf_st_loop", config))
    (st_loop / "model.safetensors").symlink_to(st_loop / "model.safetensors")
    files = {
        "/dev/zero": "/dev/zero",
        "/dev/urandom": "/dev/urandom",
        "/dev/null": "/dev/null",
        "/proc/self": "/proc/self",
        "/proc/self/environ": "/proc/self/environ",
        "/sys": "/sys",
        "empty": "",
        "blank": "   ",
        "unknown user": "~no-such-user-aqua/x.jsonl",
        "too long": "/tmp/" + "x" * 5000,
        **{name: str(root / name) for name in ("loop", "ping", "zero.jsonl", "sock", "sparse.jsonl", "sparse.gguf")},
        **{name: str(root / name) for name in ("crafted.gguf", "deep.jsonl", "int.jsonl", "surrogate.jsonl")},
        **{name: str(root / name) for name in ("binary.jsonl", "empty.jsonl", "dir")},
        "fifo": str(fifo),
        "fifo .gguf": str(gguf_fifo),
        "hf config []": _hf(root / "hf_list", "[]"),
        "hf config deep": _hf(root / "hf_deep", DEEP),
        "hf config huge int": _hf(root / "hf_int", '{"num_hidden_layers": ' + HUGE_INT + "}"),
        "hf config wrong types": _hf(root / "hf_types", '{"num_hidden_layers": "many", "hidden_size": [1]}'),
        "hf config fifo": str(config_fifo),
        "hf safetensors deep": _hf(root / "hf_st_deep", config, struct.pack("<Q", len(DEEP)) + DEEP.encode()),
        "hf safetensors claims 1 TiB": _hf(root / "hf_st_big", config, struct.pack("<Q", 1 << 40) + b"{}"),
        "hf safetensors fifo": str(st_fifo),
        "hf safetensors loop": str(st_loop),
    }
    return files, [fifo, gguf_fifo, st_fifo / "model.safetensors", config_fifo / "config.json"]


def _release(fifos: list[Path]) -> None:
    for fifo in fifos:
        try:
            os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        except OSError:
            pass  # nobody reads it: nothing is stuck


def test_routes_that_open_files_never_answer_5xx_nor_hang_on_hostile_files(server, fuzz_data, tmp_path):
    from aqua_lab.platforms.local import LocalPlatform
    from tests.helpers.fake_models import start_fake_deployment
    from tests.test_evaluation_routes import spec
    from tests.test_hostile_files import hf_folder, tiny_gguf

    files, fifos = hostile_files(tmp_path)
    counts: Counter[str] = Counter()
    wrong: list[str] = []

    def hit(method: str, route: str, body: dict | None = None, query: dict | None = None) -> tuple[int, dict]:
        url = f"{server}aqua/{route}?{urllib.parse.urlencode({**(query or {}), 'token': TOKEN})}"
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(url, data=data, method=method)
        started = time.monotonic()
        try:
            with urllib.request.urlopen(request, timeout=HANG_S) as response:
                status, payload = response.status, response.read()
        except urllib.error.HTTPError as exc:
            status, payload = exc.code, exc.read()
        except (TimeoutError, urllib.error.URLError) as exc:
            counts["hang"] += 1
            wrong.append(f"{method} {route} {json.dumps(body)[:200]}: no answer in {HANG_S} s ({exc})")
            return 0, {}
        finally:
            _release(fifos)
        counts[f"{status // 100}xx"] += 1
        counts["slowest_ms"] = max(counts["slowest_ms"], int(1000 * (time.monotonic() - started)))
        if status >= 500:
            wrong.append(f"{method} {route} {json.dumps(body)[:200]}: {status} {payload[:300]!r}")
        try:  # a report answered as it is on disk may be anything
            answer = json.loads(payload) if payload[:1] == b"{" else {}
        except (ValueError, RecursionError):
            answer = {}
        if status >= 400 and not answer.get("message"):
            wrong.append(f"{method} {route}: {status} without a message")
        return status, answer

    platform = LocalPlatform(data_dir=fuzz_data)
    deployment_id, router = start_fake_deployment(fuzz_data, tmp_path / "router", "local-fuzzfiles001")
    try:
        evaluation = spec(deployment_id, tmp_path, model_parameters={"model": "perfect", "max_tokens": 8})
        for path in files.values():  # every path field of every route that takes one
            hit("POST", "models", {"path": path})
            for route in ("evaluations", "evaluation"):  # ours and ADS's
                hit("POST", route, {**evaluation, "dataset_path": path})
                hit("POST", route, {**evaluation, "report_path": path, "force_overwrite": True})
        uploads = [(tmp_path / name).read_text() for name in ("deep.jsonl", "int.jsonl", "surrogate.jsonl")]
        uploads.append('{"prompt": "\ud800", "completion": "b"}\n')  # the surrogate in the request itself
        for text in uploads:  # the same content sent as an upload
            hit("POST", "evaluations/datasets", {"filename": "x.jsonl", "content": text})

        # registered models whose files turn hostile after they were checked
        (tmp_path / "models").mkdir()
        folder, gguf = hf_folder(tmp_path / "models"), tiny_gguf(tmp_path / "models" / "tiny.gguf")
        registered = [hit("POST", "models", {"path": str(p)})[1]["id"] for p in (folder, gguf)]
        on_disk = [p for p in files.values() if p.startswith("/") and len(p) < 1024]  # what a link can name
        for path in on_disk:
            for target in (folder / "config.json", folder / "model.safetensors", gguf):
                target.unlink()
                target.symlink_to(path)
            hit("GET", "models")
            hit("POST", "plans", {"model_ids": ["smollm2-135m-instruct"]})
            for model_id in registered:
                hit("POST", "plans", {"model_ids": [model_id]})
                hit("GET", f"models/{model_id}/config")
        for model_id in registered:
            hit("DELETE", f"models/{model_id}")

        # report files of a finished evaluation, replaced by hostile ones
        created = hit("POST", "evaluations", {**evaluation, "report_path": str(tmp_path / "reports")})[1]
        for _ in range(300):
            state = hit("GET", f"evaluations/{created['id']}")[1].get("state")
            if state in ("SUCCEEDED", "FAILED"):
                break
            time.sleep(0.2)
        assert state == "SUCCEEDED"
        reports = [tmp_path / "reports" / n for n in ("comparison.json", "comparison.html", "perfect/report.json")]
        for path in on_disk:
            for report in reports:
                report.unlink()
                report.symlink_to(path)
            for query in ({}, {"format": "html"}, {"model": "perfect"}):
                hit("GET", f"evaluations/{created['id']}/report", query=query)
            hit("GET", f"evaluations/{created['id']}/metrics")
            hit("GET", f"evaluation/{created['id']}/report")
    finally:
        _release(fifos)
        for e in platform.list_evaluations():
            platform.delete_evaluation(e.id)
        platform.delete(deployment_id)
        router.kill()
        router.wait()
    print(f"hostile files: {len(files)} paths, answers {dict(counts)}")
    assert wrong == [], "\n".join(wrong)
    assert counts["hang"] == 0 and counts["5xx"] == 0
