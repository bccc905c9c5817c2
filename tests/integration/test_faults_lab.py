"""Faults on the lab: a connection cut mid-run, the registry node restarted, setup interrupted
(SIGINT) at each step, and data surviving everything but teardown --purge-data --yes."""
import os
import signal
import subprocess
import time

import pytest

from devtools.lab import settings as S
from tests.integration.clirun import BIN, ROOT, run, statuses
from tests.integration.labutil import CERTS, ENDPOINT, ensure_setup, node_exec

pytestmark = pytest.mark.lab
PASSWORD = "faults-pass-3456"
ENV = {"REGISTRY_PASSWORD": PASSWORD}
STEPS = ["preflight", "directories", "htpasswd", "secrets", "label", "image", "compose file", "deploy",
         "converge", "old secrets", "trust-cert", "credential-helper", "login"]


@pytest.fixture(scope="module")
def lab(lab_config):
    ensure_setup(lab_config, PASSWORD)
    return lab_config


def setup_proc(lab):
    env = {k: v for k, v in os.environ.items() if k != "REGISTRY_PASSWORD"}
    env.update(ENV, SWARM_REGISTRY_CONFIG=str(lab))
    return subprocess.Popen([str(BIN / "inv"), "setup"], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


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


def unsettle():
    """Give setup work on every host: no stack, node2 distrusts the registry, node3 logged out."""
    node_exec(1, "docker", "stack", "rm", "onsen-registry")
    node_exec(2, "rm", "-rf", CERTS)
    node_exec(3, "docker", "logout", ENDPOINT)


def changes(stdout: str) -> list[str]:
    return [line for line in stdout.split("RECAP")[0].splitlines() if line.split()[2:3] == ["changed"]]


@pytest.mark.parametrize("step", STEPS)
def test_sigint_at_each_step_then_rerun_converges(lab, step):
    unsettle()
    proc = setup_proc(lab)
    out, sent = [], False
    for line in proc.stdout:
        out.append(line)
        if not sent and f" {step} " in line and line.split()[0].startswith("node"):
            proc.send_signal(signal.SIGINT)
            sent = True
    rc = proc.wait(timeout=300)
    assert sent, "".join(out)
    assert rc in (0, 1, 130), "".join(out)
    assert temp_files() == []
    again = run("inv", "setup", config=lab, env=ENV, timeout=900)
    assert again.returncode == 0, again.stdout
    assert temp_files() == []
    secrets = node_exec(1, "docker", "secret", "ls", "-q", "--filter", "label=io.swarm-registry.stack=onsen-registry")
    assert len(secrets.stdout.split()) <= 2 * (1 + 2)  # in use + secrets_keep old versions of each kind
    third = run("inv", "setup", config=lab, env=ENV)
    assert third.returncode == 0 and changes(third.stdout) == []


def test_connection_cut_mid_run(lab):
    unsettle()
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
