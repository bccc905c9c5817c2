"""Named labs in the shapes users have, each a real swarm, beside the default lab.

Two named labs come up once for the module (and go down at its end, unless
SWARM_REGISTRY_KEEP_LAB=1):

* ``t-shapes`` (through the CLI): 4 nodes, managers node1..node3, the registry on node4 (a
  worker), SSH user ``deploy`` whose sudo asks for a password, and a bastion that is the only
  host the nodes' sshd lets in;
* ``t-grow``: 2 nodes, user ``deploy`` with passwordless sudo; grown to 3, then shrunk to 2.

Everything is checked with docker and the OpenSSH client (the lab key, the lab's known_hosts,
StrictHostKeyChecking=yes), not with the product. The default lab is only looked at (docker
inspect), never touched. Needs root and a Docker engine: a missing engine fails, never skips.
"""
from __future__ import annotations

import ipaddress
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from devtools import lab
from devtools.lab import hosts_file
from devtools.lab import settings as S
from tests.conftest import require

pytestmark = pytest.mark.lab

KEEP = os.environ.get("SWARM_REGISTRY_KEEP_LAB") == "1"
SHAPES = S.Lab("t-shapes")
GROW = S.Lab("t-grow")
DEFAULT_NODES = [S.container_name(i) for i in (1, 2, 3)]
TIMES: dict[str, float] = {}


def sh(*argv: str, check: bool = True, timeout: float = 120, input: str | None = None) -> subprocess.CompletedProcess:
    proc = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout, input=input)
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(argv)} -> exit {proc.returncode}: {proc.stderr.strip()}")
    return proc


def _engine() -> None:
    require("docker")
    if sh("docker", "info", check=False, timeout=60).returncode != 0:
        pytest.fail("no Docker engine answers (docker info failed); make test and .ci/run start one")
    if os.geteuid() != 0:
        pytest.fail("the lab needs root")


def _inspect(*names: str) -> dict[str, dict]:
    proc = sh("docker", "inspect", *names, check=False)
    return {o["Name"].lstrip("/"): o for o in json.loads(proc.stdout or "[]")}


def _node_table(L: S.Lab) -> dict[str, tuple[str, str]]:
    rows = sh("docker", "exec", L.container_name(1), "docker", "node", "ls", "--format",
              "{{.Hostname}} {{.Status}} {{.ManagerStatus}}").stdout
    table = {}
    for r in rows.splitlines():
        parts = r.split()
        if parts:
            assert parts[0] not in table, f"two swarm entries for {parts[0]}: {rows}"
            table[parts[0]] = (parts[1], parts[2] if len(parts) > 2 else "")
    return table


