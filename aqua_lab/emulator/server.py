"""A local emulator of the OCI Data Science, Object Storage and model-deployment inference APIs.

The real ``oci`` SDK talks to it through ``service_endpoint=<emulator url>``.  It checks every
request's signature (API keys registered with :meth:`Emulator.add_api_key`; session tokens and
resource-principal tokens it minted with :meth:`Emulator.mint_token`), keeps state (models and
their metadata, model groups, deployments with lifecycle transitions, work requests, objects),
serves ``/{deployment}/predict`` like vLLM behind LiteLLM (OpenAI JSON or SSE, routed by ``model``
and the ``route`` header), and injects faults on demand (status codes, delays, dropped streams).

For tests and for manual runs: ``python -m aqua_lab.emulator`` (see ``__main__``).
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
import re
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from ..server.paths import template_pattern
from . import scaling

DS = "/20190101"
UPLOAD = re.compile(r"^/n/[^/]+/b/[^/]+/[ou]/|/artifact$")
_ids = itertools.count(1)


def ocid(kind: str) -> str:
    return f"ocid1.{kind}.oc1.iad.emu{next(_ids):04d}{uuid.uuid4().hex[:8]}"


def now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


class Reply(Exception):
    """Raised by route code to answer with an OCI error body."""

    def __init__(self, status: int, code: str, message: str):
        self.status, self.code, self.message = status, code, message


@dataclass
class Fault:
    """One injected fault: ``status`` (with ``code``), ``delay_s`` before answering, or a predict
    stream dropped after ``drop_after`` events.  Applies to ``count`` matching requests after the
    first ``skip`` ones (a failure part-way through a sequence of calls)."""

    pattern: str
    status: int | None = None
    code: str = "InternalServerError"
    delay_s: float = 0.0
    drop_after: int | None = None
    count: int = 1
    method: str | None = None
    skip: int = 0


@dataclass
class State:
    models: dict[str, dict] = field(default_factory=dict)
    metadata_artifacts: dict[tuple[str, str], bytes] = field(default_factory=dict)
    groups: dict[str, dict] = field(default_factory=dict)
    deployments: dict[str, dict] = field(default_factory=dict)
    work_requests: dict[str, dict] = field(default_factory=dict)
    objects: dict[tuple[str, str, str], bytes] = field(default_factory=dict)
    shapes: list[dict] = field(default_factory=list)
    jobs: dict[str, dict] = field(default_factory=dict)
    job_runs: dict[str, dict] = field(default_factory=dict)
    version_sets: dict[str, dict] = field(default_factory=dict)
    artifacts: dict[str, bytes] = field(default_factory=dict)  # model id → artifact (a zip)
    artifact_names: dict[str, str] = field(default_factory=dict)  # model id → its file name (Content-Disposition)
    # (path, opc-retry-token) → (body sha256, status, answer, headers): a create sent again is answered alike
    retry_tokens: dict[tuple[str, str], tuple[str, int, Any, dict]] = field(default_factory=dict)
    requests: list[tuple[str, str]] = field(default_factory=list)  # (method, path) log for tests


class Emulator:
    """Start with :meth:`start`; ``url`` is then the ``service_endpoint`` for every client."""

    def __init__(self, namespace: str = "emunamespace", polls_to_active: int = 2, verify: bool = True):
        self.namespace = namespace
        self.polls_to_active = polls_to_active
        self.verify = verify
        self.state = State()
        self.keys: dict[str, Any] = {}
        self.faults: list[Fault] = []
        self.compartments: set[str] = set()  # when any is added, calls naming another are refused (404)
        self.latency_s = 0.0  # added to every signed API call (benchmarks)
        self.in_flight = 0
        self.peak_in_flight = 0  # most API calls served at the same time (shows client concurrency)
        self._issuer = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self._lock = threading.RLock()
        self._server: ThreadingHTTPServer | None = None
        # evaluation job runs (see .jobs): a pause before each starts and before each answer, so tests
        # can watch progress and cancel; the threads that run them
        self.job_start_delay_s = 0.0
        self.job_row_delay_s = 0.0
        self.job_threads: dict[str, threading.Thread] = {}
        self._job_signer: Any = None

    # lifecycle ------------------------------------------------------------------------------------

    def start(self, port: int = 0) -> Emulator:
        emulator = self

        class Handler(_Handler):
            emu = emulator

        self._server = _Server(("127.0.0.1", port), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server:
            self._server.shutdown()
            self._server.server_close()

    @property
    def url(self) -> str:
        assert self._server is not None, "start() first"
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    # credentials ----------------------------------------------------------------------------------

    def add_api_key(self, key_id: str, public_key: Any) -> None:
        self.keys[key_id] = public_key

    def mint_token(self, public_key: Any, ttl_s: float = 3600, **claims: Any) -> str:
        """A session / resource-principal token (JWT) carrying ``public_key`` as its ``jwk`` claim,
        the way OCI's tokens carry the session key."""
        import jwt
        from jwt.algorithms import RSAAlgorithm

        jwk = json.loads(RSAAlgorithm.to_jwk(public_key))
        payload = {
            "jwk": jwk,
            "exp": int(time.time() + ttl_s),
            "iat": int(time.time()),
            "iss": "emulator",
            "sub": "ocid1.user.oc1..emu",
            "ttype": "login",
            **claims,
        }
        return jwt.encode(payload, self._issuer, algorithm="RS256")

    def job_signer(self) -> Any:
        """The signer of what evaluation jobs send to ``/predict`` (a job's resource principal on OCI):
        an API key made for the purpose and trusted by this emulator."""
        with self._lock:
            if self._job_signer is None:
                import oci

                key, pem, fingerprint = new_api_key()
                tenancy, user = "ocid1.tenancy.oc1..emujobs", "ocid1.user.oc1..emujobs"
                self.add_api_key(f"{tenancy}/{user}/{fingerprint}", key.public_key())
                self._job_signer = oci.signer.Signer(tenancy, user, fingerprint, None, private_key_content=pem)
            return self._job_signer

    def _token_key(self, token: str) -> Any:
        import jwt
        from jwt.algorithms import RSAAlgorithm

        try:
            claims = jwt.decode(token, self._issuer.public_key(), algorithms=["RS256"], options={"verify_aud": False})
        except jwt.ExpiredSignatureError:
            raise Reply(401, "NotAuthenticated", "The security token has expired.") from None
        except jwt.PyJWTError:
            raise Reply(401, "NotAuthenticated", "The security token is not valid.") from None
        return RSAAlgorithm.from_jwk(json.dumps(claims["jwk"]))

    # faults ---------------------------------------------------------------------------------------

    def inject(self, pattern: str, **kwargs: Any) -> Fault:
        fault = Fault(pattern, **kwargs)
        with self._lock:
            self.faults.append(fault)
        return fault

    def _fault_for(self, method: str, path: str) -> Fault | None:
        with self._lock:
            for fault in self.faults:
                if re.search(fault.pattern, path) and (fault.method in (None, method)) and fault.count > 0:
                    if fault.skip > 0:
                        fault.skip -= 1
                        continue
                    fault.count -= 1
                    if fault.count == 0:
                        self.faults.remove(fault)
                    return fault
        return None

    # seeding --------------------------------------------------------------------------------------

    def add_shape(self, name: str, core_count: int, memory_in_gbs: float, series: str = "NVIDIA_GPU") -> None:
        self.state.shapes.append(
            {"name": name, "coreCount": core_count, "memoryInGBs": memory_in_gbs, "shapeSeries": series}
        )

    def add_model(
        self,
        display_name: str,
        compartment_id: str,
        *,
        deployment_config: dict | None = None,
        tags: dict[str, str] | None = None,
        custom: dict[str, str] | None = None,
        model_id: str | None = None,
    ) -> str:
        model_id = model_id or ocid("datasciencemodel")
        self.state.models[model_id] = {
            "id": model_id,
            "compartmentId": compartment_id,
            "projectId": ocid("datascienceproject"),
            "displayName": display_name,
            "lifecycleState": "ACTIVE",
            "timeCreated": now(),
            "createdBy": "ocid1.user.oc1..emu",
            "freeformTags": dict(tags or {}),
            "definedTags": {},
            "customMetadataList": [
                {"key": k, "value": v, "category": "Other", "description": ""} for k, v in (custom or {}).items()
            ],
            "definedMetadataList": [],
            "isModelByReference": True,
        }
        if deployment_config is not None:
            self.state.metadata_artifacts[(model_id, "DeploymentConfiguration")] = json.dumps(
                deployment_config
            ).encode()
        return model_id

    def put_object(self, bucket: str, name: str, data: bytes) -> None:
        self.state.objects[(self.namespace, bucket, name)] = data

    # work requests and lifecycles -----------------------------------------------------------------

    def _work_request(self, operation: str, compartment: str, resource_id: str, entity: str) -> str:
        wr_id = ocid("datascienceworkrequest")
        self.state.work_requests[wr_id] = {
            "id": wr_id,
            "operationType": operation,
            "status": "ACCEPTED",
            "compartmentId": compartment,
            "percentComplete": 0.0,
            "timeAccepted": now(),
            "_polls": 0,
            "_target": resource_id,
            "resources": [{"actionType": "IN_PROGRESS", "entityType": entity, "identifier": resource_id}],
        }
        return wr_id

    def _advance(self, deployment: dict) -> None:
        """Transitions happen as the deployment (or its work request) is polled."""
        pending = deployment.get("_pending")
        if not pending:
            return
        deployment["_polls"] = deployment.get("_polls", 0) + 1
        wr = self.state.work_requests.get(deployment.get("_wr", ""))
        progress = min(1.0, deployment["_polls"] / max(1, self.polls_to_active))
        if wr:
            wr["status"] = "IN_PROGRESS"
            wr["percentComplete"] = round(100 * progress, 1)
            wr.setdefault("timeStarted", now())
        if progress >= 1.0:
            deployment["lifecycleState"] = pending
            deployment["lifecycleDetails"] = None if pending != "FAILED" else deployment.get("_fail_reason")
            deployment["_pending"] = None
            if pending == "ACTIVE" and deployment.get("_next_group"):
                deployment["modelDeploymentConfigurationDetails"]["modelGroupConfigurationDetails"] = {
                    "modelGroupId": deployment.pop("_next_group")
                }
            if wr:
                wr["status"] = "FAILED" if pending == "FAILED" else "SUCCEEDED"
                wr["timeFinished"] = now()
                for r in wr["resources"]:
                    r["actionType"] = "DELETED" if pending == "DELETED" else "UPDATED"

    def fail_next_deployment(self, reason: str = "Container failed to start: out of GPU memory") -> None:
        self._fail_next = reason

    # served model names of a deployment (what /predict routes on)

    def served_names(self, deployment: dict) -> list[str]:
        config = deployment["modelDeploymentConfigurationDetails"]
        if config.get("deploymentType") == "MODEL_GROUP":
            group = self.state.groups.get(config["modelGroupConfigurationDetails"]["modelGroupId"], {})
            details = group.get("modelGroupDetails", {})
            meta = {m["key"]: m["value"] for m in details.get("customMetadataList", [])}
            if "MULTI_MODEL_CONFIG" in meta:
                names = []
                for entry in json.loads(meta["MULTI_MODEL_CONFIG"])["models"]:
                    match = re.search(r"--served-model-name\s+('([^']*)'|(\S+))", entry["params"])
                    names.append(match.group(2) or match.group(3) if match else entry["model_id"])
                    names += [w["model_name"] for w in entry.get("fine_tune_weights", [])]
                return names
            return [
                m.get("inferenceKey") or m["modelId"]
                for m in group.get("memberModelEntries", {}).get("memberModelDetails", [])
            ]
        env = config.get("environmentConfigurationDetails", {}).get("environmentVariables", {})
        if "MULTI_MODEL_CONFIG" in env:  # legacy multi-model deployments
            return [
                re.search(r"--served-model-name\s+(\S+)", m["params"]).group(1)
                for m in json.loads(env["MULTI_MODEL_CONFIG"])["models"]
            ]
        match = re.search(r"--served-model-name\s+(\S+)", env.get("PARAMS", ""))
        return [match.group(1) if match else "odsc-llm"]


