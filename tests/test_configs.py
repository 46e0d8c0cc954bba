"""Loading a user's deployment_config.json: helpful errors and warnings, never a traceback."""

from __future__ import annotations

import json
import re

import pytest

from aqua_lab.catalog import load_deployment_config_file
from aqua_lab.errors import ConfigFileError
from aqua_lab.planning import parse_deployment_config

pytestmark = [pytest.mark.planning, pytest.mark.catalog]


def test_seed_sample_trailing_comma_is_reported_with_line_and_column(seed_sample_text):
    with pytest.raises(ConfigFileError) as err:
        parse_deployment_config(seed_sample_text, "config/deployment_config.json")
    exc = err.value
    assert (exc.line, exc.column) == (5, 19)  # the comma after "BM.GPU.A10.4"
    assert str(exc).startswith("config/deployment_config.json, line 5, column 19:")
    assert "trailing comma" in str(exc) and "remove it" in str(exc)


def test_seed_sample_with_commas_fixed_warns_about_the_dangling_shape(seed_sample_text, catalog):
    fixed = re.sub(r",(\s*[}\]])", r"\1", seed_sample_text)
    loaded = parse_deployment_config(fixed, "deployment_config.json", catalog.shapes)
    dangling = [w for w in loaded.warnings if 'is not in the "shape" list' in w]
    assert len(dangling) == 1 and "VM.GPU.A10.4" in dangling[0]
    unknown = [w for w in loaded.warnings if "not a known shape" in w]
    assert len(unknown) == 1 and "did you mean 'BM.GPU.A10.4'" in unknown[0]
    assert [e.gpu_count for e in loaded.config.configuration["VM.GPU.A10.4"].multi_model_deployment] == [1, 2]


def test_a_file_on_disk_is_named_in_the_error(tmp_path, seed_sample_text):
    path = tmp_path / "config" / "deployment_config.json"
    path.parent.mkdir()
    path.write_text(seed_sample_text)
    with pytest.raises(ConfigFileError, match=re.escape(str(path)) + ", line 5"):
        load_deployment_config_file(path)
    with pytest.raises(ConfigFileError, match="file not found"):
        load_deployment_config_file(tmp_path / "missing.json")


def test_wrong_types_name_the_json_path_and_the_fix():
    bad = {
        "shape": ["VM.GPU.A10.2"],
        "configuration": {"VM.GPU.A10.2": {"multi_model_deployment": [{"gpu_count": "two"}]}},
    }
    with pytest.raises(ConfigFileError) as err:
        parse_deployment_config(json.dumps(bad), "cfg.json")
    problem = err.value.problems[0]
    assert problem.field == '$.configuration["VM.GPU.A10.2"].multi_model_deployment[0].gpu_count'
    assert "power of two" in problem.fix
    assert "'two'" in str(err.value) or '"two"' in str(err.value)


def test_missing_gpu_count_and_non_object_top_level():
    with pytest.raises(ConfigFileError, match="gpu_count: Field required"):
        parse_deployment_config('{"configuration": {"X": {"multi_model_deployment": [{}]}}}')
    with pytest.raises(ConfigFileError, match="expected a JSON object"):
        parse_deployment_config("[1, 2]")
    with pytest.raises(ConfigFileError, match=r"line 1, column 2"):
        parse_deployment_config("{oops}")


def test_shape_names_become_canonical_and_unusable_counts_are_warned(catalog):
    text = json.dumps(
        {
            "shape": ["bm.gpu.a100-V2.8"],
            "configuration": {
                "BM.GPU.A100-V2.8": {"multi_model_deployment": [{"gpu_count": 5}, {"gpu_count": 16}, {"gpu_count": 4}]}
            },
        }
    )
    loaded = parse_deployment_config(text, shapes=catalog.shapes)
    assert loaded.config.shape == ["BM.GPU.A100-v2.8"]
    assert list(loaded.config.configuration) == ["BM.GPU.A100-v2.8"]
    assert any("gpu_count is 5: not a power of two" in w for w in loaded.warnings)
    assert any("gpu_count is 16 but the shape has 8" in w for w in loaded.warnings)


def test_unknown_keys_survive_a_round_trip():
    text = json.dumps(
        {"shape": [], "configuration": {"VM.GPU.A10.2": {"env": {"VLLM": {"A": "1"}}, "future": 1}}, "x": 2}
    )
    config = parse_deployment_config(text).config
    dumped = config.model_dump()
    assert dumped["x"] == 2 and dumped["configuration"]["VM.GPU.A10.2"]["future"] == 1
