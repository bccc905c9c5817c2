"""Faults on the lab: a connection cut mid-run, the registry node restarted, setup interrupted
(SIGINT) at each step, and data surviving everything but teardown --purge-data --yes."""
import re
import signal
import subprocess
import time

import pytest

import yaml

from devtools.lab import settings as S
from swarm_registry.plan import ORDER
from tests.integration import faults
from tests.integration.clirun import interruptible, run, statuses
from tests.integration.labutil import CERTS, ENDPOINT, ensure_setup, node_exec

pytestmark = pytest.mark.lab
PASSWORD = "faults-pass-3456"
ENV = {"REGISTRY_PASSWORD": PASSWORD}


@pytest.fixture(scope="module")
def lab(lab_config):
    ensure_setup(lab_config, PASSWORD)
    return lab_config


def setup_proc(lab):
    return interruptible("inv", "setup", config=lab, env=ENV)


def pushed_tag(lab):
    r = run("inv", "smoke-test", "--keep", config=lab, env=ENV)
    assert r.returncode == 0, r.stdout
    return r.stdout.split("swarm-registry-smoke:", 1)[1].split()[0]


def catalog(lab):
    r = run("inv", "catalog", "--tags", config=lab, env=ENV)
    assert r.returncode == 0, r.stdout + r.stderr
    return r.stdout


def temp_files():
    found = []
    for i in (1, 2, 3):
        out = node_exec(i, "sh", "-c", "find /srv/docker /etc/docker/certs.d /root/.docker -name '.*' -type f "
                                       "2>/dev/null").stdout.split()
        found += [f"node{i}:{f}" for f in out]
    return found


def unsettle(lab):
    """Give every step that runs a remote command work to do: no stack, secrets or label (teardown),
    auth dir 0755, htpasswd and compose file changed on node1, node2 distrusts the registry,
    node3's password store uninitialised and logged out."""
    assert run("inv", "teardown", config=lab).returncode == 0
    node_exec(1, "sh", "-c", "chmod 755 /srv/docker/onsen-registry/auth; echo x: >> /srv/docker/onsen-registry/auth/htpasswd;"
                             " rm -f /srv/docker/onsen-registry/docker-compose.yml")
    node_exec(2, "rm", "-rf", CERTS)
    node_exec(3, "docker", "logout", ENDPOINT)
    node_exec(3, "rm", "-f", "/root/.password-store/.gpg-id")


# steps that unsettle() leaves nothing to do for: what gives them work
MORE_WORK = {
    # the registry image gone from node1 (teardown left it unused): setup streams it again
    "image": lambda: node_exec(1, "docker", "image", "rm", "-f", S.REGISTRY_IMAGE),
    # three unused versions of the certificate secret, older than the ones setup makes: beyond the 2 kept
    "old secrets": lambda: [node_exec(1, "docker", "secret", "create", "--label", "io.swarm-registry.stack=onsen-registry",
                                      f"{ENDPOINT.split(':')[0]}.crt-0000000{i}", "-", input="x") for i in range(3)],
}


def changes(stdout: str) -> list[str]:
    return [line for line in stdout.split("RECAP")[0].splitlines() if line.split()[2:3] == ["changed"]]


# step -> (node, what the fault shim matches: the tool's own argv, or its parent's command line)
OBSERVED = {
    "directories": (1, "install -d -m 700"),
    "htpasswd": (1, "converge-file /srv/docker/onsen-registry/auth/htpasswd"),
    "secrets": (1, "docker secret create"),
    "label": (1, "docker node update --label-add"),
    "image": (1, "docker load -q"),  # the stream from this machine's `docker save` into the node
    "compose file": (1, "converge-file /srv/docker/onsen-registry/docker-compose.yml"),
    "deploy": (1, "docker stack deploy --with-registry-auth --resolve-image never"),
    "converge": (1, "facts tasks registry.swarm-lab.test"),
    "old secrets": (1, "docker secret rm"),
    "trust-cert": (2, "trust-cert registry.swarm-lab.test:5000"),  # the trust script, not the facts
    "credential-helper": (3, "gpg --batch"),
    "login": (3, "docker login --username"),
}


@pytest.mark.parametrize("step", list(OBSERVED))
def test_sigint_while_the_steps_command_runs_on_the_node_then_rerun_converges(lab, step):
    """Ctrl-C while the step's remote command is observed running on the node (the fault shim holds it
    there): the command finishes, nothing new starts, exit 130; the re-run converges, a third changes
    nothing, no temp file is left and no secret is orphaned."""
    node, pattern = OBSERVED[step]
    unsettle(lab)
    MORE_WORK.get(step, lambda: None)()
    with faults.holding(node, pattern):
        proc = setup_proc(lab)
        faults.wait_until_held(node, proc)
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 130 and "interrupted" in out, out
    later = ORDER[ORDER.index(step) + 1:]
    assert not any(line.split()[1:2] == [s] for line in out.splitlines() for s in later if " " not in s), out
    assert temp_files() == []
    again = run("inv", "setup", config=lab, env=ENV, timeout=900)
    assert again.returncode == 0, again.stdout
    assert temp_files() == []
    secrets = node_exec(1, "docker", "secret", "ls", "-q", "--filter", "label=io.swarm-registry.stack=onsen-registry")
    assert len(secrets.stdout.split()) <= 2 * (1 + 2)  # in use + secrets_keep old versions of each kind
    third = run("inv", "setup", config=lab, env=ENV)
    assert third.returncode == 0 and changes(third.stdout) == [], third.stdout