class SSH:
    """The OpenSSH client with a lab's key and known_hosts only (copies taken when the lab came up,
    so that another session's down of the default lab, which may remove .lab/, cannot pull them away)."""

    def __init__(self, L: S.Lab, workdir: Path):
        workdir.mkdir(parents=True, exist_ok=True)
        self.key = workdir / "id_ed25519"
        self.known_hosts = workdir / "known_hosts"
        shutil.copyfile(L.key_file, self.key)
        self.key.chmod(0o600)
        shutil.copyfile(L.known_hosts, self.known_hosts)
        self.config = workdir / "ssh_config"
        self.config.write_text(self._config(self.known_hosts))

    def _config(self, known_hosts: Path) -> str:
        # a config file, because `ssh -J` passes -F (not -o) to the ssh it runs for the jump host
        return (f"Host *\n  IdentityFile {self.key}\n  IdentitiesOnly yes\n"
                f"  UserKnownHostsFile {known_hosts}\n  GlobalKnownHostsFile /dev/null\n"
                f"  StrictHostKeyChecking yes\n  BatchMode yes\n  ConnectTimeout 10\n"
                f"  ServerAliveInterval 5\n  ServerAliveCountMax 3\n")

    def run(self, target: str, command: str, *, jump: str | None = None, input: str | None = None,
            config: Path | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
        argv = [require("ssh"), "-F", str(config or self.config)]
        if jump:
            argv += ["-J", jump]
        argv += [target, command]
        return sh(*argv, check=False, timeout=timeout, input=input)


# ---------------------------------------------------------------------------------------
# fixtures


@pytest.fixture(scope="module", autouse=True)
def default_lab_before():
    """The default lab's containers as they are before this module runs (only inspected)."""
    _engine()
    objs = _inspect(*DEFAULT_NODES)
    return {n: o["State"]["Running"] for n, o in objs.items()}, hosts_file.current()


@pytest.fixture(scope="module")
def shapes_lab(default_lab_before, tmp_path_factory):
    argv = [sys.executable, "-m", "devtools.lab", "up", "--name", SHAPES.name, "--nodes", "4",
            "--managers", "3", "--registry-node", "4", "--user", "deploy", "--sudo", "password", "--bastion"]
    t0 = time.monotonic()
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=900, cwd=S.ROOT)
    TIMES["t-shapes up (4 nodes, 3 managers, sudo password, bastion)"] = time.monotonic() - t0
    assert proc.returncode == 0, proc.stdout + proc.stderr
    ssh = SSH(SHAPES, tmp_path_factory.mktemp("t-shapes"))
    password = SHAPES.sudo_password_file.read_text().strip()
    mode = SHAPES.sudo_password_file.stat().st_mode & 0o777
    net = ipaddress.IPv4Network(_network_subnet(SHAPES.network))
    info = {"ssh": ssh, "password": password, "password_mode": mode, "net": net, "stdout": proc.stdout,
            "ips": {i: SHAPES.node_ip(i, net) for i in range(1, 5)}, "bastion": SHAPES.bastion_ip(net)}
    yield info
    if not KEEP:
        sh(sys.executable, "-m", "devtools.lab", "down", "--name", SHAPES.name, timeout=600)


@pytest.fixture(scope="module")
def grow_lab(default_lab_before, tmp_path_factory):
    t0 = time.monotonic()
    path = lab.up(2, out=lambda _l: None, name=GROW.name, user="deploy", sudo="nopasswd")
    TIMES["t-grow up (2 nodes, sudo nopasswd)"] = time.monotonic() - t0
    net = ipaddress.IPv4Network(_network_subnet(GROW.network))
    info = {"path": path, "net": net, "tmp": tmp_path_factory.mktemp("t-grow")}
    yield info
    if not KEEP:
        lab.down(out=lambda _l: None, name=GROW.name)


def _network_subnet(network: str) -> str:
    obj = json.loads(sh("docker", "network", "inspect", network).stdout)[0]
    return obj["IPAM"]["Config"][0]["Subnet"]


def _settings(L: S.Lab) -> dict:
    return yaml.safe_load(L.config_file.read_text())


# ---------------------------------------------------------------------------------------
# sudo shapes


def test_nopasswd_deploy_needs_sudo_for_docker_and_gets_it(grow_lab):
    ssh = SSH(GROW, grow_lab["tmp"] / "ssh")
    ip = GROW.node_ip(1, grow_lab["net"])
    plain = ssh.run(f"deploy@{ip}", "docker info")
    assert plain.returncode != 0
    assert "permission denied" in (plain.stdout + plain.stderr).lower()
    assert ssh.run(f"deploy@{ip}", "id -un").stdout.strip() == "deploy"
    assert "docker" not in ssh.run(f"deploy@{ip}", "id -nG").stdout.split()
    via_sudo = ssh.run(f"deploy@{ip}", "sudo -n docker info --format '{{.Swarm.LocalNodeState}}'")
    assert via_sudo.returncode == 0, via_sudo.stderr
    assert via_sudo.stdout.strip() == "active"
    drop = sh("docker", "exec", GROW.container_name(1), "stat", "-c", "%a %U", "/etc/sudoers.d/deploy").stdout.split()
    assert drop == ["440", "root"]
    rule = sh("docker", "exec", GROW.container_name(1), "cat", "/etc/sudoers.d/deploy").stdout
    assert rule.strip() == "deploy ALL=(ALL) NOPASSWD: ALL"
    data = _settings(GROW)
    assert data["ssh"]["sudo"] is True and "proxy_jump" not in data["ssh"]
    assert {h["user"] for h in data["hosts"].values()} == {"deploy"}
    assert not GROW.sudo_password_file.exists()


