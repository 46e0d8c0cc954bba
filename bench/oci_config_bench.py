"""OCI: resolving the deployment configs of 50 models with 100 ms of latency on every API call.

Side by side in one run, against the emulator (real SDK, real signatures):
- ours: ``AquaLabService.model_inputs`` (``OciPlatform.fetch_configs``) — every model's record and
  config metadata requested at once;
- ADS's way: 10 worker threads, each model's record then its metadata, one after the other
  (``MultiModelDeploymentConfigLoader``: ThreadPoolExecutor(max_workers=10));
and ours again, warm (the service's TTL cache).  Wall times are printed relative to one API round trip.

    python bench/oci_config_bench.py [--models 50] [--latency 0.1] [--quick]
"""

from __future__ import annotations

import os
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from _cli import arguments

os.environ.setdefault("OCI_SDK_DEFAULT_RETRY_ENABLED", "false")

from aqua_lab.emulator import Emulator, seed_from_bundled, write_api_key_config  # noqa: E402
from aqua_lab.platforms.oci import OciPlatform, Settings, resolve_auth  # noqa: E402
from aqua_lab.service import AquaLabService  # noqa: E402

COMPARTMENT = "ocid1.compartment.oc1..bench"


def main() -> None:
    args = arguments(__doc__, {"models": 10, "latency": 0.02}, models=50, latency=0.1)
    emulator = Emulator().start()
    ids = list(seed_from_bundled(emulator, COMPARTMENT).values())  # service models live in COMPARTMENT here
    while len(ids) < args.models:  # more models than the service table has: registered copies
        ids.append(
            emulator.add_model(
                f"copy-{len(ids)}", COMPARTMENT, deployment_config={"shape": []}, tags={"OCI_AQUA": "active"}
            )
        )
    ids = ids[: args.models]
    auth = resolve_auth(config_file=write_api_key_config(emulator, Path(tempfile.mkdtemp())))

    def platform() -> OciPlatform:
        return OciPlatform(
            auth,
            Settings(compartment_id=COMPARTMENT, service_compartment_id=COMPARTMENT, endpoint=emulator.url, retries=1),
        )

    warm = platform()
    warm.fetch_configs(ids[:2])  # the SDK imports its model classes lazily: pay that before timing
    emulator.latency_s = args.latency

    start = time.perf_counter()
    warm.ds.get_model(ids[0])
    round_trip = time.perf_counter() - start

    ours = AquaLabService(platform())
    start = time.perf_counter()
    inputs = ours.model_inputs(ids)
    cold = time.perf_counter() - start
    assert all(m.config is not None for m in inputs)

    listed = AquaLabService(platform())  # the UI path: the catalog was listed before the user picked models
    emulator.latency_s = 0
    listed.models()
    emulator.latency_s = args.latency
    start = time.perf_counter()
    listed.model_inputs(ids)
    after_listing = time.perf_counter() - start

    ads = platform()

    def ads_style(model_id: str) -> bytes:
        ads.ds.get_model(model_id)
        return ads.ds.get_model_defined_metadatum_artifact_content(model_id, "DeploymentConfiguration").data.content

    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=10) as pool:
        list(pool.map(ads_style, ids))
    baseline = time.perf_counter() - start

    start = time.perf_counter()
    ours.model_inputs(ids)
    for model_id in ids:
        ours.model_input(model_id)
    repeat = time.perf_counter() - start
    emulator.stop()

    print(
        f"{args.models} models, {args.latency * 1000:.0f} ms per API call; one round trip measured "
        f"{round_trip * 1000:.0f} ms"
    )
    print(
        f"  ours, models already listed: {after_listing * 1000:6.1f} ms = {after_listing / round_trip:5.2f}x "
        f"one round trip (target ≤ 1.5x)"
    )
    print(f"  ours, bare OCIDs (record + config per model): {cold * 1000:6.1f} ms = {cold / round_trip:5.2f}x")
    print(
        f"  ADS-style, 10 threads: {baseline * 1000:6.1f} ms = {baseline / round_trip:5.2f}x  "
        f"→ ours is {baseline / cold:.1f}x faster"
    )
    print(f"  ours, warm repeat:   {repeat * 1000:8.2f} ms (target ≤ 5 ms)")


if __name__ == "__main__":
    main()