def test_deploy_killed_midway_is_redone_by_the_next_run(lab, tmp_path):
    """The deploy of a new spec (delete_enabled) is killed on the node while it runs, after the compose
    file was written: the next run reads the swarm, sees the old service and deploys again."""
    data = yaml.safe_load(lab.read_text())
    data["registry"]["delete_enabled"] = True
    cfg = tmp_path / "lab-delete.yaml"
    cfg.write_text(yaml.safe_dump(data))
    try:
        with faults.holding(1, "docker stack deploy --with-registry-auth --resolve-image never"):
            proc = setup_proc(cfg)
            faults.wait_until_held(1, proc)
            node_exec(1, "pkill", "-f", "usr/local/bin/docker stack deploy")  # killed before it reaches docker
            out, _ = proc.communicate(timeout=300)
        assert proc.returncode == 1 and statuses(out, "deploy") == {"node1": "failed"}, out
        env = node_exec(1, "docker", "service", "inspect", "--format", "{{json .Spec.TaskTemplate.ContainerSpec.Env}}",
                        "onsen-registry_registry").stdout
        assert "DELETE_ENABLED" not in env
        again = run("inv", "setup", config=cfg, env=ENV)
        assert again.returncode == 0 and re.search(r"node1 +compose file +ok ", again.stdout), again.stdout
        assert statuses(again.stdout, "deploy") == {"node1": "changed"}, again.stdout
        env = node_exec(1, "docker", "service", "inspect", "--format", "{{json .Spec.TaskTemplate.ContainerSpec.Env}}",
                        "onsen-registry_registry").stdout
        assert "REGISTRY_STORAGE_DELETE_ENABLED=true" in env
    finally:
        assert run("inv", "setup", config=lab, env=ENV).returncode == 0


def test_service_changed_by_hand_is_repaired(lab):
    assert run("inv", "setup", config=lab, env=ENV).returncode == 0
    node_exec(1, "docker", "service", "update", "--detach", "--env-add", "HAND=made", "onsen-registry_registry")
    check = run("inv", "setup", "--check", config=lab, env=ENV)
    assert "the running service differs in env" in check.stdout, check.stdout
    fixed = run("inv", "setup", config=lab, env=ENV)
    assert fixed.returncode == 0 and statuses(fixed.stdout, "deploy") == {"node1": "changed"}, fixed.stdout
    env = node_exec(1, "docker", "service", "inspect", "--format", "{{json .Spec.TaskTemplate.ContainerSpec.Env}}",
                    "onsen-registry_registry").stdout
    assert "HAND=made" not in env
    again = run("inv", "setup", config=lab, env=ENV)
    assert again.returncode == 0 and changes(again.stdout) == [] and "commands" in again.stdout


def test_connection_cut_mid_run(lab):
    unsettle(lab)
    proc = setup_proc(lab)
    out, killed = [], False
    for line in proc.stdout:
        out.append(line)
        if not killed and line.startswith("node1") and " directories " in line:
            node_exec(3, "pkill", "-x", "sshd")  # the listener and node3's live session
            killed = True
    rc = proc.wait(timeout=300)
    text = "".join(out)
    try:
        assert killed and rc != 0, text
        assert "FAILED node3:" in text and "FAILED node1" not in text and "FAILED node2" not in text, text
        assert statuses(text, "deploy") == {"node1": "changed"}
    finally:
        node_exec(3, "/usr/sbin/sshd", "-E", "/var/log/sshd.log")
    again = run("inv", "setup", config=lab, env=ENV)
    assert again.returncode == 0, again.stdout
    assert [line for line in changes(again.stdout) if not line.startswith("node3")] == []


def test_registry_node_restarted_comes_back_with_its_data(lab):
    tag = pushed_tag(lab)
    subprocess.run(["docker", "restart", S.container_name(1)], check=True, capture_output=True)
    deadline = time.monotonic() + 180
    while True:  # the swarm restarts the task by itself (restart policy any); poll the API
        r = run("inv", "catalog", "--tags", config=lab, env=ENV)
        if r.returncode == 0 and tag in r.stdout:
            break
        assert time.monotonic() < deadline, r.stdout + r.stderr
        time.sleep(2)
    status = run("inv", "status", config=lab, env=ENV)
    assert status.returncode == 0 and "service: running on the labelled node" in status.stdout, status.stdout
    pull = node_exec(2, "docker", "pull", f"{ENDPOINT}/swarm-registry-smoke:{tag}")
    assert pull.returncode == 0, pull.stderr
    assert run("inv", "setup", config=lab, env=ENV).returncode == 0


def test_data_only_goes_with_purge_data_yes(lab):
    tag = pushed_tag(lab)
    for args in (["teardown"], ["teardown", "--check", "--purge-data"], ["setup"], ["renew-cert"]):
        r = run("inv", *args, config=lab, env=ENV)
        assert r.returncode == 0, (args, r.stdout)
    assert tag in catalog(lab)
    purge = run("inv", "teardown", "--purge-data", "--yes", config=lab)
    assert purge.returncode == 0 and "deleted /var/lib/registry" in purge.stdout
    assert node_exec(1, "test", "-e", "/var/lib/registry").returncode != 0
    assert run("inv", "setup", config=lab, env=ENV).returncode == 0  # comes back, empty
    assert "swarm-registry-smoke" not in catalog(lab)
