"""The clusters people have, each a real swarm of lab containers (devtools.lab named labs):

- `nopw`: a non-root `deploy` user with NOPASSWD sudo, and registry.host the registry node's IPv4 address;
- `pw`: a `deploy` user whose sudo asks for a password, reachable only through a bastion;
- `mgrs`: 3 managers and the registry on a worker; the first manager is stopped during setup;
- `v6`: an IPv6 swarm: SSH, the swarm and the registry name use the nodes' IPv6 addresses.

In each: setup, smoke-test and login verification pass; a re-run changes nothing with one command
per host; and neither the sudo password nor the registry password is found on any node (files
under /root, /home, /tmp, /etc, /var/log; process lists sampled during the runs; the content of
every swarm secret, read inside the registry's task) nor in any output."""
import ipaddress
import json
import secrets
import shutil
import socket
import subprocess
import tempfile
import threading
from pathlib import Path

import pytest
import yaml

from devtools import lab as lab_mod
from devtools.lab import settings as L
from tests.integration import clirun
from tests.integration.clirun import BIN, ROOT, run, statuses

pytestmark = pytest.mark.lab
SHAPES = {
    "nopw": dict(nodes=3, user="deploy", sudo="nopasswd"),
    "pw": dict(nodes=3, user="deploy", sudo="password", bastion=True),
    "mgrs": dict(nodes=4, managers=3, registry_node=4),
    "v6": dict(nodes=3, ipv6=True),
}


# registry.host is the registry node's IP address there, not a name (an IP SAN, certs.d/ADDR:5000, images
# named ADDR:5000/...)
REGISTRY_BY_ADDRESS = {"nopw"}


class Shape:
    def __init__(self, name: str, options: dict):
        self.name, self.options = name, options
        self.lab = L.lab(name)
        self.nodes = range(1, options["nodes"] + 1)
        self.password = "Rg-" + secrets.token_urlsafe(15)
        self.work: Path | None = None  # settings and state (the CA key) of a shape that rewrites them

    def up(self):
        self.config = lab_mod.up(out=lambda line: None, name=self.name, **self.options)
        if self.name in REGISTRY_BY_ADDRESS:
            data = yaml.safe_load(self.config.read_text())
            self.work = work = Path(tempfile.mkdtemp(prefix=f"shape-{self.name}-"))
            data["registry"]["host"] = data["hosts"]["node1"]["address"]
            data["state_dir"] = str(work / "state")
            self.config = work / "cluster.yaml"
            self.config.write_text(yaml.safe_dump(data))
        self.registry_host = yaml.safe_load(self.config.read_text())["registry"]["host"]
        pw = self.lab.sudo_password_file
        self.sudo_password = pw.read_text().strip() if self.options.get("sudo") == "password" else None
        self.env = {"REGISTRY_PASSWORD": self.password}
        if self.sudo_password:
            self.env["SWARM_REGISTRY_SUDO_PASSWORD"] = self.sudo_password

    def container(self, i: int) -> str:
        return self.lab.container_name(i)

    def exec(self, i: int, *argv: str) -> subprocess.CompletedProcess:
        return subprocess.run(["docker", "exec", self.container(i), *argv], capture_output=True, text=True,
                              timeout=120)

    def inv(self, *args: str, config=None, timeout: float = 900) -> subprocess.CompletedProcess:
        return run("inv", *args, config=config or self.config, env=self.env, timeout=timeout)


class Sampler(threading.Thread):
    """Process lists on this machine and on every node, sampled until stopped."""

    def __init__(self, shape: Shape):
        super().__init__(daemon=True)
        self.shape, self.seen, self.samples, self.stop = shape, set(), 0, threading.Event()

    def run(self):
        while not self.stop.is_set():
            outs = [subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout]
            outs += [self.shape.exec(i, "ps", "-eo", "args").stdout for i in self.shape.nodes]
            for out in outs:
                self.seen.update(out.splitlines())
            self.samples += 1


