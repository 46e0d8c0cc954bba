"""Run the OCI emulator for manual tries:

    python -m aqua_lab.emulator [--port 12000] [--dir ~/.aqua_lab_emulator]

It writes an OCI config + key it trusts into --dir and prints the settings that point aqua_lab
(or the oci CLI/SDK) at it, a project included.  Control API (unsigned): POST /_emulator/faults
{"pattern": "/modelDeployments", "status": 429}, /_emulator/models, /_emulator/fail_next_deployment,
/_emulator/compartments; autoscaling: POST /_emulator/metric {"deployment_id": "<ocid>",
"metric": "CPU_UTILIZATION", "value": 90}; evaluations: POST /_emulator/objects {"bucket": "b",
"name": "data.jsonl", "text": "<jsonl>"} puts a dataset in its Object Storage (namespace
``emunamespace``; evaluation job runs score for real against its /predict), /_emulator/jobs
{"row_delay_s": 0.5} slows them down.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from . import Emulator, seed_from_bundled, write_api_key_config

COMPARTMENT = "ocid1.compartment.oc1..emucompartment"
PROJECT = "ocid1.datascienceproject.oc1..emuproject"  # the seed's create and evaluation need one


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=12000)
    parser.add_argument("--dir", type=Path, default=Path.home() / ".aqua_lab_emulator")
    args = parser.parse_args()
    emulator = Emulator().start(args.port)
    seed_from_bundled(emulator, COMPARTMENT)
    config = write_api_key_config(emulator, args.dir)
    print(f"OCI emulator on {emulator.url} ({len(emulator.state.models)} service models)")
    print(
        f"  export OCI_CONFIG_LOCATION={config} AQUA_LAB_OCI_ENDPOINT={emulator.url} "
        f"AQUA_LAB_COMPARTMENT_OCID={COMPARTMENT} AQUA_LAB_SERVICE_COMPARTMENT_OCID={COMPARTMENT} "
        f"AQUA_LAB_PROJECT_OCID={PROJECT} AQUA_LAB_PLATFORM=oci"
    )
    print(
        f"  Object Storage namespace {emulator.namespace}: datasets and reports at "
        f"oci://<bucket>@{emulator.namespace}/<path>"
    )
    print(
        f"  control (unsigned): curl -X POST {emulator.url}/_emulator/fail_next_deployment -d '{{}}'  "
        f"| /_emulator/faults | /_emulator/models | /_emulator/compartments | /_emulator/objects | /_emulator/jobs"
    )
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        emulator.stop()


if __name__ == "__main__":
    main()