def test_password_sudo_asks_every_time_and_takes_the_password_on_stdin(shapes_lab):
    ssh, ips, jump = shapes_lab["ssh"], shapes_lab["ips"], f"root@{shapes_lab['bastion']}"
    assert shapes_lab["password_mode"] == 0o600
    target = f"deploy@{ips[2]}"
    plain = ssh.run(target, "docker info", jump=jump)
    assert plain.returncode != 0 and "permission denied" in (plain.stdout + plain.stderr).lower()
    no_pw = ssh.run(target, "sudo -n docker info --format '{{.ServerVersion}}'", jump=jump)
    assert no_pw.returncode != 0
    assert "a password is required" in no_pw.stderr
    wrong = ssh.run(target, "sudo -S -p PROMPT: true", jump=jump, input="not-the-password\n")
    assert wrong.returncode != 0
    good = ssh.run(target, "sudo -S -p PROMPT: docker info --format '{{.Swarm.LocalNodeState}}' && sudo -n true",
                   jump=jump, input=shapes_lab["password"] + "\n")
    # the first sudo works with the password; the second is asked again (timestamp_timeout=0)
    assert good.stdout.strip() == "active", good.stderr
    assert good.returncode != 0 and "a password is required" in good.stderr
    rule = sh("docker", "exec", SHAPES.container_name(2), "cat", "/etc/sudoers.d/deploy").stdout
    assert "deploy ALL=(ALL) ALL" in rule.splitlines() and "timestamp_timeout=0" in rule
    # a real (hashed) password is set for deploy
    shadow = sh("docker", "exec", SHAPES.container_name(2), "getent", "shadow", "deploy").stdout.split(":")
    assert shadow[1].startswith("$") and shapes_lab["password"] not in shadow[1]


# ---------------------------------------------------------------------------------------
# bastion shape


def test_nodes_only_let_in_the_bastion(shapes_lab):
    ssh, ips, bastion = shapes_lab["ssh"], shapes_lab["ips"], shapes_lab["bastion"]
    assert f"{bastion} ssh-ed25519 " in ssh.known_hosts.read_text()
    for i in range(1, 5):
        direct = ssh.run(f"root@{ips[i]}", "true")
        assert direct.returncode != 0, f"node{i} let in a direct connection"
        assert "permission denied" in direct.stderr.lower(), direct.stderr
        via = ssh.run(f"root@{ips[i]}", "hostname", jump=f"root@{bastion}")
        assert via.returncode == 0, via.stderr
        assert via.stdout.strip() == f"node{i}"
    assert ssh.run(f"deploy@{ips[1]}", "true").returncode != 0
    assert ssh.run(f"root@{bastion}", "hostname").stdout.strip() == "bastion"
    assert ssh.run(f"deploy@{bastion}", "id -un").stdout.strip() == "deploy"