class _Server(ThreadingHTTPServer):
    # socketserver's default backlog of 5 drops connections when many clients connect at once
    # (they retry after a second): concurrent config fetches would look serial
    request_queue_size = 256
    daemon_threads = True


class _Handler(BaseHTTPRequestHandler):
    emu: Emulator
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: Any) -> None:
        pass

    # plumbing -------------------------------------------------------------------------------------

    def _send(self, status: int, body: Any = None, headers: dict[str, str] | None = None) -> None:
        if self._retry_key is not None and status < 300:
            self.emu.state.retry_tokens[self._retry_key[0]] = (self._retry_key[1], status, body, dict(headers or {}))
            self._retry_key = None
        data = b"" if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
        self.send_response(status)
        self.send_header("opc-request-id", self.request_id)
        if body is not None and not isinstance(body, bytes):
            self.send_header("content-type", "application/json")
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def _error(self, status: int, code: str, message: str) -> None:
        self._send(status, {"code": code, "message": message})

    def _verify(self, body: bytes) -> None:
        if not self.emu.verify:
            return
        auth = self.headers.get("authorization", "")
        if not auth.startswith("Signature "):
            raise Reply(
                401, "NotAuthenticated", "The required information to complete authentication was not provided."
            )
        params = dict(re.findall(r'(\w+)="([^"]*)"', auth))
        key_id, signed = params.get("keyId", ""), params.get("headers", "date").split()
        if key_id.startswith("ST$"):
            key = self.emu._token_key(key_id[3:])
        else:
            key = self.emu.keys.get(key_id)
        if key is None:
            raise Reply(401, "NotAuthenticated", "The key is not known.")
        lines = []
        for name in signed:
            if name == "(request-target)":
                lines.append(f"(request-target): {self.command.lower()} {self.path}")
            else:
                if self.headers.get(name) is None:
                    raise Reply(401, "NotAuthenticated", f"Signed header {name} is missing.")
                lines.append(f"{name}: {self.headers[name]}")
        try:
            key.verify(
                base64.b64decode(params.get("signature", "")),
                "\n".join(lines).encode(),
                padding.PKCS1v15(),
                hashes.SHA256(),
            )
        except (InvalidSignature, ValueError):
            raise Reply(401, "NotAuthenticated", "The request signature is not valid.") from None
        date = self.headers.get("date") or self.headers.get("x-date")
        if date is None or abs(time.time() - parsedate_to_datetime(date).timestamp()) > 300:
            raise Reply(401, "NotAuthenticated", "The date header is missing or more than 5 minutes off.")
        if self.command in ("POST", "PUT", "PATCH") and not UPLOAD.search(urlsplit(self.path).path):
            needed = {"content-length", "content-type", "x-content-sha256"}
            if not needed <= set(signed):
                raise Reply(401, "NotAuthenticated", "Body headers must be signed.")
            digest = base64.b64encode(hashlib.sha256(body).digest()).decode()
            if self.headers.get("x-content-sha256") != digest:
                raise Reply(401, "NotAuthenticated", "x-content-sha256 does not match the body.")

    def _handle(self) -> None:
        self.request_id = uuid.uuid4().hex.upper()
        self._retry_key: tuple[tuple[str, str], str] | None = None
        length = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(length) if length else b""
        parts = urlsplit(self.path)
        path, query = unquote(parts.path), {k: v[0] for k, v in parse_qs(parts.query).items()}
        try:
            if path.startswith("/_emulator/"):
                return self._control(path, body)
            self._verify(body)
            fault = self.emu._fault_for(self.command, path)
            with self.emu._lock:
                self.emu.in_flight += 1
                self.emu.peak_in_flight = max(self.emu.peak_in_flight, self.emu.in_flight)
            try:
                if fault and fault.delay_s:
                    time.sleep(fault.delay_s)
                if self.emu.latency_s:
                    time.sleep(self.emu.latency_s)
                if fault and fault.status:
                    raise Reply(fault.status, fault.code, f"Injected {fault.status} ({fault.code}).")
                with self.emu._lock:
                    self.emu.state.requests.append((self.command, path))
                self._route(path, query, body, fault)
            finally:
                with self.emu._lock:
                    self.emu.in_flight -= 1
        except Reply as r:
            self._error(r.status, r.code, r.message)
        except (BrokenPipeError, ConnectionResetError):
            pass

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _handle

    def _control(self, path: str, body: bytes) -> None:
        """Unsigned control API for manual runs, so every case can be tried without Python:
        ``POST /_emulator/faults`` (a Fault as JSON), ``POST /_emulator/models`` (``display_name``,
        ``compartment_id``, optional ``tags``, ``custom``, ``deployment_config`` → ``{"id"}``),
        ``POST /_emulator/fail_next_deployment`` (``{"reason": …}``), ``POST /_emulator/compartments``
        (``{"id": …}``: once any is known, others are NotAuthorizedOrNotFound), ``POST
        /_emulator/metric`` (``{"deployment_id", "metric", "value"}``: what autoscaling reacts to),
        ``POST /_emulator/objects`` (``{"bucket", "name", "text"}``: e.g. an evaluation dataset) and
        ``POST /_emulator/jobs`` (``{"start_delay_s", "row_delay_s"}``: slow evaluation runs down)."""
        args = json.loads(body or b"{}") if self.command == "POST" else None
        if args is None:
            return self._error(404, "NotFound", "unknown control path")
        if path == "/_emulator/faults":
            return self._send(200, self.emu.inject(**args).__dict__)
        if path == "/_emulator/models":
            with self.emu._lock:
                model_id = self.emu.add_model(
                    args["display_name"],
                    args["compartment_id"],
                    deployment_config=args.get("deployment_config"),
                    tags=args.get("tags"),
                    custom=args.get("custom"),
                )
            return self._send(200, {"id": model_id})
        if path == "/_emulator/fail_next_deployment":
            self.emu.fail_next_deployment(*([args["reason"]] if args.get("reason") else []))
            return self._send(200, {"ok": True})
        if path == "/_emulator/compartments":
            self.emu.compartments.add(args["id"])
            return self._send(200, {"compartments": sorted(self.emu.compartments)})
        if path == "/_emulator/objects":
            if args.get("namespace", self.emu.namespace) != self.emu.namespace:
                raise Reply(
                    400,
                    "InvalidParameter",
                    f"The tenancy's Object Storage namespace is {self.emu.namespace!r}, not {args['namespace']!r}.",
                )
            self.emu.put_object(args["bucket"], args["name"], args["text"].encode())
            return self._send(200, {"uri": f"oci://{args['bucket']}@{self.emu.namespace}/{args['name']}"})
        if path == "/_emulator/jobs":
            self.emu.job_start_delay_s = float(args.get("start_delay_s", self.emu.job_start_delay_s))
            self.emu.job_row_delay_s = float(args.get("row_delay_s", self.emu.job_row_delay_s))
            return self._send(
                200, {"start_delay_s": self.emu.job_start_delay_s, "row_delay_s": self.emu.job_row_delay_s}
            )
        if path == "/_emulator/metric":
            with self.emu._lock:
                d = self._get(self.emu.state.deployments, args.get("deployment_id", ""))
                return self._send(200, scaling.metric_crossed(d, args.get("metric", ""), float(args["value"])))
        self._error(404, "NotFound", "unknown control path")

    def _check_compartment(self, compartment_id: str | None) -> None:
        known = self.emu.compartments
        if known and compartment_id not in known:
            raise Reply(
                404,
                "NotAuthorizedOrNotFound",
                f"Authorization failed or requested resource not found: compartment {compartment_id}.",
            )

    # routes ---------------------------------------------------------------------------------------

    def _route(self, path: str, query: dict[str, str], body: bytes, fault: Fault | None) -> None:
        for route in ROUTES:
            if route.method != self.command:
                continue
            found = route.pattern.fullmatch(path)
            if found is None:
                continue
            request = Request(query, body, fault)
            if not route.locked:
                return route.answer(self, request, **found.groupdict())
            with self.emu._lock:  # Data Science state changes one request at a time
                if self._replayed(path, body):
                    return None
                return route.answer(self, request, **found.groupdict())
        raise Reply(404, "NotAuthorizedOrNotFound", "Authorization failed or requested resource not found.")

    def _replayed(self, path: str, body: bytes) -> bool:
        """OCI's idempotent creates: a POST carrying an ``opc-retry-token`` already seen on this path
        gets the first answer again (the same resource, nothing made twice); with another body it
        is a 409.  The first answer is kept when it succeeds."""
        token = self.headers.get("opc-retry-token")
        if self.command != "POST" or not token:
            return False
        digest = hashlib.sha256(body).hexdigest()
        seen = self.emu.state.retry_tokens.get((path, token))
        if seen is None:
            self._retry_key = ((path, token), digest)
            return False
        if seen[0] != digest:
            raise Reply(409, "IdempotencyConflict", "The retry token was already used with a different request.")
        self._send(seen[1], seen[2], seen[3])
        return True

    def _get(self, table: dict, ident: str) -> dict:
        if ident not in table or table[ident].get("lifecycleState") == "DELETED":
            raise Reply(404, "NotAuthorizedOrNotFound", "Authorization failed or requested resource not found.")
        return table[ident]

    @staticmethod
    def _public(d: dict) -> dict:
        return {k: v for k, v in d.items() if not k.startswith("_")}

    # Object Storage and inference ----------------------------------------------------------------

    def _namespace(self, r: Request) -> None:
        self._send(200, self.emu.namespace)

    def _put_object(self, r: Request, namespace: str, bucket: str, name: str) -> None:
        self.emu.state.objects[(namespace, bucket, name)] = r.body
        self._send(200, None, {"etag": hashlib.md5(r.body).hexdigest()})

    def _get_object(self, r: Request, namespace: str, bucket: str, name: str) -> None:
        data = self.emu.state.objects.get((namespace, bucket, name))
        if data is None:
            raise Reply(404, "ObjectNotFound", f"The object '{name}' was not found in the bucket '{bucket}'")
        self._send(200, data, {"content-type": "application/octet-stream"})

    def _list_objects(self, r: Request, namespace: str, bucket: str) -> None:
        prefix = r.query.get("prefix", "")
        names = sorted(k[2] for k in self.emu.state.objects if k[:2] == (namespace, bucket) and k[2].startswith(prefix))
        self._send(200, {"objects": [{"name": n} for n in names]})

    def _predict_route(self, r: Request, deployment_id: str) -> None:
        started = time.perf_counter()
        try:
            self._predict(deployment_id, r.body, r.fault)
        finally:
            with self.emu._lock:
                served = self.emu.state.deployments.get(deployment_id)
                if served is not None:  # what OCI Monitoring would count for it
                    scaling.record_predict(served, (time.perf_counter() - started) * 1000, 200)

    def _summarize_metrics(self, r: Request) -> None:
        """OCI Monitoring's SummarizeMetricsData over what this emulator served (see :mod:`.scaling`)."""
        try:
            self._send(200, scaling.summarize(self.emu.state.deployments, json.loads(r.body or b"{}")))
        except scaling.Invalid as exc:
            raise Reply(400, "InvalidParameter", exc.message) from None

    # Data Science: catalog -------------------------------------------------------------------------

    def _list_shapes(self, r: Request) -> None:
        self._send(200, self.emu.state.shapes)

    def _list_models(self, r: Request) -> None:
        q = r.query
        rows = [
            x
            for x in self.emu.state.models.values()
            if x["compartmentId"] == q.get("compartmentId")
            and (not q.get("displayName") or x["displayName"] == q["displayName"])
            and (not q.get("lifecycleState") or x["lifecycleState"] == q["lifecycleState"])
            and (not q.get("modelVersionSetName") or x.get("modelVersionSetName") == q["modelVersionSetName"])
        ]
        self._send(200, [self._public(x) for x in rows])

    def _get_model(self, r: Request, model_id: str) -> None:
        self._send(200, self._get(self.emu.state.models, model_id))

    def _get_metadatum(self, r: Request, model_id: str, key: str) -> None:
        self._get(self.emu.state.models, model_id)
        data = self.emu.state.metadata_artifacts.get((model_id, key))
        if data is None:
            raise Reply(404, "NotAuthorizedOrNotFound", "No artifact for this metadatum.")
        self._send(200, data, {"content-type": "application/octet-stream"})

    # Data Science: model groups --------------------------------------------------------------------

    def _create_group(self, r: Request) -> None:
        s, emu = self.emu.state, self.emu
        request = json.loads(r.body)
        self._check_compartment(request.get("compartmentId"))
        group_id = ocid("datasciencemodelgroup")
        for member in request.get("memberModelEntries", {}).get("memberModelDetails", []):
            if member["modelId"] not in s.models:
                raise Reply(404, "NotAuthorizedOrNotFound", f"Model {member['modelId']} not found.")
        group = {
            **{k: v for k, v in request.items() if k != "createType"},
            "id": group_id,
            "lifecycleState": "ACTIVE",
            "timeCreated": now(),
            "timeUpdated": now(),
            "createdBy": "ocid1.user.oc1..emu",
            "createType": "CREATE",
            "versionId": 1,
            "definedTags": request.get("definedTags", {}),
            "freeformTags": request.get("freeformTags", {}),
        }
        s.groups[group_id] = group
        wr = emu._work_request("MODEL_GROUP_CREATE", request["compartmentId"], group_id, "modelGroup")
        s.work_requests[wr].update(status="SUCCEEDED", percentComplete=100.0, timeFinished=now())
        self._send(200, group, {"opc-work-request-id": wr, "etag": "1"})

    def _get_group(self, r: Request, group_id: str) -> None:
        self._send(200, self._get(self.emu.state.groups, group_id))

    def _delete_group(self, r: Request, group_id: str) -> None:
        group = self._get(self.emu.state.groups, group_id)
        # a group may serve several deployments (each is created from a group id); one still in use
        # is refused, as OCI refuses to delete a model a deployment uses
        users = [
            d["id"]
            for d in self.emu.state.deployments.values()
            if d["lifecycleState"] != "DELETED"
            and group_id
            in (
                (d["modelDeploymentConfigurationDetails"].get("modelGroupConfigurationDetails") or {}).get(
                    "modelGroupId"
                ),
                d.get("_next_group"),
            )
        ]
        if users:
            raise Reply(409, "IncorrectState", f"The model group is used by model deployment(s) {', '.join(users)}.")
        group["lifecycleState"] = "DELETED"
        self._send(204)

    def _list_groups(self, r: Request) -> None:
        rows = [
            self._public(g)
            for g in self.emu.state.groups.values()
            if g["compartmentId"] == r.query.get("compartmentId") and g["lifecycleState"] != "DELETED"
        ]
        self._send(200, rows)

    # Data Science: model deployments ---------------------------------------------------------------

    def _create_deployment_route(self, r: Request) -> None:
        self._create_deployment(json.loads(r.body))

    def _list_deployments(self, r: Request) -> None:
        self._check_compartment(r.query.get("compartmentId"))
        rows = []
        for d in self.emu.state.deployments.values():
            self.emu._advance(d)
            if d["compartmentId"] == r.query.get("compartmentId") and d["lifecycleState"] != "DELETED":
                rows.append(self._public(d))
        self._send(200, rows)

    def _get_deployment(self, r: Request, deployment_id: str) -> None:
        # OCI still answers a deleted deployment's GET, DELETED, for a while (what a waiter sees)
        d = self.emu.state.deployments.get(deployment_id)
        if d is None:
            raise Reply(404, "NotAuthorizedOrNotFound", "Authorization failed or requested resource not found.")
        self.emu._advance(d)
        self._send(200, self._public(d), {"etag": "1"})

    def _delete_deployment(self, r: Request, deployment_id: str) -> None:
        d = self._get(self.emu.state.deployments, deployment_id)
        self._transition(d, "DELETING", "DELETED", "MODEL_DEPLOYMENT_DELETE")

    def _put_deployment(self, r: Request, deployment_id: str) -> None:
        self._update_deployment(self._get(self.emu.state.deployments, deployment_id), json.loads(r.body))

    def _activate(self, r: Request, deployment_id: str) -> None:
        d = self._get(self.emu.state.deployments, deployment_id)
        if d["lifecycleState"] != "INACTIVE":
            raise Reply(409, "IncorrectState", f"The deployment is {d['lifecycleState']}, not INACTIVE.")
        self._transition(d, "UPDATING", "ACTIVE", "MODEL_DEPLOYMENT_ACTIVATE")

    def _deactivate(self, r: Request, deployment_id: str) -> None:
        d = self._get(self.emu.state.deployments, deployment_id)
        if d["lifecycleState"] not in ("ACTIVE", "NEEDS_ATTENTION", "FAILED"):
            raise Reply(409, "IncorrectState", f"The deployment is {d['lifecycleState']}; it cannot be deactivated.")
        self._transition(d, "UPDATING", "INACTIVE", "MODEL_DEPLOYMENT_DEACTIVATE")

    def _model_states_route(self, r: Request, deployment_id: str) -> None:
        self._send(200, self._model_states(self._get(self.emu.state.deployments, deployment_id)))

    # Data Science: work requests and jobs ----------------------------------------------------------

    def _list_work_requests(self, r: Request) -> None:
        q = r.query
        rows = [
            self._public(w)
            for w in self.emu.state.work_requests.values()
            if w["compartmentId"] == q.get("compartmentId")
            and (not q.get("resourceId") or w["_target"] == q["resourceId"])
        ]
        self._send(200, rows)

    def _get_work_request(self, r: Request, work_request_id: str) -> None:
        wr = self._get(self.emu.state.work_requests, work_request_id)
        target = self.emu.state.deployments.get(wr["_target"])
        if target is not None:
            self.emu._advance(target)
        self._send(200, self._public(wr))

    def _get_job(self, r: Request, job_id: str) -> None:
        self._send(200, self._get(self.emu.state.jobs, job_id))

    def _create_deployment(self, request: dict) -> None:
        s, emu = self.emu.state, self.emu
        self._check_compartment(request.get("compartmentId"))
        config = request.get("modelDeploymentConfigurationDetails") or {}
        kind = config.get("deploymentType")
        if kind == "MODEL_GROUP":
            group_id = config.get("modelGroupConfigurationDetails", {}).get("modelGroupId")
            if group_id not in s.groups:
                raise Reply(404, "NotAuthorizedOrNotFound", f"Model group {group_id} not found.")
            shape = config["infrastructureConfigurationDetails"]["instanceConfiguration"]["instanceShapeName"]
        elif kind == "SINGLE_MODEL":
            model_id = config["modelConfigurationDetails"]["modelId"]
            self._get(s.models, model_id)
            shape = config["modelConfigurationDetails"]["instanceConfiguration"]["instanceShapeName"]
        else:
            raise Reply(400, "InvalidParameter", f"deploymentType {kind!r} is not supported here.")
        if s.shapes and shape not in {x["name"] for x in s.shapes}:
            raise Reply(400, "InvalidParameter", f"Shape {shape} is not available for model deployment.")
        deployment_id = ocid("datasciencemodeldeployment")
        fail = getattr(emu, "_fail_next", None)
        emu._fail_next = None
        deployment = {
            **request,
            "id": deployment_id,
            "lifecycleState": "CREATING",
            "lifecycleDetails": "Creating",
            "timeCreated": now(),
            "createdBy": "ocid1.user.oc1..emu",
            "modelDeploymentUrl": f"{emu.url}/{deployment_id}",
            "definedTags": request.get("definedTags", {}),
            "freeformTags": request.get("freeformTags", {}),
            "_pending": "FAILED" if fail else "ACTIVE",
            "_fail_reason": fail,
        }
        try:
            scaling.on_create(deployment)
        except scaling.Invalid as exc:
            raise Reply(400, "InvalidParameter", exc.message) from None
        deployment["_wr"] = emu._work_request(
            "MODEL_DEPLOYMENT_CREATE", request["compartmentId"], deployment_id, "modelDeployment"
        )
        s.deployments[deployment_id] = deployment
        self._send(200, self._public(deployment), {"opc-work-request-id": deployment["_wr"], "etag": "1"})

    def _transition(self, d: dict, now_state: str, then: str, operation: str) -> None:
        d["lifecycleState"], d["_pending"], d["_polls"] = now_state, then, 0
        d["_wr"] = self.emu._work_request(operation, d["compartmentId"], d["id"], "modelDeployment")
        self._send(202, None, {"opc-work-request-id": d["_wr"]})

    def _update_deployment(self, d: dict, request: dict) -> None:
        if d["lifecycleState"] not in ("ACTIVE", "NEEDS_ATTENTION"):
            raise Reply(409, "IncorrectState", f"The deployment is {d['lifecycleState']}; it cannot be updated.")
        config = request.get("modelDeploymentConfigurationDetails") or {}
        new_group = (config.get("modelGroupConfigurationDetails") or {}).get("modelGroupId")
        if new_group and new_group not in self.emu.state.groups:
            raise Reply(404, "NotAuthorizedOrNotFound", f"Model group {new_group} not found.")
        try:
            scaling.on_update(d, config)
        except scaling.Invalid as exc:
            raise Reply(400, "InvalidParameter", exc.message) from None
        for key in ("displayName", "description", "freeformTags", "definedTags"):
            if key in request:
                d[key] = request[key]
        if new_group:
            d["_next_group"] = new_group
        # a LIVE update keeps serving: the state stays ACTIVE while the work request runs
        live = config.get("updateType") == "LIVE"
        d["_pending"], d["_polls"] = "ACTIVE", 0
        d["lifecycleState"] = "ACTIVE" if live else "UPDATING"
        d["_wr"] = self.emu._work_request("MODEL_DEPLOYMENT_UPDATE", d["compartmentId"], d["id"], "modelDeployment")
        self._send(202, None, {"opc-work-request-id": d["_wr"]})

    def _model_states(self, d: dict) -> list[dict]:
        config = d["modelDeploymentConfigurationDetails"]
        state = {"ACTIVE": "SUCCESS", "FAILED": "FAILED"}.get(d["lifecycleState"], "INCONSISTENT")
        if config.get("deploymentType") != "MODEL_GROUP":
            model_id = config["modelConfigurationDetails"]["modelId"]
            return [
                {
                    "modelId": model_id,
                    "displayName": self.emu.state.models[model_id]["displayName"],
                    "state": state,
                    "freeformTags": {},
                    "definedTags": {},
                }
            ]
        group = self.emu.state.groups[config["modelGroupConfigurationDetails"]["modelGroupId"]]
        return [
            {
                "modelId": member["modelId"],
                "inferenceKey": member.get("inferenceKey"),
                "displayName": self.emu.state.models.get(member["modelId"], {}).get("displayName"),
                "state": state,
                "freeformTags": {},
                "definedTags": {},
            }
            for member in group["memberModelEntries"]["memberModelDetails"]
        ]

    # inference ------------------------------------------------------------------------------------

    def _predict(self, deployment_id: str, body: bytes, fault: Fault | None) -> None:
        with self.emu._lock:
            d = self._get(self.emu.state.deployments, deployment_id)
            self.emu._advance(d)
            names = self.emu.served_names(d)
        if d["lifecycleState"] != "ACTIVE":
            raise Reply(409, "IncorrectState", f"The model deployment is {d['lifecycleState']}.")
        try:
            request = json.loads(body or b"{}")
        except json.JSONDecodeError:
            raise Reply(400, "InvalidParameter", "The request body is not JSON.") from None
        model = self._predict_model(d, request.get("model"), names)
        if model not in names:
            return self._send(
                404,
                {
                    "error": {
                        "message": f"Invalid model name {model!r}; served: {names}",
                        "type": "invalid_request_error",
                        "code": 404,
                    }
                },
            )
        env = (
            d["modelDeploymentConfigurationDetails"]
            .get("environmentConfigurationDetails", {})
            .get("environmentVariables", {})
        )
        route = self.headers.get("route") or env.get("MODEL_DEPLOY_PREDICT_ENDPOINT", "/v1/completions")
        chat = route == "/v1/chat/completions"
        if chat and "messages" not in request:
            return self._send(400, {"error": {"message": "'messages' is required for /v1/chat/completions"}})
        limit = request.get("max_tokens")
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
            # vLLM's answer; before, int("five") dropped the connection with a traceback
            return self._send(400, {"error": {"message": f"max_tokens must be a positive integer, got {limit!r}"}})
        words = _reply_words(model, request)
        if self.headers.get("enable-streaming", "").lower() != "true" and not request.get("stream"):
            text = " ".join(words)
            choice = {"index": 0, "finish_reason": "length"}
            choice.update({"message": {"role": "assistant", "content": text}} if chat else {"text": text})
            return self._send(
                200,
                {
                    "id": "cmpl-emu",
                    "object": "chat.completion" if chat else "text_completion",
                    "model": model,
                    "choices": [choice],
                    "usage": {"prompt_tokens": 5, "completion_tokens": len(words)},
                },
            )
        self.send_response(200)
        self.send_header("opc-request-id", self.request_id)
        self.send_header("content-type", "text/event-stream")
        self.send_header("transfer-encoding", "chunked")
        self.end_headers()
        for i, word in enumerate(words):
            if fault and fault.drop_after is not None and i >= fault.drop_after:
                self.wfile.flush()
                self.close_connection = True
                self.connection.shutdown(2)  # the container died mid-answer
                return
            piece = word if i == 0 else " " + word
            delta = {"delta": {"content": piece}} if chat else {"text": piece}
            chunk = {
                "id": "cmpl-emu",
                "object": "chat.completion.chunk" if chat else "text_completion",
                "model": model,
                "choices": [{"index": 0, **delta, "finish_reason": None}],
            }
            self._chunk(f"data: {json.dumps(chunk)}\n\n".encode())
            time.sleep(0.002)
        self._chunk(b"data: [DONE]\n\n")
        self._chunk(b"")

    def _predict_model(self, d: dict, model: str | None, names: list[str]) -> str | None:
        """The served name a request is for: the ``model-key`` header (a group's inference key),
        the ``model-ocid`` header, or ``model`` in the body — a served name, or a member's OCID
        (seed 003 passes either), which names the member's inference key."""
        wanted = self.headers.get("model-key") or self.headers.get("model-ocid") or model
        if wanted in names:
            return wanted
        config = d["modelDeploymentConfigurationDetails"]
        if config.get("deploymentType") == "MODEL_GROUP":
            group = self.emu.state.groups.get(config["modelGroupConfigurationDetails"]["modelGroupId"], {})
            for member in group.get("memberModelEntries", {}).get("memberModelDetails", []):
                if member["modelId"] == wanted and member.get("inferenceKey") in names:
                    return member["inferenceKey"]
            details = group.get("modelGroupDetails", {})
            meta = {m["key"]: m["value"] for m in details.get("customMetadataList", [])}
            if "MULTI_MODEL_CONFIG" in meta:  # a multi-model group: the entry's served name
                for entry in json.loads(meta["MULTI_MODEL_CONFIG"])["models"]:
                    match = re.search(r"--served-model-name\s+('([^']*)'|(\S+))", entry["params"])
                    if entry.get("model_id") == wanted and match:
                        return match.group(2) or match.group(3)
        return wanted

    def _chunk(self, data: bytes) -> None:
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()


