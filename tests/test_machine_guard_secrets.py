"""Secrets on a shared machine (issue 24, item 9), with a real SmolLM2 deployment: no process of a
deployment shows its key on its command line (any user reads ``/proc/PID/cmdline``); the data dir
and every file holding a key are owner-only, also where an older version made them 0755/0644; and
the model servers answer only their router, so the deployment's own key cannot skip its checks."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import stat
import subprocess
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from aqua_lab.domain import DeploymentSpec
from aqua_lab.platforms.local import LocalPlatform
from aqua_lab.platforms.local.engines import LLAMA_CPP, VLLM, server_specs
from aqua_lab.platforms.local.models import SMOLLM2_ID
from aqua_lab.service import AquaLabService
from tests import test_local as local

pytestmark = pytest.mark.local


platform = local.platform  # a data dir of its own, every deployment deleted at the end


@pytest.fixture(scope="module")
def deployment(platform):
    service = AquaLabService(platform)
    spec = DeploymentSpec(
        models=[{"model_id": SMOLLM2_ID, "gpu_count": 1, "model_name": "smol", "params": "--max-model-len 512"}],
        instance_shape=service.shapes()[0].name,
        display_name="secrets",
    )
    deployment = service.wait(service.create_deployment(spec).id, timeout=180)
    assert deployment.state == "ACTIVE", deployment.lifecycle_details
    return deployment


def _session(leader: int) -> list[int]:
    """Every live process of the runtime's session: the runtime and each model server it started."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if os.getsid(int(entry.name)) == leader:
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def _post(url: str, key: str, body: dict) -> tuple[int, dict]:
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        method="POST",
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


def test_no_process_of_a_deployment_has_a_key_on_its_command_line(platform, deployment):
    row = platform.store.deployment(deployment.id)
    processes = _session(row.runtime_pid)
    servers = [s["pid"] for s in platform.store.model_states(deployment.id)]
    assert row.runtime_pid in processes and set(servers) <= set(processes) and servers
    for pid in processes:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
        assert deployment.api_key not in cmdline, f"process {pid} shows the deployment key: {cmdline}"
        assert "api-key" not in cmdline, cmdline
    for pid in servers:  # the key each server takes is in its environment (owner-only), and not the user's
        environ = dict(
            line.split("=", 1) for line in Path(f"/proc/{pid}/environ").read_text().split("\0") if "=" in line
        )
        assert environ["LLAMA_API_KEY"] and environ["LLAMA_API_KEY"] != deployment.api_key
        assert stat.S_IMODE(Path(f"/proc/{pid}/environ").stat().st_mode) == 0o400


def test_the_data_dir_and_every_file_holding_a_key_are_owner_only(platform, deployment):
    data = platform.data_dir
    assert stat.S_IMODE(data.stat().st_mode) == 0o700
    keyed = [data / "local.sqlite", data / "deployments" / deployment.id / "runtime.json"]
    keyed += [p for p in (data / "local.sqlite-wal", data / "local.sqlite-shm") if p.exists()]
    for path in keyed:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path


def test_a_model_servers_port_refuses_the_deployment_key_while_the_router_answers(platform, deployment):
    [state] = platform.store.model_states(deployment.id)
    chat = {"model": "smol", "messages": [{"role": "user", "content": "Say hi."}], "max_tokens": 4}
    hostile = {**chat, "n_probs": 100000}  # what the router refuses (a huge answer per token)
    direct, answer = _post(f"http://127.0.0.1:{state['port']}/v1/chat/completions", deployment.api_key, hostile)
    assert direct == 401, answer
    router = deployment.endpoint + "/chat/completions"
    status, refused = _post(router, deployment.api_key, hostile)
    assert status == 422 and "n_probs" in json.dumps(refused), refused
    status, answered = _post(router, deployment.api_key, chat)
    assert status == 200 and answered["choices"][0]["message"]["content"] is not None, answered


@pytest.fixture
def old_data_dir():
    """A data dir as an older version left it (0755, its state file 0644), where another user can reach
    it: under a world-searchable folder rather than pytest's owner-only temp dir."""
    top = Path(tempfile.mkdtemp(prefix="aqua-lab-shared-"))
    try:
        top.chmod(0o755)
        data = top / "aqua_lab"
        data.mkdir(mode=0o755)
        data.chmod(0o755)
        db = sqlite3.connect(data / "local.sqlite")
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("CREATE TABLE secrets (key TEXT)")
        db.execute("INSERT INTO secrets VALUES ('aqk-not-for-others')")
        db.commit()
        db.close()
        (data / "local.sqlite").chmod(0o644)
        yield data
    finally:
        shutil.rmtree(top)


def test_a_data_dir_made_by_an_older_version_is_made_owner_only_on_open(old_data_dir):
    LocalPlatform(data_dir=old_data_dir).list_deployments()
    assert stat.S_IMODE(old_data_dir.stat().st_mode) == 0o700
    assert stat.S_IMODE((old_data_dir / "local.sqlite").stat().st_mode) == 0o600
    if os.geteuid() == 0 and shutil.which("runuser"):  # another user of the machine, for real
        other = subprocess.run(
            ["runuser", "-u", "nobody", "--", "cat", str(old_data_dir / "local.sqlite")], capture_output=True
        )
        assert other.returncode != 0 and b"Permission denied" in other.stderr
        assert b"aqk-not-for-others" not in other.stdout


@pytest.mark.parametrize(("engine", "variable"), [(LLAMA_CPP, "LLAMA_API_KEY"), (VLLM, "VLLM_API_KEY")])
def test_both_engines_take_their_key_from_the_environment_never_the_command_line(engine, variable):
    config = {
        "models": [{"params": "--served-model-name m --api-key visible", "model_path": "/m/m.gguf", "model_id": "m"}]
    }
    if engine == LLAMA_CPP:  # llama.cpp's flags are an allow-list: a key among them is refused at create
        config["models"][0]["params"] = "--served-model-name m"
    [spec] = server_specs(config, engine, [0])
    command = spec.command(8080)
    assert "--api-key" not in command and "visible" not in command  # vLLM: the user's own is dropped too
    assert spec.environment("the-router-secret")[variable] == "the-router-secret"
