"""inv setup on the lab swarm: from scratch, converged re-run, check mode, preflight failures."""
import subprocess
import time

import pytest
import yaml

from devtools.lab import settings as S
from tests.integration.clirun import run, statuses
from tests.integration.labutil import node_exec

pytestmark = pytest.mark.lab
PASSWORD = "lab-pass-1234"
SERVICE = "onsen-registry_registry"



def task_ids():
    out = node_exec(1, "docker", "service", "ps", "-q", "--filter", "desired-state=running", SERVICE).stdout
    return out.split()


def remove_registry():
    """Back to before setup: no stack, label, secrets or remote files (the test lab only)."""
    node_exec(1, "docker", "stack", "rm", "onsen-registry")
    deadline = time.monotonic() + 60
    while node_exec(1, "docker", "ps", "-q", "--filter", f"label=com.docker.swarm.service.name={SERVICE}").stdout.strip():
        assert time.monotonic() < deadline, "registry task did not stop"
        time.sleep(0.5)
    ids = node_exec(1, "docker", "secret", "ls", "-q", "--filter", "label=io.swarm-registry.stack=onsen-registry").stdout.split()
    if ids:
        deadline = time.monotonic() + 30
        while node_exec(1, "docker", "secret", "rm", *ids).returncode != 0:  # rm returns before the task is gone
            assert time.monotonic() < deadline
            time.sleep(0.5)
    node_exec(1, "docker", "node", "update", "--label-rm", "registry", "node1")
    node_exec(1, "rm", "-rf", "/srv/docker/onsen-registry")
    for i in (1, 2, 3):
        node_exec(i, "rm", "-rf", "/etc/docker/certs.d/registry.swarm-lab.test:5000")


@pytest.fixture(scope="module")
def lab(lab_config):
    remove_registry()
    r = run("inv", "users.add", "lenain", config=lab_config, env={"REGISTRY_PASSWORD": PASSWORD})
    assert r.returncode == 0, r.stderr
    return lab_config


def variant(lab, tmp_path, **changes):
    data = yaml.safe_load(lab.read_text())
    for key, value in changes.items():
        section, _, sub = key.partition("__")
        if sub:
            data.setdefault(section, {})[sub] = value
        else:
            data[section] = value
    path = tmp_path / "variant.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_check_mode_before_setup_changes_nothing(lab):
    r = run("inv", "setup", "--check", config=lab, env={"REGISTRY_PASSWORD": PASSWORD})
    assert r.returncode == 0, r.stdout + r.stderr
    assert statuses(r.stdout, "deploy") == {"node1": "would change"}
    assert node_exec(1, "test", "-e", "/srv/docker/onsen-registry").returncode != 0
    assert node_exec(1, "docker", "service", "ls", "-q").stdout.strip() == ""


def test_preflight_image_missing_everywhere_changes_nothing(lab, tmp_path):
    cfg = variant(lab, tmp_path, registry={**yaml.safe_load(lab.read_text())["registry"],
                                           "image": "swarm-registry-lab/absent:1"})
    r = run("inv", "setup", config=cfg, env={"REGISTRY_PASSWORD": PASSWORD})
    assert r.returncode != 0 and "swarm-registry-lab/absent:1 is neither on node1 nor on this machine" in r.stdout
    assert "stopped before any change" in r.stdout
    assert node_exec(1, "test", "-e", "/srv/docker/onsen-registry").returncode != 0


def test_preflight_registry_node_not_in_swarm(lab, tmp_path):
    data = yaml.safe_load(lab.read_text())
    data["hosts"]["node1"]["node_name"] = "ghost"
    cfg = tmp_path / "ghost.yaml"
    cfg.write_text(yaml.safe_dump(data))
    r = run("inv", "setup", config=cfg, env={"REGISTRY_PASSWORD": PASSWORD})
    assert r.returncode != 0 and "'ghost') is not a node of the swarm" in r.stdout
    assert node_exec(1, "docker", "service", "ls", "-q").stdout.strip() == ""


