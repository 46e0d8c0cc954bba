"""The OCI platform: Data Science model groups and deployments through the oci SDK."""

from .auth import AuthError, OciAuth, resolve_auth
from .platform import OciPlatform, Settings, make_clients

__all__ = ["AuthError", "OciAuth", "OciPlatform", "Settings", "make_clients", "resolve_auth"]