@pytest.fixture(scope="module", params=list(SHAPES))
def shape(request, _lab_session):
    s = Shape(request.param, SHAPES[request.param])
    s.up()
    yield s
    import os

    if os.environ.get("SWARM_REGISTRY_KEEP_LAB") != "1":
        lab_mod.down(out=lambda line: None, name=s.name)
        if s.work is not None:  # its state holds a CA key: not left in /tmp
            shutil.rmtree(s.work, ignore_errors=True)


def changed(stdout: str) -> list[str]:
    return [line for line in stdout.split("RECAP")[0].splitlines() if line.split()[2:3] == ["changed"]]


def commands_per_host(stdout: str) -> dict[str, int]:
    rows = stdout.split("RECAP", 1)[1].splitlines()[2:]
    return {r.split()[0]: int(r.split()[-1]) for r in rows if r.split() and not r.startswith("FAILED")}


def test_setup_smoke_login_rerun_and_no_secret_anywhere(shape):
    outputs = [shape.inv("users.add", "lenain")]
    assert outputs[0].returncode == 0, outputs[0].stderr
    sampler = Sampler(shape)
    sampler.start()
    try:
        if shape.name == "mgrs":  # the first manager, the swarm's leader, is down: the work goes to the next one
            leader = shape.exec(2, "docker", "node", "ls", "--filter", "role=manager", "--format",
                                "{{.Hostname}} {{.ManagerStatus}}").stdout.split()
            assert leader[leader.index("Leader") - 1] == "node1", leader  # the lab's swarm was made on node1
            subprocess.run(["docker", "stop", shape.container(1)], check=True, capture_output=True)
            try:
                first = shape.inv("setup")
                down_status = shape.inv("status")  # the swarm as node2 sees it: node1 does not answer
            finally:
                subprocess.run(["docker", "start", shape.container(1)], check=True, capture_output=True)
                lab_mod.up(out=lambda line: None, name=shape.name, **shape.options)  # sshd and dockerd back
            assert first.returncode == 1 and "FAILED node1: preflight: unreachable" in first.stdout, first.stdout
            # read at once, node2's and node3's swarm may have no leader yet (their facts are then read
            # again: assert_a_swarm_without_quorum_stops_setup_before_any_change shows it for certain)
            assert statuses(first.stdout, "deploy") == {"node2": "changed"}, first.stdout
            assert set(statuses(first.stdout, "directories")) == {"node4"}  # registry steps on the worker
            assert down_status.returncode == 1 and "FAILED node1: status: unreachable" in down_status.stdout
            assert "service: running on the labelled node" in down_status.stdout, down_status.stdout
            outputs.append(first)
        dry = shape.inv("--dry", "setup")
        setup = shape.inv("setup")
        outputs += [dry, setup]
        assert setup.returncode == 0, setup.stdout + setup.stderr
        again = shape.inv("setup")
        outputs.append(again)
        assert again.returncode == 0 and changed(again.stdout) == [], again.stdout
        assert set(commands_per_host(again.stdout).values()) == {1}, again.stdout
        smoke = shape.inv("smoke-test")
        outputs += [smoke, shape.inv("status")]
        assert smoke.returncode == 0, smoke.stdout + smoke.stderr
    finally:
        sampler.stop.set()
        sampler.join()
    if shape.options.get("bastion"):
        assert " via root@" in dry.stdout  # --dry shows the route
    markers = {"registry password": shape.password}
    if shape.sudo_password:
        markers["sudo password"] = shape.sudo_password
    text = "\n".join(sampler.seen) + "\n".join(o.stdout + o.stderr for o in outputs)
    assert sampler.samples >= 3
    for what, marker in markers.items():
        assert marker not in text, f"{what} in a process list or an output"
    reg = shape.options.get("registry_node", 1)
    task = shape.exec(reg, "sh", "-c", "docker ps -q --filter label=com.docker.swarm.service.name=onsen-registry_registry"
                      ).stdout.split()
    assert task, "no registry task on the registry node"
    # the files the task sees at /run/secrets (the image has no shell: read them where dockerd mounts them)
    inside = shape.exec(reg, "sh", "-c", f"cat /var/lib/docker/containers/{task[0]}*/mounts/secrets/*")
    assert "BEGIN" in inside.stdout  # the secrets were read
    for i in shape.nodes:
        for what, marker in markers.items():
            found = shape.exec(i, "grep", "-rlF", "--", marker, "/root", "/home", "/tmp", "/etc", "/var/log")
            assert found.stdout.strip() == "", f"{what} on node{i}: {found.stdout}"
            assert marker not in inside.stdout, f"{what} in a swarm secret"
        configs = shape.exec(i, "sh", "-c", "cat /root/.docker/config.json /home/*/.docker/config.json 2>/dev/null")
        assert '"auth"' not in configs.stdout, configs.stdout


