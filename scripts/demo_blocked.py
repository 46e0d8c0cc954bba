"""Why ./run.sh's demo is not up, printed before JupyterLab starts and again with the "next" lines:
the deployments that hold this machine's cores, and the commands that pause them and bring the demo
up.  ./run.sh starts JupyterLab either way; whether to pause a deployment of the user's is theirs to
decide, so nothing here pauses one."""

from __future__ import annotations

from aqua_lab.cli.deployments import DEMO_NAME, command_prefix
from aqua_lab.platforms.local.capacity import HOLDING
from aqua_lab.service import AquaLabService


def note(service: AquaLabService) -> str:
    cli = command_prefix()
    machine = next(s for s in service.shapes() if s.name == service.default_shape())
    holders = [d for d in service.list_deployments() if d.state in HOLDING and d.slots and d.display_name != DEMO_NAME]
    if not holders:
        return f"==> the demo is not running (see above); JupyterLab starts without it, `{cli} demo` tries again"
    lines = [f"==> the demo is not running: {machine.name}'s {machine.unit()} are held by"]
    lines += [
        f"      {d.display_name!r} ({d.id}, {d.state}): {machine.unit(len(d.slots))} {', '.join(map(str, d.slots))}"
        for d in holders
    ]
    lines.append(
        f"    JupyterLab runs without it. To pause {'it' if len(holders) == 1 else 'them'} and bring the demo up:"
    )
    lines += [f"      {cli} deployment deactivate --model_deployment_id {d.id}" for d in holders]
    lines.append(f"      {cli} demo")
    return "\n".join(lines)


if __name__ == "__main__":
    print(note(AquaLabService("local")))
