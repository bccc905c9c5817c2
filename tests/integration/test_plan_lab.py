"""On the lab: the commands a run executes are exactly the commands `--dry` printed just before,
for a fresh, a converged and a drifted cluster (traced with env SWARM_REGISTRY_TRACE)."""
import pytest

from tests.integration.clirun import run
from tests.integration.labutil import CERTS, ENDPOINT, ensure_setup, node_exec

pytestmark = pytest.mark.lab
PASSWORD = "plan-lab-pass-1"
ENV = {"REGISTRY_PASSWORD": PASSWORD}


@pytest.fixture(scope="module")
def lab(lab_config):
    ensure_setup(lab_config, PASSWORD)
    return lab_config


def fresh(lab):
    assert run("inv", "teardown", config=lab).returncode == 0
    node_exec(2, "rm", "-rf", CERTS)
    node_exec(3, "docker", "logout", ENDPOINT)


def drifted(lab):
    node_exec(1, "docker", "service", "update", "--detach", "--env-add", "HAND=made", "onsen-registry_registry")
    node_exec(2, "sh", "-c", f"echo other > {CERTS}/ca.crt")


def dry_commands(stdout: str) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for line in stdout.splitlines():
        if " $ " in line:
            host, command = line.split()[0], line.split(" $ ", 1)[1]
            command = command.split("docker save ", 1)[-1].split(" | ", 1)[-1] if command.startswith("docker save") else command
            found.setdefault(host, []).append(command.replace("  # repeated until converged", ""))
    return found


def traced(path) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for line in path.read_text().splitlines():
        host, command = line.split("\t", 1)
        mine = found.setdefault(host, [])
        if not mine or mine[-1] != command:  # a poll repeated until converged counts once
            mine.append(command)
    return {h: cmds[1:] for h, cmds in found.items()}  # the first is the facts command, read by --dry too


def dry_then_traced_run(task: str, config, env: dict, trace):
    """`inv --dry TASK`, then `inv TASK` traced into `trace` (SWARM_REGISTRY_TRACE); both must succeed.
    Returns (the dry run, the run, the commands --dry printed, the commands the run executed; per host)."""
    dry = run("inv", "--dry", task, config=config, env=env)
    assert dry.returncode == 0, dry.stdout + dry.stderr
    real = run("inv", task, config=config, env={**env, "SWARM_REGISTRY_TRACE": str(trace)}, timeout=600)
    assert real.returncode == 0, real.stdout
    return dry, real, dry_commands(dry.stdout), traced(trace)


@pytest.mark.parametrize("state", ["fresh", "converged", "drifted"])
def test_run_executes_exactly_what_dry_printed(lab, tmp_path, state):
    {"fresh": fresh, "converged": lambda lab: None, "drifted": drifted}[state](lab)
    trace = tmp_path / "trace"
    dry, real, printed, executed = dry_then_traced_run("setup", lab, ENV, trace)
    for host in ("node1", "node2", "node3"):
        assert executed.get(host, []) == printed.get(host, []), (host, dry.stdout, trace.read_text())
    assert PASSWORD not in dry.stdout and PASSWORD not in trace.read_text()
    if state == "converged":
        assert printed == {} and "RECAP" in real.stdout
    else:
        assert printed  # something to do, and the run did exactly that