def _reply_words(model: str, request: dict) -> list[str]:
    """A deterministic answer that names the model and what it was asked, capped by max_tokens."""
    asked = request.get("prompt") or (request.get("messages") or [{}])[-1].get("content") or ""
    if isinstance(asked, list):
        asked = " ".join(part.get("text", "") for part in asked if isinstance(part, dict))
    words = f"{model} answers: {asked}".split()
    return words[: max(1, int(request.get("max_tokens") or 16))]


def new_api_key() -> tuple[Any, str, str]:
    """(private key, PEM text, OCI fingerprint) for a throwaway API key."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    der = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    fingerprint = ":".join(re.findall("..", hashlib.md5(der).hexdigest()))
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    return key, pem, fingerprint


# --------------------------------------------------------------------------------------------------
# Route table: (method, path template, answer).  ``{name}`` matches one path segment, ``{name}``
# the rest of the path (object names contain slashes).  Data Science routes run under the lock.


@dataclass(frozen=True)
class Request:
    query: dict[str, str]
    body: bytes
    fault: Fault | None


@dataclass(frozen=True)
class Route:
    method: str
    pattern: re.Pattern[str]
    answer: Any  # an unbound _Handler method: (handler, request, **path parameters)
    locked: bool


def route(method: str, template: str, answer: Any, locked: bool = False) -> Route:
    return Route(method, re.compile(template_pattern(template, {"name": ".+"})), answer, locked)


def _ds(method: str, template: str, answer: Any) -> Route:
    return route(method, DS + template, answer, locked=True)


from . import ads_api, jobs  # noqa: E402 — they use Reply and ocid from above

H = _Handler
ROUTES = [
    _ds("GET", "/modelDeploymentShapes", H._list_shapes),
    _ds("GET", "/models", H._list_models),
    _ds("POST", "/models", jobs.create_model),
    _ds("GET", "/models/{model_id}", H._get_model),
    _ds("PUT", "/models/{model_id}", jobs.update_model),
    _ds("DELETE", "/models/{model_id}", jobs.delete_model),
    _ds("GET", "/models/{model_id}/provenance", jobs.get_provenance),
    _ds("PUT", "/models/{model_id}/provenance", jobs.update_provenance),
    _ds("POST", "/models/{model_id}/provenance", jobs.create_provenance),
    _ds("PUT", "/models/{model_id}/artifact", jobs.put_artifact),
    _ds("GET", "/models/{model_id}/artifact/content", jobs.get_artifact),
    _ds("HEAD", "/models/{model_id}/artifact/content", jobs.get_artifact),
    _ds("POST", "/modelVersionSets", jobs.create_version_set),
    _ds("GET", "/modelVersionSets", jobs.list_version_sets),
    _ds("GET", "/modelVersionSets/{mvs_id}", jobs.get_version_set),
    _ds("DELETE", "/modelVersionSets/{mvs_id}", jobs.delete_version_set),
    _ds("GET", "/models/{model_id}/definedMetadata/{key}/artifact/content", H._get_metadatum),
    _ds("POST", "/modelGroups", H._create_group),
    _ds("GET", "/modelGroups", H._list_groups),
    _ds("GET", "/modelGroups/{group_id}", H._get_group),
    _ds("DELETE", "/modelGroups/{group_id}", H._delete_group),
    _ds("POST", "/modelDeployments", H._create_deployment_route),
    _ds("GET", "/modelDeployments", H._list_deployments),
    _ds("GET", "/modelDeployments/{deployment_id}", H._get_deployment),
    _ds("DELETE", "/modelDeployments/{deployment_id}", H._delete_deployment),
    _ds("PUT", "/modelDeployments/{deployment_id}", H._put_deployment),
    _ds("POST", "/modelDeployments/{deployment_id}/actions/activate", H._activate),
    _ds("POST", "/modelDeployments/{deployment_id}/actions/deactivate", H._deactivate),
    _ds("GET", "/modelDeployments/{deployment_id}/models/modelState", H._model_states_route),
    _ds("GET", "/workRequests", H._list_work_requests),
    _ds("GET", "/workRequests/{work_request_id}", H._get_work_request),
    _ds("GET", "/workRequests/{work_request_id}/logs", ads_api.work_request_logs),
    _ds("GET", "/workRequests/{work_request_id}/errors", ads_api.work_request_errors),
    _ds("GET", "/containers", ads_api.list_containers),
    route("POST", ads_api.SEARCH + "/resources", ads_api.search_resources, locked=True),
    _ds("POST", "/jobs", jobs.create_job),
    _ds("GET", "/jobs", jobs.list_jobs),
    _ds("GET", "/jobs/{job_id}", H._get_job),
    _ds("DELETE", "/jobs/{job_id}", jobs.delete_job),
    _ds("POST", "/jobRuns", jobs.create_job_run),
    _ds("GET", "/jobRuns", jobs.list_job_runs),
    _ds("GET", "/jobRuns/{job_run_id}", jobs.get_job_run),
    _ds("DELETE", "/jobRuns/{job_run_id}", jobs.delete_job_run),
    _ds("POST", "/jobRuns/{job_run_id}/actions/cancelJobRun", jobs.cancel_job_run),
    route("GET", "/n", H._namespace),
    route("PUT", "/n/{namespace}/b/{bucket}/o/{name}", H._put_object),
    route("GET", "/n/{namespace}/b/{bucket}/o/{name}", H._get_object),
    route("HEAD", "/n/{namespace}/b/{bucket}/o/{name}", H._get_object),
    route("GET", "/n/{namespace}/b/{bucket}/o", H._list_objects),
    route("POST", scaling.MONITORING + "/metrics/actions/summarizeMetricsData", H._summarize_metrics, locked=True),
    route("POST", "/{deployment_id}/predict", H._predict_route),
    route("POST", "/{deployment_id}/predictWithResponseStream", H._predict_route),
]
