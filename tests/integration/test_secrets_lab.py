"""No password and no private key bytes anywhere they should not be, during and after
setup + login + smoke-test on the lab: process lists (sampled on the control machine and
every node), every output (also --dry and --check), config.json, shell histories, /tmp and
the config dir on each node. The private key is never on a node's disk; modes as promised."""
import os
import secrets
import stat
import subprocess
import threading

import pytest

from tests.integration.clirun import run
from tests.integration.labutil import ensure_setup, node_exec
from devtools.lab import settings as S

pytestmark = pytest.mark.lab
NODES = (1, 2, 3)


class ProcessSampler(threading.Thread):
    """`ps -eo args` on the control machine and inside every node, as often as it can, until stopped."""

    def __init__(self):
        super().__init__(daemon=True)
        self.seen: set[str] = set()
        self.samples = 0
        self.stop = threading.Event()

    def run(self):
        while not self.stop.is_set():
            outs = [subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout]
            outs += [subprocess.run(["docker", "exec", S.container_name(i), "ps", "-eo", "args"], capture_output=True,
                                    text=True).stdout for i in NODES]
            for out in outs:
                self.seen.update(out.splitlines())
            self.samples += 1


@pytest.fixture(scope="module")
def lab(lab_config):
    ensure_setup(lab_config, "secrets-warmup-pw")
    return lab_config


def test_no_secret_leaks(lab):
    password = "Sx-" + secrets.token_urlsafe(18)
    env = {"REGISTRY_PASSWORD": password}
    outputs = []
    # force real work: the secrets and htpasswd are sent again, every node logs in again
    outputs.append(run("inv", "teardown", config=lab))
    outputs.append(run("inv", "logout", config=lab))
    outputs.append(run("inv", "users.add", "lenain", config=lab, env=env))
    outputs.append(run("inv", "renew-cert", "--check", config=lab, env=env))
    outputs.append(run("inv", "--dry", "setup", config=lab, env=env))
    outputs.append(run("inv", "setup", "--check", config=lab, env=env))
    sampler = ProcessSampler()
    sampler.start()
    try:
        outputs.append(run("inv", "setup", "--password-stdin", config=lab, input=password + "\n", timeout=900))
        outputs.append(run("inv", "login", config=lab, env=env))
        outputs.append(run("inv", "smoke-test", config=lab, env=env))
        outputs.append(run("inv", "status", config=lab, env=env))
        outputs.append(run("inv", "catalog", config=lab, env=env))
    finally:
        sampler.stop.set()
        sampler.join()
    assert all(o.returncode == 0 for o in outputs), [o.stdout[-800:] + o.stderr for o in outputs if o.returncode]
    state = lab.parent.parent / ".lab" / "state"
    key_pem = (state / "registry.swarm-lab.test.key").read_text()
    ca_key = (state / "ca.key").read_text()
    markers = {"password": password}
    for name, pem in (("server key", key_pem), ("CA key", ca_key)):
        body = "".join(pem.splitlines()[1:-1])
        markers[name] = body[40:100]  # key bytes, away from the common ASN.1 header

    assert sampler.samples >= 5, sampler.samples
    text = "\n".join(sampler.seen) + "\n".join(o.stdout + o.stderr for o in outputs)
    for what, marker in markers.items():
        assert marker not in text, f"{what} found in a process list or an output"

    for i in NODES:
        for what, marker in markers.items():
            found = node_exec(i, "grep", "-rlF", "--", marker, "/root", "/tmp", "/etc", "/srv", "/var/lib/registry",
                              "/var/log")
            assert found.stdout.strip() == "", f"{what} on node{i} in {found.stdout}"
        conf = node_exec(i, "cat", "/root/.docker/config.json").stdout
        assert '"auth"' not in conf and password not in conf
        assert node_exec(i, "sh", "-c", "cat /root/.bash_history /root/.ash_history 2>/dev/null").stdout.find(
            password) == -1

    # modes: local state 0700 / files 0600; remote auth dir 0700, htpasswd 0600
    assert stat.S_IMODE(os.stat(state).st_mode) == 0o700
    assert {stat.S_IMODE(os.stat(f).st_mode) for f in state.iterdir() if f.is_file()} == {0o600}
    modes = node_exec(1, "stat", "-c", "%a", "/srv/docker/onsen-registry/auth",
                      "/srv/docker/onsen-registry/auth/htpasswd").stdout.split()
    assert modes == ["700", "600"]


def test_changed_host_key_refused_before_any_secret(lab, tmp_path):
    """A host whose key changed is refused: nothing is sent to it (the login never runs there)."""
    known = (lab.parent.parent / ".lab" / "known_hosts").read_text().splitlines()
    other = subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp_path / "k")], check=True)
    fake = (tmp_path / "k.pub").read_text().split()
    node2_ip = S.node_ip(2)
    rewritten = [f"{node2_ip} {fake[0]} {fake[1]}" if line.startswith(node2_ip + " ") else line for line in known]
    kh = tmp_path / "known_hosts"
    kh.write_text("\n".join(rewritten) + "\n")
    import yaml

    data = yaml.safe_load(lab.read_text())
    data["ssh"]["known_hosts"] = str(kh)
    cfg = tmp_path / "changed.yaml"
    cfg.write_text(yaml.safe_dump(data))
    before = node_exec(2, "sh", "-c", "grep -c 'Accepted publickey' /var/log/sshd.log").stdout
    assert int(before) > 0  # the log does count sessions
    r = run("inv", "login", config=cfg, env={"REGISTRY_PASSWORD": "never-sent-pw"})
    assert r.returncode != 0
    line = next(x for x in r.stdout.splitlines() if x.startswith("FAILED node2"))
    assert "host key CHANGED" in line
    assert other.returncode == 0
    assert node_exec(2, "sh", "-c", "grep -c 'Accepted publickey' /var/log/sshd.log").stdout == before
