"""Fuzz every route of the REST API (as openapi.json lists them) against a real Jupyter server:
whatever the path, query and body, the answer is never a 5xx and always says what was wrong."""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aqua_lab.server.routes import ROUTES
from tests.helpers.servers import start_jupyter

pytestmark = pytest.mark.server

TOKEN = "fuzz-token"
BASE = "/fuzz%20base/"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    data = tmp_path_factory.mktemp("fuzz_data")
    root = tmp_path_factory.mktemp("fuzz_root")
    proc, url = start_jupyter("jupyter_server", root, data, TOKEN, BASE)
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
