"""Object Storage as the emulator serves it: the namespace and objects in buckets."""

from __future__ import annotations

import hashlib
from typing import Any

from .common import Reply, Request


def namespace(h: Any, r: Request) -> None:
    h._send(200, h.emu.namespace)


def put_object(h: Any, r: Request, namespace: str, bucket: str, name: str) -> None:
    h.emu.state.objects[(namespace, bucket, name)] = r.body
    h._send(200, None, {"etag": hashlib.md5(r.body).hexdigest()})


def get_object(h: Any, r: Request, namespace: str, bucket: str, name: str) -> None:
    data = h.emu.state.objects.get((namespace, bucket, name))
    if data is None:
        raise Reply(404, "ObjectNotFound", f"The object '{name}' was not found in the bucket '{bucket}'")
    h._send(200, data, {"content-type": "application/octet-stream"})


def list_objects(h: Any, r: Request, namespace: str, bucket: str) -> None:
    prefix = r.query.get("prefix", "")
    names = sorted(k[2] for k in h.emu.state.objects if k[:2] == (namespace, bucket) and k[2].startswith(prefix))
    h._send(200, {"objects": [{"name": n} for n in names]})
