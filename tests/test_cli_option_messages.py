"""What the CLI's option parsing tells a user who got an option slightly wrong: a broken JSON list for
--cmd_var is refused (it once became a one-word command), a bad JSON object's example is a dict too,
and the versions table keeps its columns with OCI's full-length model-group OCIDs."""

from __future__ import annotations

import argparse

import pytest

from aqua_lab.cli.byoc_options import byoc_fields
from aqua_lab.cli.common import json_arg
from aqua_lab.cli.versions import cmd_versions
from aqua_lab.domain import ModelGroupVersion
from aqua_lab.errors import InvalidInput

pytestmark = pytest.mark.cli


def _byoc(**given: str) -> argparse.Namespace:
    return argparse.Namespace(**{"image_digest": None, "entrypoint": None, "cmd_var": None, **given})


def test_a_broken_json_list_for_cmd_var_is_refused_not_sent_as_one_word():
    with pytest.raises(InvalidInput) as refused:
        byoc_fields(_byoc(cmd_var='["tritonserver", '))
    assert str(refused.value).startswith("--cmd_var: not a valid JSON list")
    assert byoc_fields(_byoc(cmd_var="tritonserver --x=1")) == {"cmd_var": ["tritonserver", "--x=1"]}


def test_bad_json_gets_an_example_of_an_object_too():
    with pytest.raises(InvalidInput) as refused:
        json_arg("KEY=value", "--env_var")
    assert '\'{"KEY": "value"}\'' in str(refused.value)


def test_the_versions_table_fits_a_full_length_ocid(monkeypatch):
    ocid = "ocid1.datasciencemodelgroup.oc1.iad." + "a" * 60
    versions = [ModelGroupVersion(version=1, model_group_id=ocid, live=True)]

    class Service:
        def deployment_versions(self, _id: str) -> list[ModelGroupVersion]:
            return versions

    monkeypatch.setattr("aqua_lab.cli.versions.service_for", lambda args: Service())
    args = argparse.Namespace(deployment_id="d", model_deployment_id=None, table=True)
    header, row = cmd_versions(args).splitlines()
    assert row.index(ocid) == header.index("MODEL GROUP")
    assert header.index("MEMBERS") == row.index(ocid) + len(ocid) + 1
