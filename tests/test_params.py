"""vLLM parameters: shlex parsing, owned flags, per-flag override of config defaults."""

from __future__ import annotations

import pytest

from aqua_lab.errors import InvalidInput
from aqua_lab.planning import params as P

pytestmark = pytest.mark.planning


def test_values_containing_double_dashes_and_spaces_survive():
    flags = P.parse_params(
        "--served-model-name my--model --chat-template 'a b' --max-model-len=4096 --trust-remote-code"
    )
    assert [(f.name, f.value) for f in flags] == [
        ("--served-model-name", "my--model"),
        ("--chat-template", "a b"),
        ("--max-model-len", "4096"),
        ("--trust-remote-code", None),
    ]
    assert (
        P.render(flags)
        == "--served-model-name my--model --chat-template 'a b' --max-model-len 4096 --trust-remote-code"
    )
    assert P.parse_params(P.render(flags)) == flags


def test_short_flags_negative_numbers_and_json_values():
    flags = P.parse_params("-tp 2 --temperature -1 --override-generation-config '{\"top_k\": 5}'")
    assert [(f.key, f.value) for f in flags] == [
        ("tensor-parallel-size", "2"),
        ("temperature", "-1"),
        ("override-generation-config", '{"top_k": 5}'),
    ]


def test_bad_strings_are_clear_errors():
    with pytest.raises(InvalidInput, match="balance the quotes"):
        P.parse_params("--chat-template 'unclosed", "models[0].params")
    with pytest.raises(InvalidInput, match="value '4096' has no flag before it"):
        P.parse_params("4096 --max-model-len")


def test_owned_flags_are_refused_with_the_option_to_use_instead():
    problems = P.refuse_owned(P.parse_params("--seed 1 -tp 4 --port 9 --host x --served_model_name y"), "params")
    fixes = {p.message.split()[0]: p.fix for p in problems}
    assert set(fixes) == {"--seed", "-tp", "--port", "--host", "--served_model_name"}
    assert fixes["-tp"] == "set the model's gpu_count instead"
    assert fixes["--served_model_name"] == "set the model's model_name instead"


@pytest.mark.parametrize(
    ("user", "expected"),
    [
        (None, "--max-model-len 4096 --enforce-eager"),  # absent: config defaults
        ("", ""),  # explicitly empty: no defaults
        ({}, ""),
        ("--max_model_len 8192", "--enforce-eager --max_model_len 8192"),  # same flag, other spelling
        ({"--max-num-seqs": "16"}, "--max-model-len 4096 --enforce-eager --max-num-seqs 16"),
        ({"trust-remote-code": ""}, "--max-model-len 4096 --enforce-eager --trust-remote-code"),
    ],
)
def test_user_flags_override_config_defaults_flag_by_flag(user, expected):
    defaults = P.parse_params("--max-model-len 4096 --enforce-eager")
    assert P.render(P.merge(defaults, P.to_flags(user))) == expected


def test_served_params_put_the_owned_flags_first_like_aqua():
    text = P.served_params("mistralai/Mistral-7B-v0.1", 1, P.parse_params("--max-model-len 4096"))
    assert (
        text == "--served-model-name mistralai/Mistral-7B-v0.1 --seed 42 --tensor-parallel-size 1 --max-model-len 4096"
    )
    odd = P.served_params("my model", 2, P.parse_params("--seed 7"))
    assert odd == "--served-model-name 'my model' --seed 42 --tensor-parallel-size 2"


@pytest.mark.parametrize(
    ("params", "owned"),
    [
        ("--hos 0.0.0.0", "host"),
        ("--por 9000", "port"),
        ("--po=9000", "port"),
        ("--served x", "served-model-name"),
        ("--served_model x", "served-model-name"),
        ("--tensor-p 2", "tensor-parallel-size"),
        ("--TENSOR_PARALLEL 2", "tensor-parallel-size"),
        ("--see 1", "seed"),
    ],
)
def test_an_abbreviation_of_an_owned_flag_is_refused_like_the_flag(params, owned):
    """vLLM's argparse takes any unambiguous prefix of a long option for the option itself."""
    [problem] = P.refuse_owned(P.parse_params(params), "models[0].params")
    assert problem.field == "models[0].params"
    assert f"abbreviates --{owned}" in problem.fix
    assert P.served_params("m", 1, P.parse_params(params)) == "--served-model-name m --seed 42 --tensor-parallel-size 1"


@pytest.mark.parametrize(
    "params", ["--max-model-len 4096", "--hostname-check x", "--portable", "-p 3", "--enforce-eager"]
)
def test_flags_that_only_share_letters_with_an_owned_one_pass(params):
    assert P.refuse_owned(P.parse_params(params), "params") == []