def test_what_each_shape_adds(shape, tmp_path):
    """sudo shapes: root holds the credential (the account model); password sudo: a wrong sudo password
    gives one line per host and changes nothing; bastion: no direct route to a node; v6: the
    product's SSH, the swarm and the registry all ran over IPv6."""
    if shape.options.get("user") == "deploy":
        listed = shape.exec(2, "sh", "-c", "HOME=/root docker-credential-pass list")
        assert listed.returncode == 0 and f"{shape.registry_host}:5000" in listed.stdout, listed.stdout + listed.stderr
        assert shape.exec(2, "test", "-e", "/home/deploy/.password-store").returncode != 0
    if shape.options.get("sudo") == "password":
        shape.exec(2, "rm", "-rf", f"/etc/docker/certs.d/{shape.lab.registry_host}:5000")
        env = {**shape.env, "SWARM_REGISTRY_SUDO_PASSWORD": "not-the-sudo-password"}
        r = run("inv", "trust-cert", config=shape.config, env=env)
        failed = [line for line in r.stdout.splitlines() if line.startswith("FAILED ")]
        assert r.returncode == 1 and len(failed) == len(shape.nodes), r.stdout
        assert all("sudo refused the sudo password" in f for f in failed), r.stdout
        assert shape.exec(2, "test", "-e", f"/etc/docker/certs.d/{shape.lab.registry_host}:5000").returncode != 0
        assert shape.inv("trust-cert").returncode == 0  # the right one works
    if shape.options.get("bastion"):
        data = yaml.safe_load(shape.config.read_text())
        data["ssh"]["proxy_jump"] = ""
        direct = tmp_path / "direct.yaml"
        direct.write_text(yaml.safe_dump(data))
        r = shape.inv("trust-cert", config=direct)
        assert r.returncode == 1 and r.stdout.count("FAILED node") == len(shape.nodes), r.stdout
        assert_registry_api_goes_over_ssh(shape, tmp_path)
    if shape.name == "mgrs":
        status = shape.inv("status")
        assert status.returncode == 0 and "running on the labelled node" in status.stdout, status.stdout
        down = shape.inv("teardown")  # waits on the manager for the task on the worker node4
        assert down.returncode == 0, down.stdout
        assert shape.exec(4, "sh", "-c", "docker ps -q --filter label=com.docker.swarm.service.name=onsen-registry_registry"
                          ).stdout.strip() == ""
        assert shape.inv("setup").returncode == 0
        renew = shape.inv("renew-cert")  # a new certificate, rolled out on the worker and checked over TLS
        assert renew.returncode == 0 and list(statuses(renew.stdout, "deploy").values()) == ["changed"], renew.stdout
        assert "running on node4; /v2/ 401 without credentials over verified TLS" in renew.stdout, renew.stdout
        with_alice = tmp_path / "alice.yaml"
        data = yaml.safe_load(shape.config.read_text())
        data["users"] = ["lenain", "alice"]
        with_alice.write_text(yaml.safe_dump(data))
        add = run("inv", "users.add", "alice", "--apply", config=with_alice, env={"REGISTRY_PASSWORD": "alice-pw-1"})
        assert add.returncode == 0, add.stdout + add.stderr
        pulled = shape.exec(3, "sh", "-c", f"echo alice-pw-1 | docker login -u alice --password-stdin "
                                           f"{shape.lab.registry_host}:5000")
        assert pulled.returncode == 0, pulled.stdout + pulled.stderr  # the new user's htpasswd is on node4
        shape.exec(3, "docker", "logout", f"{shape.lab.registry_host}:5000")
        assert shape.inv("setup").returncode == 0  # the lenain login on node3 back in place
        assert_a_swarm_without_quorum_stops_setup_before_any_change(shape)
    if shape.options.get("ipv6"):
        assert_runs_over_ipv6(shape)
    if shape.name in REGISTRY_BY_ADDRESS:
        assert_registry_named_by_its_address(shape)