def test_preflight_unreachable_registry_node_changes_nothing(lab, tmp_path):
    data = yaml.safe_load(lab.read_text())
    data["hosts"]["node1"]["port"] = 2222  # nothing listens there
    cfg = tmp_path / "unreachable.yaml"
    cfg.write_text(yaml.safe_dump(data))
    r = run("inv", "setup", config=cfg, env={"REGISTRY_PASSWORD": PASSWORD})
    assert r.returncode != 0 and "FAILED node1: preflight: unreachable" in r.stdout
    for i in (1, 2, 3):
        assert node_exec(i, "test", "-e", "/etc/docker/certs.d/registry.swarm-lab.test:5000/ca.crt").returncode != 0


def test_setup_from_scratch_then_rerun_changes_nothing_and_keeps_the_task(lab):
    first = run("inv", "setup", config=lab, env={"REGISTRY_PASSWORD": PASSWORD})
    assert first.returncode == 0, first.stdout + first.stderr
    assert "200 with lenain's" in first.stdout
    assert statuses(first.stdout, "deploy") == {"node1": "changed"}
    ids = task_ids()
    assert len(ids) == 1
    modes = node_exec(1, "stat", "-c", "%a", "/srv/docker/onsen-registry/auth",
                      "/srv/docker/onsen-registry/auth/htpasswd").stdout.split()
    assert modes == ["700", "600"]
    second = run("inv", "setup", config=lab, env={"REGISTRY_PASSWORD": PASSWORD})
    assert second.returncode == 0
    changed = [line for line in second.stdout.splitlines() if " changed " in line and "RECAP" not in line]
    assert all(set(statuses(second.stdout, s).values()) <= {"ok"} for s in
               ("directories", "htpasswd", "secrets", "label", "image", "compose file", "deploy", "trust-cert")), changed
    assert task_ids() == ids
    recap = second.stdout.split("RECAP", 1)[1]
    for host in ("node1", "node2", "node3"):  # converged: 1 remote command per host (facts)
        row = next(line for line in recap.splitlines() if line.startswith(host))
        assert row.split()[3] == "0" and row.split()[-1] == "1", row


def test_private_key_never_on_a_node_disk(lab):
    key = (lab.parent.parent / ".lab" / "state" / "registry.swarm-lab.test.key").read_text()
    marker = key.splitlines()[1][:40]
    for i in (1, 2, 3):
        found = node_exec(i, "grep", "-rlF", marker, "/etc", "/srv", "/root", "/tmp", "/var/lib/registry")
        assert found.stdout.strip() == "", found.stdout


def test_worker_down_others_converge(lab, tmp_path):
    subprocess.run(["docker", "exec", S.container_name(3), "pkill", "-x", "sshd"], check=False)
    try:
        node_exec(2, "rm", "-rf", "/etc/docker/certs.d/registry.swarm-lab.test:5000")
        r = run("inv", "setup", config=lab, env={"REGISTRY_PASSWORD": PASSWORD})
        assert r.returncode != 0 and "FAILED node3: preflight: unreachable" in r.stdout
        assert statuses(r.stdout, "trust-cert") == {"node1": "ok", "node2": "changed"}
    finally:
        subprocess.run(["docker", "exec", S.container_name(3), "/usr/sbin/sshd"], check=True)
    again = run("inv", "setup", config=lab, env={"REGISTRY_PASSWORD": PASSWORD})
    assert again.returncode == 0 and set(statuses(again.stdout, "trust-cert").values()) == {"ok"}


