"""The OCI SDK clients aqua_lab calls (Data Science, Object Storage, Monitoring) and the one way it
calls them: bounded retries, an idempotency token on every create, and SDK failures turned into
:class:`UpstreamError` (with the OCI status, request id and what to do about it) or :class:`NotFound`.

Every part of the OCI platform (models, deployments, scaling, evaluations) is handed one
:class:`OciClients`; tests point its endpoints at the emulator.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from ...domain import DEFAULT_CONTAINER_IMAGE
from ...errors import NotFound, UpstreamError
from .auth import OciAuth

T = TypeVar("T")
NAME = "oci"  # the platform's name, as deployments and metrics report it


@dataclass(frozen=True)
class Settings:
    compartment_id: str
    project_id: str | None = None
    service_compartment_id: str | None = None  # where AQUA's service models live
    endpoint: str | None = None  # one base URL for every service (the emulator); else OCI's
    retries: int = 4
    retry_base_s: float = 1.0
    timeout_s: tuple[float, float] = (10.0, 60.0)  # connect, read
    container_image: str = DEFAULT_CONTAINER_IMAGE


def make_clients(auth: OciAuth, settings: Settings) -> tuple[Any, Any]:
    """Data Science and Object Storage clients: a bounded retry with backoff (429, 5xx, timeouts)
    and no shared circuit breaker — one module-level breaker in the SDK would let one client's
    failures stop every other client in the process."""
    import oci

    retry = (
        oci.retry.RetryStrategyBuilder(
            max_attempts=max(1, settings.retries),
            total_elapsed_time_seconds=120,
            retry_base_sleep_time_seconds=settings.retry_base_s,
            retry_max_wait_between_calls_seconds=10,
            backoff_type=oci.retry.BACKOFF_FULL_JITTER_VALUE,
        ).get_retry_strategy()
        if settings.retries > 1
        else oci.retry.NoneRetryStrategy()
    )
    common = {
        "signer": auth.signer,
        "retry_strategy": retry,
        "circuit_breaker_strategy": oci.circuit_breaker.NoCircuitBreakerStrategy(),
        "timeout": settings.timeout_s,
    }
    ds_kwargs = {**common, **({"service_endpoint": settings.endpoint} if settings.endpoint else {})}
    os_kwargs = {**common, **({"service_endpoint": settings.endpoint} if settings.endpoint else {})}
    return (
        oci.data_science.DataScienceClient(auth.config, **ds_kwargs),
        oci.object_storage.ObjectStorageClient(auth.config, **os_kwargs),
    )


#: what to do about the OCI errors a user meets first (by error code, else by status)
ERROR_HINTS = {
    "LimitExceeded": " — a service limit (quota) of the shape is used up: free instances, ask for a limit "
    "increase (Governance → Limits) or pick another shape",
    "QuotaExceeded": " — a compartment quota is used up: free instances or raise the quota",
    "NotAuthorizedOrNotFound": " — the OCID is wrong, or no IAM policy lets you use it: check the policies "
    "(e.g. allow group … to manage data-science-family in compartment …) and the compartment",
    "401": " — OCI does not know this key: check that the fingerprint in your OCI config matches a public key "
    "uploaded to your user (Identity → Users → API keys), or upload it",
}


#: the verb that lists what exists, by the kind of thing a get found no longer (or never) there
LISTS = {
    "deployment": "aqua-lab deployment list --platform oci",
    "model group": "aqua-lab model_group list --platform oci",
    "evaluation": "aqua-lab evaluation list --platform oci",
    "model": "aqua-lab model list --platform oci",
}


def not_found_hint(kind: str, message: str) -> str:
    """What a 404 means, in place of OCI's own words alone (which read as an IAM problem): the
    OCID is wrong, of another region or compartment, or without a policy to read it."""
    listing = f"; `{LISTS[kind]}` lists the ones there are" if kind in LISTS else ""
    return f"no such {kind} here, or no IAM policy lets you read it (OCI: {message.rstrip('.')}){listing}"


class OciClients:
    """The signed SDK clients of one OCI identity and settings."""

    def __init__(self, auth: OciAuth, settings: Settings, clients: tuple[Any, Any] | None = None):
        self.auth = auth
        self.settings = settings
        self.ds, self.os = clients or make_clients(auth, settings)
        self._monitoring: Any = None

    @property
    def monitoring(self) -> Any:
        if self._monitoring is None:
            import oci

            kwargs = {"signer": self.auth.signer, "timeout": self.settings.timeout_s}
            if self.settings.endpoint:
                kwargs["service_endpoint"] = self.settings.endpoint
            self._monitoring = oci.monitoring.MonitoringClient(self.auth.config, **kwargs)
        return self._monitoring

    def call(self, what: str, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        import oci
        from circuitbreaker import CircuitBreakerError

        if getattr(fn, "__name__", "").startswith("create_") and "opc_retry_token" not in kwargs:
            # one token per create, kept by the SDK across its retries: a create whose answer was
            # lost and is sent again gives back the same resource, not a second one (OCI keeps
            # tokens for 24 h; the SDK adds none by itself without a retry strategy)
            kwargs["opc_retry_token"] = uuid.uuid4().hex
        try:
            return fn(*args, **kwargs)
        except oci.exceptions.ServiceError as exc:
            if exc.status == 404 and what.startswith("get "):
                kind = what.removeprefix("get ")
                raise NotFound(kind, str(args[0]) if args else "", not_found_hint(kind, exc.message)) from None
            hint = ERROR_HINTS.get(exc.code) or ERROR_HINTS.get(str(exc.status), "")
            raise UpstreamError(
                f"OCI {what} failed: {exc.status} {exc.code}: {exc.message}{hint}", exc.status, exc.request_id
            ) from None
        except CircuitBreakerError:
            raise UpstreamError(f"OCI {what}: too many recent failures, calls paused", 503) from None
        except (oci.exceptions.RequestException, oci.exceptions.ConnectTimeout) as exc:
            url = getattr(getattr(self.ds, "base_client", None), "endpoint", None) or self.settings.endpoint
            raise UpstreamError(
                f"OCI {what}: cannot reach the service at {url} ({type(exc).__name__}) — check the network, "
                "the region in your OCI config, or AQUA_LAB_OCI_ENDPOINT",
                502,
            ) from None

    def list_all(self, what: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> list[Any]:
        """Every page of a list call.  Not ``oci.pagination.list_call_get_all_results``: it wraps each
        page in the SDK's default retry strategy (8 attempts, up to 600 s) on top of the client's own,
        so a persistent 503 was reported after minutes instead of after the documented 4 attempts."""
        items: list[Any] = []
        page = None
        while True:
            response = self.call(what, fn, *args, **({"page": page} if page else {}), **kwargs)
            items.extend(response.data if isinstance(response.data, list) else response.data.items)
            page = response.next_page
            if not response.has_next_page or not page:
                return items

    def sdk(self, data: dict, type_name: str) -> Any:
        """Our wire-format body as the SDK's model object (the SDK serialises it back unchanged)."""
        return self.ds.base_client.deserialize_response_data(json.dumps(data).encode(), type_name)

    def update_deployment(self, deployment_id: str, body: dict) -> None:
        """UpdateModelDeployment with our wire-format body (models, scaling, names, tags)."""
        self.call(
            "update deployment",
            self.ds.update_model_deployment,
            deployment_id,
            self.sdk(body, "UpdateModelDeploymentDetails"),
        )