def assert_a_swarm_without_quorum_stops_setup_before_any_change(shape):
    """2 of the 3 managers stopped: node1's swarm has no leader. Setup reads node1's facts again for its
    60 s, then fails it with the fix and changes nothing. Then status, node1's facts read again while the
    swarm has no leader: the managers are started while it waits, and it sees the service once they have
    elected one (read at once, the first call after the loss of a leader may or may not wait on it)."""
    for i in (2, 3):
        subprocess.run(["docker", "stop", shape.container(i)], check=True, capture_output=True)
    try:
        r = shape.inv("setup")
        assert r.returncode == 1, r.stdout
        failed = [line for line in r.stdout.splitlines() if line.startswith("FAILED node1")]
        assert any("the swarm has no leader after 60 s" in f and "more than half of the managers must be online"
                   in f for f in failed), r.stdout
        assert "stopped before any change" in r.stdout and not changed(r.stdout), r.stdout
        status = subprocess.Popen([str(BIN / "inv"), "status"], cwd=ROOT, stdout=subprocess.PIPE, text=True,
                                  env={**clirun._env(shape.config, shape.env), "PYTHONUNBUFFERED": "1"})
        lines = []
        for line in status.stdout:  # status waits for up to 60 s: the line comes before that
            lines.append(line)
            if line.split()[:3] == ["node1", "status", "waiting"]:
                break
    finally:
        for i in (2, 3):
            subprocess.run(["docker", "start", shape.container(i)], check=True, capture_output=True)
        lab_mod.up(out=lambda line: None, name=shape.name, **shape.options)  # sshd and dockerd back
    out = "".join(lines) + status.communicate(timeout=300)[0]
    assert "the swarm has no leader" in lines[-1], out
    node1 = [line for line in out.splitlines() if line.split()[:3] == ["node1", "status", "ok"]]
    assert node1 and "running on the labelled node" in out, out  # read again once the swarm had a leader


def assert_registry_named_by_its_address(shape):
    """registry.host an IPv4 address: the certificate carries it as an IP SAN, every node trusts
    certs.d/ADDR:5000, and images named ADDR:5000/... are pushed and pulled on every node."""
    addr = shape.registry_host
    ipaddress.ip_address(addr)
    for i in shape.nodes:
        assert shape.exec(i, "test", "-s", f"/etc/docker/certs.d/{addr}:5000/ca.crt").returncode == 0, f"node{i}"
    smoke = shape.inv("smoke-test")  # built, pushed and pulled back on one node, pulled on the others
    assert smoke.returncode == 0 and f"built {addr}:5000/swarm-registry-smoke:" in smoke.stdout, smoke.stdout
    assert len(statuses(smoke.stdout, "pull")) == len(shape.nodes) - 1, smoke.stdout
    sans = shape.exec(2, "sh", "-c", f"echo | openssl s_client -connect {addr}:5000 2>/dev/null | "
                                     "openssl x509 -noout -ext subjectAltName")
    assert f"IP Address:{addr}" in sans.stdout, sans.stdout + sans.stderr


