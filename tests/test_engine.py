"""The local engine's build is the safe one for this CPU: it is llama.cpp's llama-server, built here
for this CPU (never a binary built on another machine), with ggml's AMX kernels compiled out, and it
answers.  On an AMX Xeon the llama-cpp-python build this replaced segfaulted on its first decode."""

from __future__ import annotations

import pytest

from aqua_lab.platforms.local import engine_build as E

pytestmark = pytest.mark.local


def test_the_engine_is_built_for_this_cpu_by_this_recipe():
    binary = E.binary_path()
    assert binary.is_file(), E.missing_message()
    info = E.build_info(binary)
    assert info is not None, f"{binary} has no build-info.json beside it: it was not built by engine_build"
    assert info["cpu"] == E.cpu_facts(), "the engine was built on another CPU: it may use instructions this one lacks"
    assert info["key"] == E.build_key() and binary.parent.name == E.build_key()
    assert "-DGGML_NATIVE=ON" in info["cmake"]
    for isa in ("amx-tile", "amx-int8", "amx-bf16"):
        assert f"-mno-{isa}" in info["cflags"].split()


def test_llama_cpp_reports_no_amx_kernels_and_the_repacked_layouts_kept():
    features = E.system_info()
    assert "CPU :" in features, features
    assert "AMX_INT8 = 1" not in features, f"ggml was built with its AMX kernels: {features}"
    if "avx2" in E.cpu_facts()["flags"]:
        assert "AVX2 = 1" in features and "REPACK = 1" in features


def test_the_cache_key_changes_with_the_cpu_and_the_recipe():
    settings = E.build_settings()
    other_cpu = {**settings, "cpu": {**settings["cpu"], "flags": [*settings["cpu"]["flags"], "amx_tile"]}}
    other_recipe = {**settings, "recipe": settings["recipe"] + 1}
    keys = {E.build_key(settings), E.build_key(other_cpu), E.build_key(other_recipe)}
    assert len(keys) == 3
