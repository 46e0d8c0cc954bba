"""The route table derives each tornado pattern from its OpenAPI path template."""

from __future__ import annotations

import inspect
import re

import pytest

from aqua_lab.server.routes import ROUTES, pattern_of

pytestmark = pytest.mark.server


@pytest.mark.parametrize(
    "template, url, groups",
    [
        ("deployments/{deployment_id}", "deployments/ocid1.x.y", {"deployment_id": "ocid1.x.y"}),
        ("deployments/{deployment_id}/chat", "deployments/local-1/chat", {"deployment_id": "local-1"}),
        ("models/{model_id}/config", "models/google/gemma-2b/config", {"model_id": "google/gemma-2b"}),
        ("deployments/config/{model_ids}", "deployments/config/a,b/c", {"model_ids": "a,b/c"}),
        ("openapi.json", "openapi.json", {}),
    ],
)
def test_a_template_matches_its_urls_with_named_parameters(template, url, groups):
    found = re.fullmatch(pattern_of(template), url)
    assert found is not None and found.groupdict() == groups


@pytest.mark.parametrize(
    "template, url",
    [
        ("deployments/{deployment_id}", "deployments/a/b"),  # one segment, not two
        ("openapi.json", "openapiXjson"),  # a literal dot stays a dot
        ("deployments/{deployment_id}/chat", "deployments//chat"),
    ],
)
def test_a_template_does_not_match_other_urls(template, url):
    assert re.fullmatch(pattern_of(template), url) is None


def test_every_route_parameter_is_an_argument_of_its_handler_method():
    for route in ROUTES:
        method = inspect.unwrap(getattr(route.handler, route.method.lower()))  # under @authenticated/@authorized
        parameters = inspect.signature(method).parameters
        for name in re.compile(route.pattern).groupindex:
            assert name in parameters, (route.path, name)
