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
import json
import re
import threading
import time
import uuid
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from .common import Fault, Reply, Request, now, ocid
from .control import control
from .routes import ROUTES

UPLOAD = re.compile(r"^/n/[^/]+/b/[^/]+/[ou]/|/artifact$")


@dataclass
class State:
    models: dict[str, dict] = field(default_factory=dict)
    metadata_artifacts: dict[tuple[str, str], bytes] = field(default_factory=dict)
    groups: dict[str, dict] = field(default_factory=dict)
    group_histories: dict[str, dict] = field(default_factory=dict)
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
                return control(self, path, body)
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

    def _chunk(self, data: bytes) -> None:
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()


def new_api_key() -> tuple[Any, str, str]:
    """(private key, PEM text, OCI fingerprint) for a throwaway API key."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    der = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    fingerprint = ":".join(re.findall("..", hashlib.md5(der).hexdigest()))
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    return key, pem, fingerprint
