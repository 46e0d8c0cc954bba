"""Limits a REST client meets, said the way HTTP says them: a 429 carries ``Retry-After`` as the
router's own 429 does, and a metrics window is checked once against what the platform can answer
(a 422 naming ``window`` and the limit, never the router's 503)."""

from __future__ import annotations

import json

import pytest
from tornado.httpclient import HTTPClientError

from aqua_lab.platforms.local import LocalPlatform
from tests.helpers.fake_models import MODELS, start_fake_deployment

pytestmark = pytest.mark.server

pytest_plugins = ["pytest_jupyter.jupyter_server"]


@pytest.fixture
def fake(tmp_path):
    data_dir = tmp_path / "data"
    deployment_id, proc = start_fake_deployment(data_dir, tmp_path / "router", served=(*MODELS, "busy"))
    try:
        yield deployment_id
    finally:
        proc.kill()
        proc.wait()
        LocalPlatform(data_dir=data_dir).delete(deployment_id)


@pytest.fixture
def jp_server_config(fake, tmp_path):
    return {
        "ServerApp": {"jpserver_extensions": {"aqua_lab": True}},
        "AquaLab": {"platform": "local", "data_dir": str(tmp_path / "data")},
    }


async def refused(jp_fetch, *parts, **kwargs) -> HTTPClientError:
    with pytest.raises(HTTPClientError) as caught:
        await jp_fetch("aqua", *parts, **kwargs)
    return caught.value


async def test_a_busy_model_is_429_with_the_routers_retry_after(jp_fetch, fake):
    body = {"model": "busy", "messages": [{"role": "user", "content": "hi"}], "stream": False}
    error = await refused(jp_fetch, "deployments", fake, "chat", method="POST", body=json.dumps(body))
    assert error.code == 429
    # the service asked three more times (each after the router's 2 s) before giving up; the wait it
    # passes on is the router's, not a default, so a client's standard back-off needs nothing else
    assert error.response.headers["Retry-After"] == "2"
    answer = json.loads(error.response.body)
    assert "queue is full" in answer["message"] and answer["retry_after_s"] == 2


async def test_a_metrics_window_past_the_local_routers_day_is_422_naming_the_limit(jp_fetch, fake):
    error = await refused(jp_fetch, "deployments", fake, "metrics", params={"window": "25h"})
    assert error.code == 422
    answer = json.loads(error.response.body)
    assert answer["errors"][0]["field"] == "window"
    assert "86400 s (1d)" in answer["message"] and "local platform" in answer["message"]


def test_a_full_disk_anywhere_is_507_saying_so_not_a_500():
    import errno

    from aqua_lab.server.errors import to_response

    status, body = to_response(OSError(errno.ENOSPC, "No space left on device", "/data/x.json"))
    assert status == 507
    assert body["message"] == "disk full writing /data/x.json (No space left on device); free some space and retry"


@pytest.mark.service
def test_the_log_line_limit_is_the_services_so_every_front_meets_it(tmp_path):
    from aqua_lab.errors import InvalidInput
    from aqua_lab.service import MAX_LOG_LINES, AquaLabService

    service = AquaLabService(LocalPlatform(data_dir=tmp_path / "data"))
    for lines in (-3, MAX_LOG_LINES + 1, 10**400):
        with pytest.raises(InvalidInput) as refused:
            service.logs("local-nosuchdeployment", lines=lines)
        assert refused.value.problems[0].field == "lines" and str(MAX_LOG_LINES) in refused.value.problems[0].fix


async def test_a_5000_digit_number_in_a_body_is_400_not_500(jp_fetch, fake):
    body = '{"model": "perfect", "messages": [{"role": "user", "content": "hi"}], "max_tokens": %s}' % ("9" * 5000)
    error = await refused(jp_fetch, "deployments", fake, "chat", method="POST", body=body)
    assert error.code == 400
    assert "more than 4300 digits" in json.loads(error.response.body)["message"]


@pytest.mark.parametrize("constant", ["Infinity", "-Infinity", "NaN"])
async def test_infinity_or_nan_in_a_body_is_400_not_a_500_deep_in_planning(jp_fetch, fake, constant):
    # Python's json takes them and a float field such as ocpus would pass inf on to int(inf)
    body = '{"models": [{"model_id": "m", "gpu_count": 1}], "instance_shape": "VM.Standard.E4.Flex", "ocpus": %s}'
    error = await refused(jp_fetch, "deployments", "validate", method="POST", body=body % constant)
    assert error.code == 400
    assert f"has {constant}, which is not JSON" in json.loads(error.response.body)["message"]


def test_a_widget_or_code_giving_an_infinite_flex_size_is_refused_naming_the_field():
    from pydantic import ValidationError

    from aqua_lab.domain import CapacityInputs, DeploymentSpec

    for build in (
        lambda: DeploymentSpec(models=[{"model_id": "m", "gpu_count": 1}], ocpus=float("inf")),
        lambda: CapacityInputs(memory_in_gbs=float("nan")),
    ):
        with pytest.raises(ValidationError) as refused_:
            build()
        assert "finite number" in str(refused_.value)