def test_both_hops_are_verified_against_known_hosts(shapes_lab, tmp_path):
    """Strict checking really applies to each hop: without the node's line, the jump works
    but the node is refused; without the bastion's line, the jump itself is refused."""
    ssh, ips, bastion = shapes_lab["ssh"], shapes_lab["ips"], shapes_lab["bastion"]
    lines = ssh.known_hosts.read_text().splitlines()
    only_bastion = tmp_path / "kh-bastion"
    only_bastion.write_text("".join(ln + "\n" for ln in lines if ln.startswith(bastion + " ")))
    only_nodes = tmp_path / "kh-nodes"
    only_nodes.write_text("".join(ln + "\n" for ln in lines if not ln.startswith(bastion + " ")))
    for kh in (only_bastion, only_nodes):
        cfg = tmp_path / f"cfg-{kh.name}"
        cfg.write_text(ssh._config(kh))
        proc = ssh.run(f"root@{ips[1]}", "true", jump=f"root@{bastion}", config=cfg)
        assert proc.returncode != 0
        assert "host key verification failed" in proc.stderr.lower(), proc.stderr


# ---------------------------------------------------------------------------------------
# managers and registry node


def test_three_managers_and_a_worker(shapes_lab):
    table = _node_table(SHAPES)
    assert set(table) == {"node1", "node2", "node3", "node4"}
    assert all(status == "Ready" for status, _ in table.values()), table
    assert sorted(table[h][1] for h in ("node1", "node2", "node3")) == ["Leader", "Reachable", "Reachable"]
    assert table["node4"][1] == ""


def test_shapes_settings_file(shapes_lab):
    ips = shapes_lab["ips"]
    text = SHAPES.config_file.read_text()
    assert SHAPES.config_file == S.ROOT / "config" / "lab-t-shapes.yaml"
    assert text.startswith("# generated by lab.up; removed by lab.down")
    data = yaml.safe_load(text)
    assert data["registry"]["node"] == "node4"
    assert data["registry"]["host"] == "registry.t-shapes.swarm-lab.test"
    assert {h: v["roles"] for h, v in data["hosts"].items()} == {
        "node1": ["manager"], "node2": ["manager"], "node3": ["manager"], "node4": ["worker"]}
    assert {h: v["address"] for h, v in data["hosts"].items()} == {f"node{i}": ips[i] for i in ips}
    assert {v["user"] for v in data["hosts"].values()} == {"deploy"}
    assert data["ssh"]["sudo"] is True
    assert data["ssh"]["proxy_jump"] == f"root@{shapes_lab['bastion']}:22"
    assert data["ssh"]["accept_new_host_keys"] is False
    assert data["ssh"]["identity_file"] == str(SHAPES.key_file)
    assert data["ssh"]["known_hosts"] == str(SHAPES.known_hosts)
    assert data["state_dir"] == str(S.LAB_DIR / "t-shapes" / "state")
    assert (SHAPES.lab_dir.stat().st_mode & 0o777) == 0o700


def test_registry_name_resolves_to_the_registry_node(shapes_lab):
    ips = shapes_lab["ips"]
    host = SHAPES.registry_host
    assert socket.gethostbyname(host) == ips[4]
    for i in range(1, 5):
        out = sh("docker", "exec", SHAPES.container_name(i), "getent", "hosts", host).stdout.split()
        assert out[0] == ips[4], f"node{i}: {out}"
    img = sh("docker", "exec", SHAPES.container_name(4), "docker", "image", "inspect", "--format", "{{.Id}}",
             S.REGISTRY_IMAGE, check=False)
    assert img.returncode == 0 and img.stdout.strip()


def test_named_labs_have_their_own_network_and_hosts_lines(shapes_lab, grow_lab, default_lab_before):
    nets = {L.name: _network_subnet(L.network) for L in (SHAPES, GROW)}
    assert nets[SHAPES.name] != nets[GROW.name]
    assert nets[SHAPES.name] == str(shapes_lab["net"])
    hosts = Path("/etc/hosts").read_text().splitlines()
    assert [ln for ln in hosts if ln.endswith("# swarm-registry-lab:t-shapes")] == [
        f"{shapes_lab['ips'][4]} registry.t-shapes.swarm-lab.test  # swarm-registry-lab:t-shapes"]
    assert len([ln for ln in hosts if ln.endswith("# swarm-registry-lab:t-grow")]) == 1
    _, default_line = default_lab_before
    if default_line:
        assert default_line in hosts
    names = sh("docker", "ps", "--filter", f"label={S.LABEL}={SHAPES.name}", "--format", "{{.Names}}").stdout.split()
    assert sorted(names) == sorted([SHAPES.container_name(i) for i in range(1, 5)] + [SHAPES.bastion_name])
    # nothing of a named lab carries the default lab's label
    assert not [n for n in sh("docker", "ps", "-a", "--filter", f"label={S.LABEL}=1", "--format",
                               "{{.Names}}").stdout.split() if "-t-" in n]


