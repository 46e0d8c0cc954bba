"""Scaling and metrics over REST: policies in validate/create, PUT deployments/{id}/scaling, GET
deployments/{id}/metrics?window=…, and the refusals (422 with the field, 409 where a platform cannot)."""

from __future__ import annotations

import asyncio

import pytest

from tests.test_server import data_dir, fetch_json, jp_server_config, oci_emulator  # noqa: F401 - fixtures

pytestmark = [pytest.mark.server, pytest.mark.scaling]
pytest_plugins = ["pytest_jupyter.jupyter_server"]

TWO = [
    {"model_id": "google/gemma-2b", "gpu_count": 1, "model_name": "gemma"},
    {"model_id": "microsoft/phi-2", "gpu_count": 1, "model_name": "phi"},
]
AUTO = {"minimum_instance_count": 1, "maximum_instance_count": 3, "scale_in_threshold": 20, "scale_out_threshold": 75}


async def test_bad_policies_are_422_naming_the_field(jp_fetch):
    spec = {"models": TWO, "instance_shape": "VM.GPU.A10.2", "display_name": "x"}
    bad = {**spec, "autoscaling": {**AUTO, "scale_in_threshold": 80}}
    answer = await fetch_json(
        jp_fetch, "deployments", "validate", method="POST", body=bad, params={"platform": "bundled"}, expect=422
    )
    assert answer["errors"][0]["field"] == "autoscaling.scale_in_threshold" and answer["errors"][0]["fix"]
    policy = {"policyType": "AUTOSCALING", "coolDownInSeconds": 300, "autoScalingPolicies": []}
    answer = await fetch_json(
        jp_fetch,
        "deployments",
        "validate",
        method="POST",
        body={**spec, "scaling_policy": policy},
        params={"platform": "bundled"},
        expect=422,
    )
    assert answer["errors"][0]["field"] == "scaling_policy.autoScalingPolicies"
    good = await fetch_json(
        jp_fetch,
        "deployments",
        "validate",
        method="POST",
        body={**spec, "autoscaling": AUTO},
        params={"platform": "bundled"},
    )
    assert good["instance_shape"] == "VM.GPU.A10.2"


async def test_local_refuses_autoscaling_with_409_and_why(jp_fetch):
    shape = (await fetch_json(jp_fetch, "shapes"))["data"][0]["name"]
    spec = {
        "models": [{"model_id": "smollm2-135m-instruct", "gpu_count": 1}],
        "instance_shape": shape,
        "display_name": "x",
        "autoscaling": AUTO,
    }
    answer = await fetch_json(jp_fetch, "deployments", "validate", method="POST", body=spec, expect=409)
    assert "cannot autoscale" in answer["message"] and "instance_count" in answer["message"]


async def test_metrics_window_and_ids(jp_fetch):
    answer = await fetch_json(jp_fetch, "deployments", "local-x", "metrics", params={"window": "soon"}, expect=422)
    assert "window" in answer["message"]
    await fetch_json(jp_fetch, "deployments", "local-missing", "metrics", params={"window": "5m"}, expect=404)
    answer = await fetch_json(jp_fetch, "deployments", "x", "metrics", params={"platform": "bundled"}, expect=409)
    assert "cannot report deployment metrics" in answer["message"]
    answer = await fetch_json(
        jp_fetch,
        "deployments",
        "x",
        "scaling",
        method="PUT",
        body={"instance_count": 2},
        params={"platform": "bundled"},
        expect=409,
    )
    assert "cannot change a deployment's scaling" in answer["message"]


async def test_oci_create_with_autoscaling_rescale_and_metrics(jp_fetch, oci_emulator):  # noqa: F811
    oci = {"platform": "oci"}
    spec = {"models": TWO, "instance_shape": "VM.GPU.A10.2", "display_name": "rest-auto", "autoscaling": AUTO}
    created = await fetch_json(jp_fetch, "deployments", method="POST", body=spec, params=oci, expect=201)
    try:
        for _ in range(50):
            got = await fetch_json(jp_fetch, "deployments", created["id"], params=oci)
            if got["state"] == "ACTIVE":
                break
            await asyncio.sleep(0.05)
        assert got["scaling"]["policy"]["policyType"] == "AUTOSCALING" and got["scaling"]["instance_count"] == 1
        bad = await fetch_json(
            jp_fetch,
            "deployments",
            created["id"],
            "scaling",
            method="PUT",
            body={"instance_count": 0},
            params=oci,
            expect=422,
        )
        assert bad["errors"][0]["field"] == "instance_count"
        rescaled = await fetch_json(
            jp_fetch, "deployments", created["id"], "scaling", method="PUT", body={"instance_count": 2}, params=oci
        )
        assert rescaled["scaling"]["policy"] == {"policyType": "FIXED_SIZE", "instanceCount": 2}
        assert rescaled["scaling"]["instance_count"] == 2 and rescaled["scaling"]["events"][-1]["to_count"] == 2
        metrics = await fetch_json(jp_fetch, "deployments", created["id"], "metrics", params={**oci, "window": "10m"})
        assert metrics["window_s"] == 600 and [m["model_name"] for m in metrics["models"]] == ["gemma", "phi"]
        assert "requests" in metrics["deployment"]
    finally:
        await fetch_json(jp_fetch, "deployments", created["id"], method="DELETE", params=oci)
