"""Rendering of the stack (compose) file, as data dumped with PyYAML.

The service is named `registry`, as in the recipe, so the swarm service is
`<stack>_registry`. Its TLS files come from swarm secrets whose names carry a content
hash (`<host>.crt-<sha8>`), mounted at fixed targets, so a new certificate changes the
secret names and nothing else. The environment is a mapping: the recipe's list form
`REGISTRY_AUTH_HTPASSWD_REALM="Onsen Registry"` would keep the quotes in the value.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

import yaml

from .settings import Settings

CONTAINER_PORT = 5000
CERT_TARGET = "registry.crt"
KEY_TARGET = "registry.key"
SPEC_LABEL = "io.swarm-registry.spec"          # sha256 of the rendered spec: its identity on the swarm
HTPASSWD_LABEL = "io.swarm-registry.htpasswd"  # sha256 of htpasswd: a new one rolls the task
# Read-only (maintenance) mode: docker-registry 2.8 reads storage.maintenance.readonly.enabled; the env form
# must be the whole mapping (REGISTRY_STORAGE_MAINTENANCE_READONLY_ENABLED=true makes 2.8 panic at start).
READONLY_ENV = "REGISTRY_STORAGE_MAINTENANCE_READONLY"
READONLY_VALUE = '{"enabled": true}'
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
    host = settings.registry.host.replace(":", "-")  # an IPv6 address: swarm names take no ':' 
    return SecretNames(cert=secret_name(f"{host}.crt", cert_pem), key=secret_name(f"{host}.key", key_pem))


def stack(settings: Settings, secrets: SecretNames, htpasswd_sha: str = "", readonly: bool = False) -> dict:
    """The compose document as a dict (what `render_stack` dumps). The service and its container
    carry the spec's sha256 (SPEC_LABEL), so what runs can be told apart from what is wanted by
    reading the swarm; the container also carries htpasswd's sha256, so a new htpasswd (which
    the registry reads only at start) makes a new spec and a new task. `readonly`: the same service in
    read-only mode (gc, backup): pushes refused, pulls served; a different spec, so setup undoes it."""
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
    if readonly:
        environment[READONLY_ENV] = READONLY_VALUE
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
    service["labels"] = {HTPASSWD_LABEL: htpasswd_sha}
    doc = {
        "version": "3.7",
        "services": {"registry": service},
        "secrets": {secrets.cert: {"external": True}, secrets.key: {"external": True}},
    }
    digest = spec_hash(doc)
    service["labels"][SPEC_LABEL] = digest
    service["deploy"]["labels"] = {SPEC_LABEL: digest}
    return doc


def spec_hash(doc: dict) -> str:
    return sha256(json.dumps(doc, sort_keys=True, separators=(",", ":")).encode())


def wanted_view(doc: dict) -> dict:
    """What `facts.service_view` must read back from the swarm once `doc` is deployed."""
    svc = doc["services"]["registry"]
    return {
        "image": svc["image"].split("@", 1)[0],  # the swarm keeps a digest apart; the spec label covers it
        "env": sorted(f"{k}={v}" for k, v in svc["environment"].items()),
        "labels": dict(sorted(svc["labels"].items())),
        "secrets": sorted(f"{s['source']}>{s['target']}" for s in svc["secrets"]),
        "mounts": sorted(f"{m['source']}>{m['target']}{':ro' if m.get('read_only') else ''}" for m in svc["volumes"]),
        "constraints": sorted(svc["deploy"]["placement"]["constraints"]),
        "ports": sorted(f"{p['published']}>{p['target']}/{p['mode']}" for p in svc["ports"]),
        "replicas": svc["deploy"]["replicas"],
        "spec_label": svc["deploy"]["labels"][SPEC_LABEL],
    }


def render_stack(settings: Settings, secrets: SecretNames, htpasswd_sha: str = "") -> bytes:
    return dump(stack(settings, secrets, htpasswd_sha))


def dump(doc: dict) -> bytes:
    body = yaml.safe_dump(doc, sort_keys=False, default_flow_style=False)
    return (HEADER + body).encode("utf-8")