def test_second_up_of_a_named_lab_is_a_quick_no_op(grow_lab):
    before = {n: (o["Id"], o["State"]["StartedAt"]) for n, o in _inspect(GROW.container_name(1),
                                                                      GROW.container_name(2)).items()}
    mtime = GROW.config_file.stat().st_mtime_ns
    lines: list[str] = []
    t0 = time.monotonic()
    lab.up(2, out=lines.append, name=GROW.name, user="deploy", sudo="nopasswd")
    assert time.monotonic() - t0 < 5
    assert len(lines) == 1 and lines[0].startswith("[lab] lab t-grow is up"), lines
    after = {n: (o["Id"], o["State"]["StartedAt"]) for n, o in _inspect(*before).items()}
    assert after == before and GROW.config_file.stat().st_mtime_ns == mtime


# ---------------------------------------------------------------------------------------
# grow and shrink


def test_grow_then_shrink(grow_lab):
    net = grow_lab["net"]
    t0 = time.monotonic()
    lab.up(3, out=lambda _l: None, name=GROW.name, user="deploy", sudo="nopasswd")
    TIMES["t-grow grow 2 -> 3"] = time.monotonic() - t0
    table = _node_table(GROW)
    assert table == {"node1": ("Ready", "Leader"), "node2": ("Ready", ""), "node3": ("Ready", "")}
    data = _settings(GROW)
    assert sorted(data["hosts"]) == ["node1", "node2", "node3"]
    assert data["hosts"]["node3"] == {"address": GROW.node_ip(3, net), "user": "deploy", "port": 22,
                                      "roles": ["worker"]}
    assert len(GROW.known_hosts.read_text().splitlines()) == 3
    # the new node has the shape too: deploy, the lab key, sudo without password, the registry name
    ssh = SSH(GROW, grow_lab["tmp"] / "ssh-3")
    proc = ssh.run(f"deploy@{GROW.node_ip(3, net)}", "sudo -n docker info --format '{{.Swarm.LocalNodeState}}'")
    assert proc.returncode == 0 and proc.stdout.strip() == "active", proc.stderr
    reg = sh("docker", "exec", GROW.container_name(3), "getent", "hosts", GROW.registry_host).stdout.split()
    assert reg[0] == GROW.node_ip(1, net)

    t0 = time.monotonic()
    lab.up(2, out=lambda _l: None, name=GROW.name, user="deploy", sudo="nopasswd")
    TIMES["t-grow shrink 3 -> 2"] = time.monotonic() - t0
    assert _node_table(GROW) == {"node1": ("Ready", "Leader"), "node2": ("Ready", "")}
    data = _settings(GROW)
    assert sorted(data["hosts"]) == ["node1", "node2"]
    assert data["hosts"]["node2"]["roles"] == ["worker"]
    assert len(GROW.known_hosts.read_text().splitlines()) == 2
    assert not _inspect(GROW.container_name(3))
    assert sh("docker", "volume", "inspect", GROW.volume_name(3), check=False).returncode != 0
    # up without a size keeps the shrunk size
    lab.up(out=lambda _l: None, name=GROW.name, user="deploy", sudo="nopasswd")
    assert sorted(_settings(GROW)["hosts"]) == ["node1", "node2"]