def assert_registry_api_goes_over_ssh(shape, tmp_path):
    """Behind the bastion this machine has no route to the registry's port (the lab drops it); the
    product's API calls went over SSH (setup, smoke-test and status passed above; catalog here), and with
    ssh.forward_registry: never they cannot reach it."""
    data = yaml.safe_load(shape.config.read_text())
    node1 = data["hosts"]["node1"]["address"]
    with pytest.raises(OSError):
        socket.create_connection((node1, 5000), timeout=3).close()
    inside = subprocess.run(["docker", "exec", shape.lab.bastion_name, "curl", "-sk", "-o", "/dev/null", "-w",
                             "%{http_code}", f"https://{node1}:5000/v2/"], capture_output=True, text=True)
    assert inside.stdout == "401", inside.stdout + inside.stderr  # the port answers inside the lab
    listed = shape.inv("catalog")
    assert listed.returncode == 0 and "swarm-registry-smoke" in listed.stdout, listed.stdout + listed.stderr
    data["ssh"]["forward_registry"] = "never"
    never = tmp_path / "never.yaml"
    never.write_text(yaml.safe_dump(data))
    refused = shape.inv("catalog", config=never)
    assert refused.returncode == 1 and "unreachable" in refused.stderr, refused.stdout + refused.stderr


def assert_runs_over_ipv6(shape):
    """The inventory, known_hosts, the swarm, the registry name (nodes and here) and the registry's
    published port are IPv6, and every SSH session the product opened came over IPv6."""
    net = json.loads(subprocess.run(["docker", "network", "inspect", shape.lab.network], capture_output=True,
                                    text=True, check=True).stdout)[0]
    net6 = [ipaddress.ip_network(c["Subnet"]) for c in net["IPAM"]["Config"] if ":" in c["Subnet"]]
    assert net["EnableIPv6"] and len(net6) == 1, net["IPAM"]
    addrs = {h: v["address"] for h, v in yaml.safe_load(shape.config.read_text())["hosts"].items()}
    assert all(ipaddress.ip_address(a) in net6[0] for a in addrs.values()), addrs
    assert {ln.split()[0] for ln in shape.lab.known_hosts.read_text().splitlines()} == set(addrs.values())
    for host, addr in addrs.items():
        seen = shape.exec(1, "docker", "node", "inspect", "-f", "{{.Status.Addr}}", host).stdout.strip()
        assert seen == addr, f"{host} is in the swarm as {seen}"
    manager = shape.exec(1, "docker", "node", "inspect", "-f", "{{.ManagerStatus.Addr}}", "node1").stdout.strip()
    assert manager == f"[{addrs['node1']}]:2377"
    reg, name = addrs["node1"], shape.lab.registry_host
    assert {a[4][0] for a in socket.getaddrinfo(name, 5000, proto=socket.IPPROTO_TCP)} == {reg}
    for i in shape.nodes:
        assert {ln.split()[0] for ln in shape.exec(i, "getent", "ahosts", name).stdout.splitlines()} == {reg}
    # the host-mode published port answers another node over IPv6, TLS verified by name
    curl = shape.exec(2, "curl", "-sS", "-o", "/dev/null", "-w", "%{http_code} %{remote_ip}", "--cacert",
                      f"/etc/docker/certs.d/{name}:5000/ca.crt", f"https://{name}:5000/v2/")
    assert curl.stdout == f"401 {reg}", curl.stdout + curl.stderr
    for i in shape.nodes:
        log = shape.exec(i, "cat", "/var/log/sshd.log").stdout
        peers = {ln.split(" from ")[1].split()[0] for ln in log.splitlines() if "Accepted publickey" in ln}
        assert peers and all(ipaddress.ip_address(p) in net6[0] for p in peers), f"node{i}: {peers}"
