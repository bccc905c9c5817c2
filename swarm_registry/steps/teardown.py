"""teardown: its one remote command (files/scripts/teardown.sh) and the verdict on what it printed;
the purge command, run only behind --purge-data."""
from __future__ import annotations

from .. import commands
from ..results import CHANGED, FAILED, OK
from ..settings import Settings

TEARDOWN_TIMEOUT = 60


def _facts(stdout: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in stdout.splitlines() if "=" in line)


def teardown_command(settings: Settings, check: bool) -> commands.Command:
    r = settings.registry
    return commands.script("teardown", {"stack": r.stack, "service": r.service, "node": settings.registry_host.node_name,
                                        "label": r.label, "timeout": str(TEARDOWN_TIMEOUT),
                                        "action": "check" if check else "apply"}, timeout=TEARDOWN_TIMEOUT * 3)


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


def wait_gone_command(settings: Settings) -> commands.Command:
    """On the registry node: wait (bounded) until no container of the registry's service runs there."""
    return commands.Command(("sh", "-c", 'i=0; while [ -n "$(docker ps -q --filter "label=com.docker.swarm.service.name=$1")" ]; '
                             'do i=$((i + 1)); [ "$i" -gt "$2" ] && { echo "the registry container still runs after ${2}s" >&2; '
                             'exit 1; }; sleep 1; done', "wait-gone", settings.registry.service, str(TEARDOWN_TIMEOUT)),
                            timeout=TEARDOWN_TIMEOUT * 2)