def test_down_of_a_named_lab_removes_only_it(grow_lab, shapes_lab):
    if KEEP:
        pytest.skip("SWARM_REGISTRY_KEEP_LAB=1: the labs stay up")
    lab.down(out=lambda _l: None, name=GROW.name)
    assert sh("docker", "ps", "-aq", "--filter", f"label={S.LABEL}={GROW.name}").stdout.strip() == ""
    assert sh("docker", "volume", "ls", "-q", "--filter", f"label={S.LABEL}={GROW.name}").stdout.strip() == ""
    assert sh("docker", "network", "ls", "-q", "--filter", f"name=^{GROW.network}$").stdout.strip() == ""
    assert not GROW.lab_dir.exists() and not GROW.config_file.exists()
    assert not [ln for ln in Path("/etc/hosts").read_text().splitlines() if ln.endswith(GROW.hosts_tag)]
    # the other named lab is still there
    assert all(o["State"]["Running"] for o in _inspect(SHAPES.container_name(1), SHAPES.bastion_name).values())
    assert SHAPES.config_file.exists() and SHAPES.key_file.exists()


# ---------------------------------------------------------------------------------------
# the default lab


def test_default_lab_untouched(default_lab_before, shapes_lab):
    """The default lab, if it exists, still runs: this module only inspected it. (Another session
    may stop, restart or take down the default lab meanwhile: that is its business.)"""
    before, _ = default_lab_before
    now = _inspect(*DEFAULT_NODES)
    for name, obj in now.items():
        assert obj["State"]["Running"], f"{name} of the default lab is not running"
        assert obj["Config"]["Labels"].get(S.LABEL) == "1"
    if before and any(before.values()):
        print(f"default lab: {len(now)} of {len(before)} container(s) still there and running")


def test_report_times(shapes_lab):
    """Not a check: the measured times, shown with -s or -rA."""
    for what, secs in TIMES.items():
        print(f"{what}: {secs:.1f} s")


# ---------------------------------------------------------------------------------------
# the ipv6 shape's wiring (no lab: test_shapes_lab.py runs the product on a v6 lab)


def test_v6_wiring_gives_settings_the_product_takes(tmp_path):
    """An ipv6 lab's /64 comes from its IPv4 /24 (an existing network's is kept), node i is ::(10+i)
    and the bastion ::6; known_hosts names follow OpenSSH; its settings (with a bastion, so the
    ProxyJump form too) load as they are in the product."""
    from devtools.lab import cluster
    from swarm_registry import settings as product

    V6 = S.Lab("v6")
    net = ipaddress.IPv4Network("172.31.197.0/24")
    net6 = S.subnet6(net)
    assert net6 == ipaddress.IPv6Network("fd00:5352:6c61:197::/64")
    assert S.subnet6(net, "fd00:1:2:3::/64") == ipaddress.IPv6Network("fd00:1:2:3::/64")
    ips = {i: V6.node_ip6(i, net6) for i in (1, 2, 3)}
    assert ips == {1: "fd00:5352:6c61:197::11", 2: "fd00:5352:6c61:197::12", 3: "fd00:5352:6c61:197::13"}
    bastion = V6.bastion_ip6(net6)
    assert bastion == "fd00:5352:6c61:197::6"
    assert cluster._ssh_name(ips[1]) == ips[1] and cluster._ssh_name(ips[1], 2222) == f"[{ips[1]}]:2222"
    data = cluster.lab_settings(ips, V6, cluster.Shape(3, bastion=True, ipv6=True), bastion_ip=bastion)
    assert data["ssh"]["proxy_jump"] == f"root@[{bastion}]:22"
    data["state_dir"] = str(tmp_path / "state")
    loaded = product.from_mapping(data, source="lab-v6.yaml")
    assert {h.address for h in loaded.hosts.values()} == set(ips.values())
    assert loaded.registry.host == V6.registry_host  # a name: docker takes no IPv6 literal as a registry
