"""setup's facts: one command per host reads all it needs; a pure parser turns it into data.

Decisions (what differs, hence what to run) are made from these facts by `deploy`.
"""
from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field

from .. import commands
from ..settings import Settings

COMPOSE_NAME = "docker-compose.yml"


@dataclass
class Task:
    id: str
    node: str
    desired: str
    state: str
    error: str

    @property
    def running(self) -> bool:
        return self.desired == "Running" and self.state.startswith("Running")


def parse_task(fields: list[str]) -> Task:
    return Task(*(fields + [""] * 5)[:5])


def parse_tasks(stdout: str) -> list[Task]:
    """`docker service ps` lines in the service_tasks format (tab-separated), newest first."""
    return [parse_task(line.split("\t")) for line in stdout.splitlines() if line.strip()]


@dataclass
class Facts:
    docker_up: bool = False
    swarm_state: str = ""
    control: bool = False
    image_id: str = ""
    data_dir_mode: str = ""
    auth_dir_mode: str = ""
    htpasswd: str = ""  # "sha256:mode" or ":" when absent
    compose: str = ""
    nodes: dict[str, str] = field(default_factory=dict)  # hostname -> status
    labels: dict[str, str] = field(default_factory=dict)
    secrets: list[tuple[str, str]] = field(default_factory=list)  # (name, created)
    service_image: str = ""
    service_secrets: set[str] = field(default_factory=set)
    service_exists: bool = False
    tasks: list[Task] = field(default_factory=list)
    trust: str = ""  # "sha256:filemode:dirmode" of certs.d/ENDPOINT/ca.crt
    trust_strays: str = ""
    pass_installed: bool = False
    helper_sha: str = ""  # sha256 of docker-credential-pass on PATH ("" when absent)
    gpg_id: bool = False
    list_rc: int | None = None
    docker_config: dict = field(default_factory=dict)
    stored_user: str = ""
    stored_secret: str = ""


def compose_path(settings: Settings) -> str:
    return f"{settings.registry.config_dir}/{COMPOSE_NAME}"


def command(settings: Settings, manager: bool, registry: bool) -> commands.Command:
    r = settings.registry
    return commands.Command(("sh", "-c", commands.script("facts"), "facts", "1" if manager else "0",
                             "1" if registry else "0", r.image, r.data_dir, r.auth_dir, compose_path(settings),
                             settings.registry_host.node_name, r.service, r.stack, r.endpoint))


def parse(stdout: str) -> Facts:
    f = Facts()
    for line in stdout.splitlines():
        key, sep, value = line.partition("=")
        if not sep:
            continue
        if key == "docker":
            if value != "down":
                f.docker_up = True
                parts = value.split("|")
                f.swarm_state, f.control = parts[0], (len(parts) > 1 and parts[1] == "true")
        elif key == "image":
            f.image_id = value
        elif key == "data_dir":
            f.data_dir_mode = value
        elif key == "auth_dir":
            f.auth_dir_mode = value
        elif key == "htpasswd":
            f.htpasswd = value
        elif key == "compose":
            f.compose = value
        elif key == "node":
            parts = value.split("|")
            if len(parts) >= 3:
                f.nodes[parts[0]] = parts[2]
        elif key == "labels":
            try:
                f.labels = json.loads(value) or {} if value else {}
            except json.JSONDecodeError:
                f.labels = {}
        elif key == "secret":
            name, _, created = value.partition("|")
            f.secrets.append((name, created))
        elif key == "service" and value:
            image, _, rest = value.partition("|")
            f.service_exists = True
            f.service_image = image.split("@", 1)[0]
            f.service_secrets = {s for s in rest.split("|", 1)[0].split(",") if s}
        elif key == "task":
            f.tasks.append(parse_task(value.split("|")))
        elif key == "trust":
            f.trust = value
        elif key == "trust_strays":
            f.trust_strays = value.strip()
        elif key == "pass":
            f.pass_installed = value == "1"
        elif key == "helper":
            f.helper_sha = value
        elif key == "gpg_id":
            f.gpg_id = value == "1"
        elif key == "list":
            f.list_rc = int(value) if value.isdigit() else None
        elif key == "dconfig":
            f.docker_config = _json_b64(value)
        elif key == "stored":
            entry = _json_b64(value)
            f.stored_user, f.stored_secret = entry.get("Username", ""), entry.get("Secret", "")
    return f


def _json_b64(value: str) -> dict:
    try:
        data = json.loads(base64.b64decode(value)) if value else {}
    except (ValueError, TypeError):
        return {"_malformed": True}
    return data if isinstance(data, dict) else {"_malformed": True}


def trust_converged(f: Facts, anchor: bytes) -> bool:
    return f.trust == f"{commands.sha256(anchor)}:644:755" and not f.trust_strays


def store_converged(f: Facts, helper_sha: str | None) -> bool:
    """pass + helper installed (the pinned binary for source: release), store initialised and answering."""
    return (f.pass_installed and bool(f.helper_sha) and (helper_sha is None or f.helper_sha == helper_sha)
            and f.gpg_id and f.list_rc == 0 and f.docker_config.get("credsStore") == "pass")


def old_secrets(secrets: list[tuple[str, str]], in_use: set[str], keep: int) -> list[str]:
    """Secrets to remove: those not in use, beyond the `keep` newest of each kind (.crt / .key)."""
    out = []
    for kind in (".crt-", ".key-"):
        mine = sorted((s for s in secrets if kind in s[0] and s[0] not in in_use), key=lambda s: s[1], reverse=True)
        out += [name for name, _ in mine[keep:]]
    return out
