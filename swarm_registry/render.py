"""Rendering of the stack (compose) file, as data dumped with PyYAML.

The service is named `registry`, as in the recipe, so the swarm service is
`<stack>_registry`. Its TLS files come from swarm secrets whose names carry a content
hash (`<host>.crt-<sha8>`), mounted at fixed targets, so a new certificate changes the
secret names and nothing else. The environment is a mapping: the recipe's list form
`REGISTRY_AUTH_HTPASSWD_REALM="Onsen Registry"` would keep the quotes in the value.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass

import yaml

from .settings import Settings

CONTAINER_PORT = 5000
CERT_TARGET = "registry.crt"
KEY_TARGET = "registry.key"
HEADER = "# Rendered by swarm_registry from the settings; changes here are overwritten on the next deploy.\n"


@dataclass(frozen=True)
class SecretNames:
    cert: str
    key: str


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def secret_name(base: str, data: bytes) -> str:
    """`<base>-<first 8 hex of sha256>`: immutable swarm secrets get a new name for new content."""
    return f"{base}-{sha256(data)[:8]}"


def secret_names(settings: Settings, cert_pem: bytes, key_pem: bytes) -> SecretNames:
    host = settings.registry.host
    return SecretNames(cert=secret_name(f"{host}.crt", cert_pem), key=secret_name(f"{host}.key", key_pem))


def stack(settings: Settings, secrets: SecretNames) -> dict:
    """The compose document as a dict (what `render_stack` dumps)."""
    r = settings.registry
    environment = {
        "REGISTRY_AUTH": "htpasswd",
        "REGISTRY_AUTH_HTPASSWD_REALM": r.realm,
        "REGISTRY_AUTH_HTPASSWD_PATH": "/auth/htpasswd",
        "REGISTRY_HTTP_ADDR": f"0.0.0.0:{CONTAINER_PORT}",
        "REGISTRY_HTTP_TLS_CERTIFICATE": f"/run/secrets/{CERT_TARGET}",
        "REGISTRY_HTTP_TLS_KEY": f"/run/secrets/{KEY_TARGET}",
        "REGISTRY_HTTP_TLS_MINIMUMTLS": "tls1.2",  # registry 2.8 otherwise accepts TLS 1.0 and 1.1
    }
    if r.delete_enabled:
        environment["REGISTRY_STORAGE_DELETE_ENABLED"] = "true"
    service = {
        "image": r.image,
        "environment": environment,
        "secrets": [
            {"source": secrets.cert, "target": CERT_TARGET, "mode": 0o444},
            {"source": secrets.key, "target": KEY_TARGET, "mode": 0o400},
        ],
        "ports": [{"target": CONTAINER_PORT, "published": r.port, "protocol": "tcp", "mode": r.publish_mode}],
        "volumes": [
            {"type": "bind", "source": r.data_dir, "target": "/var/lib/registry"},
            {"type": "bind", "source": r.auth_dir, "target": "/auth", "read_only": True},
        ],
        "deploy": {
            "replicas": 1,
            "placement": {"constraints": [f"node.labels.{r.label} == true"]},
            "restart_policy": {"condition": "any"},
        },
    }
    return {
        "version": "3.7",
        "services": {"registry": service},
        "secrets": {secrets.cert: {"external": True}, secrets.key: {"external": True}},
    }


def render_stack(settings: Settings, secrets: SecretNames) -> bytes:
    body = yaml.safe_dump(stack(settings, secrets), sort_keys=False, default_flow_style=False)
    return (HEADER + body).encode("utf-8")
