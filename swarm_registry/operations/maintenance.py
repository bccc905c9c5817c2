"""teardown and status: their one remote command each, and pure parsers of what they print."""
from __future__ import annotations

from dataclasses import dataclass

from .. import commands
from ..results import CHANGED, FAILED, OK
from ..settings import Settings
from .setup import Task, parse_task

TEARDOWN_TIMEOUT = 60


def _facts(stdout: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in stdout.splitlines() if "=" in line and not line.startswith("task="))


def teardown_command(settings: Settings, check: bool) -> commands.Command:
    r = settings.registry
    return commands.Command(("sh", "-c", commands.script("teardown"), "teardown", r.stack, r.service,
                             settings.registry_host.node_name, r.label, str(TEARDOWN_TIMEOUT),
                             "check" if check else "apply"), timeout=TEARDOWN_TIMEOUT * 3)


def parse_teardown(rc: int, stdout: str, stderr: str, check: bool) -> tuple[str, str]:
    if rc != 0:
        return FAILED, (stderr.strip().splitlines() or [f"exit status {rc}"])[-1]
    f = _facts(stdout)
    stack, label, secrets = f.get("stack", "?"), f.get("label", "?"), int(f.get("secrets", "0") or 0)
    if check:
        if stack == "absent" and label == "absent" and not secrets:
            return OK, "nothing to remove"
        return CHANGED, f"would remove: stack ({stack}), {secrets} secret(s), label ({label})"
    if stack == "absent" and label == "absent" and not secrets:
        return OK, "nothing left to remove"
    return CHANGED, f"stack {stack}, {secrets} secret(s) removed, label {label}"


def purge_command(settings: Settings) -> commands.Command:
    """Delete the registry's data and config directories: only behind --purge-data."""
    return commands.remove_paths([settings.registry.data_dir, settings.registry.config_dir])


def status_command(settings: Settings, manager: bool) -> commands.Command:
    r = settings.registry
    return commands.Command(("sh", "-c", commands.script("status"), "status", r.endpoint, "1" if manager else "0",
                             r.service))


@dataclass
class HostStatus:
    docker: str
    manager: bool
    trust_sha: str
    logged_in: bool
    tasks: list[Task]


def parse_status(stdout: str) -> HostStatus:
    f = _facts(stdout)
    docker = f.get("docker", "down")
    state, _, control = docker.partition("|")
    tasks = [parse_task(line[5:].split("|")) for line in stdout.splitlines() if line.startswith("task=")]
    return HostStatus(docker=state, manager=control == "true", trust_sha=f.get("trust", ""),
                      logged_in=f.get("login") == "1", tasks=tasks)
