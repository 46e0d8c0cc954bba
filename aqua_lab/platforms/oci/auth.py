"""Who we are on OCI: API key, security token, resource principal or instance principal.

Picked by ``mode`` (or ``OCI_IAM_TYPE``), else detected: a Data Science notebook session (or job
run) exposes ``OCI_RESOURCE_PRINCIPAL_VERSION`` → resource principal; a config file → its profile's
API key, or its session token when the profile has ``security_token_file``.  Failures say which
auth was tried and what is missing, never a secret.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ...errors import AquaLabError

MODES = ("api_key", "security_token", "resource_principal", "instance_principal")


class AuthError(AquaLabError):
    """OCI credentials that cannot be used, with what was tried and what to do."""


@dataclass
class OciAuth:
    mode: str
    config: dict[str, Any]  # what the SDK clients take (at least the region)
    signer: Any
    region: str
    tenancy_id: str | None = None
    compartment_id: str | None = None  # a resource principal's own compartment

    def describe(self) -> str:
        return f"{self.mode} in {self.region}"


def config_location(env: Mapping[str, str]) -> Path:
    return Path(env.get("OCI_CONFIG_LOCATION") or env.get("OCI_CONFIG_FILE") or "~/.oci/config").expanduser()


def resolve_auth(
    mode: str | None = None,
    config_file: str | Path | None = None,
    profile: str | None = None,
    region: str | None = None,
    env: Mapping[str, str] = os.environ,
) -> OciAuth:
    mode = mode or env.get("OCI_IAM_TYPE") or None
    path = Path(config_file).expanduser() if config_file else config_location(env)
    profile = profile or env.get("OCI_CONFIG_PROFILE") or "DEFAULT"
    region = region or env.get("OCI_RESOURCE_REGION") or env.get("NB_REGION")
    if mode is not None and mode not in MODES:
        raise AuthError(f"OCI auth {mode!r} is not one of {list(MODES)} (set by OCI_IAM_TYPE or c.AquaLab.oci_auth)")
    if mode is None:
        if env.get("OCI_RESOURCE_PRINCIPAL_VERSION"):
            mode = "resource_principal"
        elif path.is_file():
            mode = "security_token" if _profile_has(path, profile, "security_token_file") else "api_key"
        else:
            raise AuthError(
                f"no OCI credentials found: not in an OCI notebook session (OCI_RESOURCE_PRINCIPAL_VERSION is unset) "
                f"and no config file at {path}; create one with `oci setup config`, or `oci session authenticate`, "
                f"or set OCI_IAM_TYPE"
            )
    try:
        if mode in ("api_key", "security_token"):
            return _from_config(mode, path, profile, region)
        if mode == "resource_principal":
            return _resource_principal(region)
        return _instance_principal(region)
    except AuthError:
        raise
    except Exception as exc:  # SDK errors name fields, not secrets; keep only their message
        raise AuthError(f"OCI auth {mode!r} failed: {type(exc).__name__}: {_scrub(str(exc))}") from None


def _profile_has(path: Path, profile: str, key: str) -> bool:
    import configparser

    parser = configparser.ConfigParser()
    try:
        parser.read(path)
    except configparser.Error:
        return False
    section = parser[profile] if profile in parser else parser.defaults()
    return key in section


def _from_config(mode: str, path: Path, profile: str, region: str | None) -> OciAuth:
    import oci

    if not path.is_file():
        raise AuthError(
            f"OCI auth {mode!r}: no config file at {path} (set OCI_CONFIG_LOCATION or run `oci setup config`)"
        )
    try:
        config = oci.config.from_file(str(path), profile)
    except oci.exceptions.ProfileNotFound:
        raise AuthError(f"OCI auth {mode!r}: profile [{profile}] is not in {path} (set OCI_CONFIG_PROFILE)") from None
    except oci.exceptions.ConfigFileNotFound:
        raise AuthError(f"OCI auth {mode!r}: no config file at {path}") from None
    if region:
        config["region"] = region
    if mode == "api_key":
        try:
            oci.config.validate_config(config)
        except oci.exceptions.InvalidConfig as exc:
            problems = ", ".join(f"{k}: {v}" for k, v in exc.args[0].items()) if exc.args else str(exc)
            raise AuthError(f"OCI auth 'api_key' with {path} [{profile}]: {problems}") from None
        signer = oci.signer.Signer.from_config(config)
        return OciAuth(mode, config, signer, config["region"], config.get("tenancy"))
    token_file = Path(config.get("security_token_file", "")).expanduser()
    if not token_file.is_file():
        raise AuthError(
            f"OCI auth 'security_token' with {path} [{profile}]: security_token_file {token_file} is "
            f"missing; run `oci session authenticate --profile-name {profile}`"
        )
    token = token_file.read_text().strip()
    from oci.auth.security_token_container import SecurityTokenContainer

    if not SecurityTokenContainer(None, token).valid():
        raise AuthError(
            f"OCI auth 'security_token' [{profile}]: the session token has expired; "
            f"run `oci session refresh --profile {profile}` or authenticate again"
        )
    key = oci.signer.load_private_key_from_file(config["key_file"], config.get("pass_phrase"))
    signer = oci.auth.signers.SecurityTokenSigner(token, key)
    if "region" not in config:
        raise AuthError(f"OCI auth 'security_token' [{profile}]: no region in {path}")
    return OciAuth(mode, {"region": config["region"]}, signer, config["region"], config.get("tenancy"))


def _resource_principal(region: str | None) -> OciAuth:
    import oci

    signer = oci.auth.signers.get_resource_principals_signer()
    region = region or getattr(signer, "region", None)
    if not region:
        raise AuthError("OCI auth 'resource_principal': no region (OCI_RESOURCE_PRINCIPAL_REGION is unset)")
    return OciAuth(
        "resource_principal",
        {"region": region},
        signer,
        region,
        getattr(signer, "tenancy_id", None),
        getattr(signer, "compartment_id", None),
    )


def _instance_principal(region: str | None) -> OciAuth:
    import oci

    signer = oci.auth.signers.InstancePrincipalsSecurityTokenSigner()
    region = region or signer.region
    return OciAuth("instance_principal", {"region": region}, signer, region, signer.tenancy_id)


def _scrub(text: str) -> str:
    """Keep messages short and free of key material."""
    return "[redacted]" if "PRIVATE KEY" in text else text[:300]