def test_users_is_the_allow_list_a_listed_user_gets_in_an_unlisted_one_is_revoked(lab, tmp_path):
    from swarm_registry import settings as settings_mod
    from swarm_registry.registry_http import probe

    data = yaml.safe_load(lab.read_text())
    data["users"] = ["lenain", "alice"]
    with_alice = tmp_path / "alice.yaml"
    with_alice.write_text(yaml.safe_dump(data))
    cfg = settings_mod.load(with_alice)
    add = run("inv", "users.add", "alice", "--apply", config=with_alice, env={"REGISTRY_PASSWORD": "alice-pw-1"})
    assert add.returncode == 0, add.stdout + add.stderr
    assert statuses(add.stdout, "htpasswd") == {"node1": "changed"}
    assert statuses(add.stdout, "deploy") == {"node1": "changed"}  # htpasswd's hash is in the spec: a new task
    assert probe(cfg, "/v2/", auth=("alice", "alice-pw-1")).status == 200
    # alice's password is still in state_dir/htpasswd, but her name left `users:`: setup revokes her
    revoke = run("inv", "setup", config=lab, env={"REGISTRY_PASSWORD": PASSWORD})
    assert revoke.returncode == 0, revoke.stdout
    assert "not deployed (not in settings users): alice" in revoke.stdout
    assert probe(cfg, "/v2/", auth=("alice", "alice-pw-1")).status == 401
    assert probe(cfg, "/v2/", auth=("lenain", PASSWORD)).status == 200
    rm = run("inv", "users.remove", "alice", config=lab)
    assert rm.returncode == 0, rm.stdout + rm.stderr


def test_convergence_timeout_names_the_task_error(lab, tmp_path):
    """An image the node cannot get: the task is rejected, and setup fails naming the task's error."""
    data = yaml.safe_load(lab.read_text())
    data["registry"].update({"image": "swarm-registry-lab/missing:1", "resolve_image": "always",
                             "converge_timeout": 20})
    cfg = tmp_path / "missing-image.yaml"
    cfg.write_text(yaml.safe_dump(data))
    try:
        r = run("inv", "setup", config=cfg, env={"REGISTRY_PASSWORD": PASSWORD})
        assert r.returncode != 0
        line = next(x for x in r.stdout.splitlines() if x.startswith("FAILED node1"))
        assert "not converged after 20s" in line and "No such image: swarm-registry-lab/missing:1" in line, line
    finally:
        assert run("inv", "setup", config=lab, env={"REGISTRY_PASSWORD": PASSWORD}).returncode == 0


def test_smoke_test_with_an_existing_image(lab):
    """--image REF, as the recipe does with alpine:latest (here the lab's registry image on node1)."""
    r = run("inv", "smoke-test", "--image", "swarm-registry-lab/registry:2", config=lab,
            env={"REGISTRY_PASSWORD": PASSWORD})
    assert r.returncode == 0, r.stdout
    assert "tagged swarm-registry-lab/registry:2 as" in r.stdout
    assert statuses(r.stdout, "pull") == {"node2": "ok", "node3": "ok"}


def test_image_missing_on_the_node_is_streamed_from_this_machine(lab, tmp_path):
    """Air-gapped path: the node lacks the image, this machine has it: docker save | docker load over SSH."""
    tag = "swarm-registry-lab/registry:streamed"
    subprocess.run(["docker", "tag", "swarm-registry-lab/registry:2", tag], check=True)
    node_exec(1, "docker", "rmi", tag)
    data = yaml.safe_load(lab.read_text())
    data["registry"]["image"] = tag
    cfg = tmp_path / "streamed.yaml"
    cfg.write_text(yaml.safe_dump(data))
    try:
        r = run("inv", "setup", config=cfg, env={"REGISTRY_PASSWORD": PASSWORD})
        assert r.returncode == 0, r.stdout
        assert statuses(r.stdout, "image") == {"node1": "changed"} and "streamed" in r.stdout
        assert node_exec(1, "docker", "image", "inspect", tag).returncode == 0
        again = run("inv", "setup", config=cfg, env={"REGISTRY_PASSWORD": PASSWORD})
        assert statuses(again.stdout, "image") == {"node1": "ok"}  # same image ID: not sent again
    finally:
        assert run("inv", "setup", config=lab, env={"REGISTRY_PASSWORD": PASSWORD}).returncode == 0
        node_exec(1, "docker", "rmi", tag)
        subprocess.run(["docker", "rmi", tag], capture_output=True)
