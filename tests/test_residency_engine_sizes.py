"""The fronts poll each deployment's models, and each poll asks for every model server's logged
buffer sizes (issue 28): the head of its log is read once, and again only when the head changed."""

from __future__ import annotations

import builtins

from aqua_lab.platforms.local import residency

LOAD = (
    "srv load_model: loading model '/m.gguf'\n"
    "load_tensors:   CPU_Mapped model buffer size =    92.10 MiB\n"
    "llama_kv_cache:        CPU KV buffer size =   180.00 MiB\n"
    "sched_reserve:        CPU compute buffer size =    15.51 MiB\n"
)


def _counting_reads(monkeypatch) -> list[str]:
    opened: list[str] = []

    def counting_open(path, *args, **kwargs):
        opened.append(str(path))
        return builtins.open(path, *args, **kwargs)

    monkeypatch.setattr(residency, "open", counting_open, raising=False)
    return opened


def test_repeated_reads_of_a_log_read_its_head_once(tmp_path, monkeypatch):
    opened = _counting_reads(monkeypatch)
    log = tmp_path / "smol.log"
    log.write_text(LOAD)
    first = residency.engine_sizes(log)
    assert first == {"weights_mib": 92.1, "kv_cache_mib": 180.0, "compute_mib": 15.51}
    for _ in range(5):
        assert residency.engine_sizes(log) == first
    assert opened == [str(log)]

    with open(log, "a") as more:  # a reload while the head is shorter than the cap: read again
        more.write(LOAD.replace("92.10", "50.00"))
    assert residency.engine_sizes(log)["weights_mib"] == 50.0
    assert len(opened) == 2


def test_a_log_past_the_cap_is_not_read_again_and_a_new_file_is(tmp_path, monkeypatch):
    opened = _counting_reads(monkeypatch)
    log = tmp_path / "big.log"
    log.write_text(LOAD + "x" * residency.LOG_HEAD_BYTES)
    assert residency.engine_sizes(log)["weights_mib"] == 92.1
    with open(log, "a") as more:  # served requests log on: the head stays what it was
        more.write("slot print_timing: ...\n" * 100)
    assert residency.engine_sizes(log)["weights_mib"] == 92.1
    assert len(opened) == 1

    replaced = tmp_path / "new.log"  # a new file under the same name (another inode): read again
    replaced.write_text(LOAD.replace("92.10", "60.00") + "x" * residency.LOG_HEAD_BYTES)
    replaced.replace(log)
    assert residency.engine_sizes(log)["weights_mib"] == 60.0
    assert len(opened) == 2
    assert residency.engine_sizes(tmp_path / "missing.log") == {}
