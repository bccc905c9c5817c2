"""How hosts are reached, on plain sshd hosts (real OpenSSH servers on loopback): IPv6 ([::1]), a
bastion (ProxyJump, its key verified like any other), an OpenSSH client config (Host aliases),
keys from ssh-agent (a passphrase-protected key), and known_hosts as OpenSSH writes it (hashed
names, @cert-authority, @revoked, a last line without newline)."""
import os
import re
import signal
import socket
import subprocess
import threading

import pytest
import yaml

from devtools.sshd_hosts import SshdHosts
from swarm_registry.errors import HostError
from tests.conftest import require
from tests.integration.clirun import run, statuses
from tests.integration.sshdutil import installed

pytestmark = pytest.mark.sshd


def recap_commands(stdout: str) -> dict[str, int]:
    rows = stdout.split("RECAP", 1)[1].splitlines()[2:]
    return {r.split()[0]: int(r.split()[-1]) for r in rows if r.split() and not r.startswith("FAILED")}


def test_ipv6_hosts_on_loopback(tmp_path):
    require("/usr/sbin/sshd")
    with SshdHosts(3, tmp_path / "v6", address="::1") as hosts:
        cfg = hosts.settings_file(registry={"host": "::1"})  # the registry named by an IPv6 address too
        assert "[::1]:" in hosts.known_hosts.read_text()
        first = run("inv", "trust-cert", config=cfg)
        assert first.returncode == 0, first.stdout + first.stderr
        assert statuses(first.stdout, "trust-cert") == {h.name: "changed" for h in hosts.hosts}
        for h in hosts.hosts:  # certs.d/[ADDR]:PORT, as docker names an IPv6 registry
            assert (h.etc_docker / "certs.d" / "[::1]:5000" / "ca.crt").is_file()
        names = run("inv", "certs", config=cfg)
        assert "IP:::1" in names.stdout or "::1" in names.stdout, names.stdout
        again = run("inv", "trust-cert", config=cfg)
        assert statuses(again.stdout, "trust-cert") == {h.name: "ok" for h in hosts.hosts}
        assert recap_commands(again.stdout) == {h.name: 1 for h in hosts.hosts}  # facts only


def test_bastion_route_with_its_key_verified(hosts):
    bastion, targets = hosts.hosts[0], hosts.hosts[1:]
    data = hosts.settings(ssh={"proxy_jump": f"root@127.0.0.1:{bastion.port}"})
    data["hosts"] = {k: v for k, v in data["hosts"].items() if k != bastion.name}
    data["registry"]["node"] = targets[0].name
    data["hosts"][targets[0].name]["roles"] = ["manager"]
    cfg = hosts.workdir / "jump.yaml"
    cfg.write_text(yaml.safe_dump(data))
    dry = run("inv", "--dry", "trust-cert", config=cfg)
    assert dry.returncode == 0 and f"via root@127.0.0.1:{bastion.port}" in dry.stdout, dry.stdout
    before = bastion.sessions_opened()
    r = run("inv", "trust-cert", config=cfg)
    assert r.returncode == 0, r.stdout + r.stderr
    assert all(installed(h).exists() for h in targets) and not installed(bastion).exists()
    assert bastion.sessions_opened() - before >= 1  # every target was reached through the bastion
    # the bastion's key is verified like any other: without it in known_hosts, nothing is reached
    hosts.write_known_hosts(targets)
    refused = run("inv", "trust-cert", config=cfg)
    assert refused.returncode == 1 and f"unknown host key for [127.0.0.1]:{bastion.port}" in refused.stdout, \
        refused.stdout


def test_openssh_client_config_aliases(hosts, tmp_path):
    h = hosts.hosts[0]
    conf = tmp_path / "ssh_config"
    conf.write_text(f"Host web1\n  HostName 127.0.0.1\n  Port {h.port}\n  User root\n"
                    f"  IdentityFile {hosts.client_key}\n")
    data = hosts.settings(ssh={"config_file": str(conf)})
    data["hosts"] = {"web1": {"address": "web1", "roles": ["manager"]}}
    data["registry"]["node"] = "web1"
    cfg = tmp_path / "alias.yaml"
    cfg.write_text(yaml.safe_dump(data))
    r = run("inv", "trust-cert", config=cfg)
    assert r.returncode == 0, r.stdout + r.stderr
    assert statuses(r.stdout, "trust-cert") == {"web1": "changed"} and installed(h).exists()


def test_passphrase_protected_key_through_the_agent(hosts, tmp_path):
    require("ssh-agent")
    key = tmp_path / "protected"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    (hosts.workdir / "authorized_keys").write_text((tmp_path / "protected.pub").read_text())
    agent = subprocess.run(["ssh-agent", "-s"], capture_output=True, text=True, check=True).stdout
    env = dict(re.findall(r"(SSH_AUTH_SOCK|SSH_AGENT_PID)=([^;]+);", agent))
    try:
        assert subprocess.run(["ssh-add", str(key)], env={**os.environ, **env}, capture_output=True).returncode == 0
        subprocess.run(["ssh-keygen", "-q", "-p", "-P", "", "-N", "a passphrase", "-f", str(key)], check=True)
        data = hosts.settings(ssh={"agent": True, "identity_file": str(key)})
        cfg = tmp_path / "agent.yaml"
        cfg.write_text(yaml.safe_dump(data))
        without = run("inv", "trust-cert", config=cfg)  # no agent in the environment: the key cannot be used
        assert without.returncode == 1 and "authentication failed" in without.stdout, without.stdout
        r = run("inv", "trust-cert", config=cfg, env={"SSH_AUTH_SOCK": env["SSH_AUTH_SOCK"]})
        assert r.returncode == 0, r.stdout + r.stderr
        assert all(installed(h).exists() for h in hosts.hosts)
        data["ssh"]["identity_file"] = str(tmp_path / "absent")  # with the agent, the file is optional
        cfg.write_text(yaml.safe_dump(data))
        assert run("inv", "trust-cert", config=cfg, env={"SSH_AUTH_SOCK": env["SSH_AUTH_SOCK"]}).returncode == 0
    finally:
        os.kill(int(env["SSH_AGENT_PID"]), signal.SIGTERM)


def test_known_hosts_as_openssh_writes_it(hosts):
    h1, h2, h3, h4 = hosts.hosts
    subprocess.run(["ssh-keygen", "-q", "-H", "-f", str(hosts.known_hosts)], check=True, capture_output=True)
    lines = hosts.known_hosts.read_text().splitlines()
    assert all(line.startswith("|1|") for line in lines)  # every name hashed
    revoked = h4.host_key_line().split(" ", 1)[1]
    extra = ["@cert-authority *.example.org " + h1.host_key_line().split(" ", 1)[1], f"@revoked * {revoked}"]
    hosts.known_hosts.write_text("\n".join(lines + extra))  # and no newline at the end
    r = run("inv", "trust-cert", config=hosts.settings_file())
    assert r.returncode == 1, r.stdout + r.stderr
    assert statuses(r.stdout, "trust-cert") == {h.name: "changed" for h in (h1, h2, h3)}
    assert "host key REVOKED" in r.stdout and "FAILED h4" in r.stdout and not installed(h4).exists()


def test_accept_new_appends_on_a_line_of_its_own(hosts):
    h1 = hosts.hosts[0]
    hosts.known_hosts.write_text(h1.host_key_line())  # one line, no trailing newline
    r = run("inv", "trust-cert", config=hosts.settings_file(ssh={"accept_new_host_keys": True}))
    assert r.returncode == 0, r.stdout + r.stderr
    lines = hosts.known_hosts.read_text().splitlines()
    assert len(lines) == 4 and all(len(line.split()) == 3 for line in lines), lines
    assert subprocess.run(["ssh-keygen", "-F", f"[127.0.0.1]:{h1.port}", "-f", str(hosts.known_hosts)],
                          capture_output=True).returncode == 0


def _echo_server() -> tuple[socket.socket, int]:
    """A TCP server on 127.0.0.1 that answers each connection with 'echo:' + what it read first."""
    server = socket.create_server(("127.0.0.1", 0))

    def serve():
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            with conn:
                conn.sendall(b"echo:" + conn.recv(100))

    threading.Thread(target=serve, daemon=True).start()
    return server, server.getsockname()[1]


def test_registry_port_forwarded_over_ssh(hosts):
    """ssh.forward_registry: the registry's port is reached over the registry node's SSH connection (like
    ssh -L) while a run lasts; sshd refusing TCP forwarding gives one line with the fix."""
    from swarm_registry import registry_http, settings as S
    from swarm_registry.remote.executor import Executor

    server, port = _echo_server()
    try:
        settings = S.from_mapping(hosts.settings(ssh={"forward_registry": "always"}, registry={"port": port}))
        assert settings.forwards_registry
        with Executor(settings, [], out=lambda line: None) as ex:
            local = ex.forward_registry(settings.registry.host)  # registry.host: the registry node
            assert local != port
            with socket.create_connection(("127.0.0.1", local), timeout=10) as c:
                c.sendall(b"ping")
                assert c.recv(100) == b"echo:ping"
            assert ex.forward_registry(settings.registry_host.address) == local  # one forward per run
        assert registry_http._route is None  # direct again once the run ends
        node = hosts.hosts[0]
        node.stop()
        with open(node.dir / "sshd_config", "a") as fh:
            fh.write("AllowTcpForwarding no\n")
        node.start()
        with Executor(settings, [], out=lambda line: None) as ex:
            with pytest.raises(registry_http.RegistryError, match="sshd refuses to forward to 127.0.0.1:.*"
                               r"AllowTcpForwarding yes\) or set ssh.forward_registry: never"):
                ex.forward_registry(settings.registry.host)
    finally:
        server.close()


def test_connections_do_not_ask_for_a_new_key_at_paramikos_512_mib(hosts, monkeypatch):
    """paramiko's own re-key request (after 512 MiB) can deadlock its transport thread when a channel
    closes meanwhile (paramiko #822: "Key-exchange timed out waiting for key negotiation"). Our sessions
    re-key as OpenSSH's client does (64 GiB): 600 MB through one connection asks for no new key, and with
    paramiko's threshold forced down to 100 KiB a run of commands printing 300 KB each still completes
    (it failed at the second command before)."""
    import logging

    from paramiko.packet import Packetizer

    from swarm_registry import settings as S
    from swarm_registry.commands import Command
    from swarm_registry.remote.session import Session

    settings = S.from_mapping(hosts.settings())
    host = settings.hosts[hosts.hosts[0].name]
    rekeys = []

    class Seen(logging.Handler):
        def emit(self, record):
            if "Rekeying (hit" in record.getMessage():
                rekeys.append(record.getMessage())

    log = logging.getLogger("paramiko.transport")
    handler, level = Seen(), log.level
    log.addHandler(handler)
    log.setLevel(logging.DEBUG)
    try:
        s = Session(host, settings)
        stream = s.reader(Command(("sh", "-c", "head -c 600000000 /dev/zero")))
        got = 0
        while data := stream.read(1 << 20):
            got += len(data)
        assert stream.finish().rc == 0 and got == 600_000_000
        assert s.run(Command(("echo", "next"))).stdout == "next\n"
        s.close()
        assert rekeys == []
        monkeypatch.setattr(Packetizer, "REKEY_BYTES", 100 * 1024)
        s = Session(host, settings)
        for _ in range(10):
            out = s.run(Command(("sh", "-c", "head -c 300000 /dev/zero | base64")))
            assert out.rc == 0 and len(out.stdout) > 300_000
        s.close()
    finally:
        log.removeHandler(handler)
        log.setLevel(level)


def test_forward_registry_auto_follows_a_proxyjump_of_the_openssh_config(hosts, tmp_path):
    """ssh.forward_registry: auto with ssh.config_file: a registry node that ssh_config puts behind a
    ProxyJump gets the registry's port over SSH; one reached directly is connected to directly (None)."""
    from swarm_registry import registry_http, settings as S
    from swarm_registry.remote.executor import Executor

    bastion, target = hosts.hosts[0], hosts.hosts[1]
    key = hosts.client_key
    conf = tmp_path / "ssh_config"
    conf.write_text(f"Host bastion\n  HostName 127.0.0.1\n  Port {bastion.port}\n  User root\n  IdentityFile {key}\n"
                    f"Host web1\n  HostName 127.0.0.1\n  Port {target.port}\n  User root\n  IdentityFile {key}\n"
                    f"  ProxyJump bastion\n"
                    f"Host web2\n  HostName 127.0.0.1\n  Port {target.port}\n  User root\n  IdentityFile {key}\n")
    server, port = _echo_server()
    try:
        for node, forwarded in (("web1", True), ("web2", False)):
            data = hosts.settings(ssh={"config_file": str(conf)}, registry={"port": port, "node": node})
            data["hosts"] = {node: {"address": node, "roles": ["manager"]}}
            settings = S.from_mapping(data)
            assert settings.ssh.forward_registry == "auto" and not settings.forwards_registry
            before = bastion.sessions_opened()
            with Executor(settings, [], out=lambda line: None) as ex:
                assert registry_http._route == ex.forward_registry  # the API asks the run where to connect
                local = ex.forward_registry(settings.registry.host)
                if forwarded:
                    with socket.create_connection(("127.0.0.1", local), timeout=10) as c:
                        c.sendall(b"ping")
                        assert c.recv(100) == b"echo:ping"
                else:
                    assert local is None
            assert (bastion.sessions_opened() > before) == forwarded  # web1 was reached through the bastion
    finally:
        server.close()


def test_sessions_ask_for_aes_gcm_and_still_reach_a_server_without_it(hosts):
    """Our connections ask for AES-GCM first (paramiko's default, aes128-ctr + hmac-sha2-256, MACs each
    packet in a second pass: backup and restore streams were slower for it); an sshd that offers no GCM
    cipher is still reached, with the next cipher of paramiko's list."""
    from swarm_registry import settings as S
    from swarm_registry.commands import Command
    from swarm_registry.remote.session import Session

    settings = S.from_mapping(hosts.settings())
    host = settings.hosts[hosts.hosts[0].name]
    s = Session(host, settings)
    assert s.run(Command(("echo", "gcm"))).stdout == "gcm\n"
    t = s._conn.client.get_transport()
    assert (t.local_cipher, t.remote_cipher) == ("aes128-gcm@openssh.com",) * 2
    s.close()
    node = hosts.hosts[0]
    node.stop()
    with open(node.dir / "sshd_config", "a") as fh:
        fh.write("Ciphers aes256-ctr,aes128-ctr\n")
    node.start()
    s = Session(host, settings)
    assert s.run(Command(("echo", "ctr"))).stdout == "ctr\n"
    t = s._conn.client.get_transport()
    assert (t.local_cipher, t.remote_cipher) == ("aes128-ctr",) * 2
    s.close()


def test_tcp_connections_send_and_acknowledge_at_once(hosts):
    """Our own TCP connections (to a host, to a bastion) go with TCP_NODELAY and prompt ACKs
    (session._PromptAck: without them, Nagle's algorithm and a delayed ACK cost two 40 ms stalls per
    connection, bench/HISTORY.md); a host reached through a bastion is a channel, left as it is."""
    from swarm_registry import settings as S
    from swarm_registry.commands import Command
    from swarm_registry.remote.session import Session, _PromptAck

    settings = S.from_mapping(hosts.settings())
    s = Session(settings.hosts[hosts.hosts[1].name], settings)
    assert s.run(Command(("echo", "direct"))).stdout == "direct\n"
    sock = s._conn.client.get_transport().sock
    assert isinstance(sock, _PromptAck)
    assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 1
    s.close()
    bastion = hosts.hosts[0]
    jumped = S.from_mapping(hosts.settings(ssh={"proxy_jump": f"root@127.0.0.1:{bastion.port}"}))
    s = Session(jumped.hosts[hosts.hosts[1].name], jumped)
    assert s.run(Command(("echo", "jumped"))).stdout == "jumped\n"
    assert not isinstance(s._conn.client.get_transport().sock, _PromptAck)  # a channel of the bastion's
    outer = s._conn.gateway.client.get_transport().sock
    assert isinstance(outer, _PromptAck) and outer.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 1
    s.close()


def test_a_held_shell_runs_the_next_command_and_one_that_died_is_not_used(hosts):
    """Session.run(hold=True), as runs read the facts: the next command (its argv, its stdin) goes through
    that shell, with no session of its own; a failed held command holds nothing; a held shell killed on the
    host meanwhile is not used: the next command opens its own session and succeeds."""
    import time

    from swarm_registry import settings as S
    from swarm_registry.commands import Command
    from swarm_registry.remote.session import Session

    settings = S.from_mapping(hosts.settings())
    node = hosts.hosts[0]
    s = Session(settings.hosts[node.name], settings)
    before = node.commands_started()
    facts = s.run(Command(("sh", "-c", "echo a=1; echo note >&2")), hold=True)
    assert (facts.rc, facts.stdout, facts.stderr) == (0, "a=1\n", "note\n")
    out = s.run(Command(("sh", "-c", 'wc -c; echo "$1"', "x", "two 'quoted' words"), stdin=b"12345"))
    assert (out.rc, out.stdout) == (0, "5\ntwo 'quoted' words\n")
    assert node.commands_started() - before == 1
    failed = s.run(Command(("sh", "-c", "echo x; exit 3")), hold=True)
    assert (failed.rc, failed.stdout) == (3, "x\n")
    assert s.run(Command(("echo", "own"))).stdout == "own\n"
    assert node.commands_started() - before == 3  # the failed one held nothing: "own" had its own session
    assert s.run(Command(("true",)), hold=True).rc == 0
    shells = [int(p) for p in subprocess.run(["pgrep", "-f", "swarm-registry-held-"], capture_output=True,
                                              text=True).stdout.split() if _descends(int(p), node.proc.pid)]
    assert len(shells) == 1  # this host's held shell (a lab's nodes may hold their own)
    os.kill(shells[0], signal.SIGKILL)
    deadline = time.monotonic() + 10
    while not (s._held.closed or s._held.exit_status_ready()):  # paramiko has seen it end
        assert time.monotonic() < deadline
        time.sleep(0.02)
    assert s.run(Command(("echo", "after"))).stdout == "after\n"
    assert node.commands_started() - before == 5
    s.close()


def test_output_after_the_exit_status_is_kept_and_a_process_left_holding_stdout_does_not_hang_the_run(hosts):
    """sshd sends a command's exit status when its shell ends, and what a child still writes comes after it:
    the run keeps that output (it ends at EOF, not at the exit status). A child left holding stdout (no EOF
    for 30 s) ends the run _EOF_GRACE after the exit status, with what came before."""
    import time

    from swarm_registry import settings as S
    from swarm_registry.commands import Command
    from swarm_registry.remote import session as session_mod

    settings = S.from_mapping(hosts.settings())
    s = session_mod.Session(settings.hosts[hosts.hosts[0].name], settings)
    late = s.run(Command(("sh", "-c", "echo early; (sleep 0.5; echo late >&2; echo done) & exit 4")))
    assert (late.rc, late.stdout, late.stderr) == (4, "early\ndone\n", "late\n")
    t0 = time.monotonic()
    held = s.run(Command(("sh", "-c", "echo hi; exec sleep 31.5 & exit 0")))
    took = time.monotonic() - t0
    subprocess.run(["pkill", "-f", "sleep 31.5"], check=False)
    assert (held.rc, held.stdout) == (0, "hi\n")
    assert session_mod._EOF_GRACE <= took < session_mod._EOF_GRACE + 5
    s.close()


def _descends(pid: int, ancestor: int) -> bool:
    """`pid` is `ancestor` or one of its descendants (parent links in /proc)."""
    while pid > 1:
        if pid == ancestor:
            return True
        try:
            with open(f"/proc/{pid}/stat") as fh:
                pid = int(fh.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            return False
    return False


def test_the_docker_fact_comes_from_the_engines_socket_and_from_docker_info_where_sshd_refuses(tmp_path):
    """The docker fact (the preflight's): read from the engine's socket, which the host's sshd opens (no
    command started for it, and the facts command leaves it out), and where sshd refuses that channel
    (AllowStreamLocalForwarding no) or where commands go through sudo (sshd would open the socket as the login
    user, not as root), by `docker info` in the facts command: all read this machine's engine
    (not in a swarm: the preflight says so with the state it read, where an unread fact says docker does not
    answer)."""
    require("/usr/sbin/sshd")
    if subprocess.run(["docker", "info"], capture_output=True).returncode != 0:
        pytest.fail("no Docker engine answers (docker info failed); make test and .ci/run start one")
    state = subprocess.run(["docker", "info", "--format", "{{.Swarm.LocalNodeState}}"], capture_output=True,
                           text=True).stdout.strip()
    require("/usr/bin/sudo")
    for name, options, sudo, from_socket in (("socket", "", False, True),
                                             ("refused", "AllowStreamLocalForwarding no", False, False),
                                             ("sudo", "", True, False)):  # commands through sudo: no socket
        with SshdHosts(2, tmp_path / name, sshd_options=options) as hosts:
            trace, cfg = tmp_path / f"{name}.trace", hosts.settings_file(ssh={"sudo": sudo})
            assert run("inv", "users.add", "lenain", "--password-stdin", config=cfg, input="pw-4c1d9e\n").returncode == 0
            r = run("inv", "setup", "--check", config=cfg,
                    env={"SWARM_REGISTRY_TRACE": str(trace)})
            assert r.returncode == 1, r.stdout + r.stderr
            for h in hosts.hosts:
                assert f"{h.name:<14} preflight" in r.stdout and f"not part of a swarm (state {state})" in r.stdout
                assert h.commands_started() == 1  # the facts command, with or without the docker fact
            sent = trace.read_text().splitlines()
            assert len(sent) == 2 and all("facts.sh> facts='" in line for line in sent), sent
            assert all(("facts='docker " in line) != from_socket for line in sent), (name, sent)


def test_an_idle_connection_wakes_its_transport_thread_about_once_a_second_and_close_does_not_wait_for_it(hosts, monkeypatch):
    """paramiko's transport thread reads with a timeout and checks its deadlines on each one: 0.1 s by default,
    10 wake-ups a second per idle connection (at N=128, 44 ms of the client's CPU a second). Ours: about one.
    close() returns at once; the thread ends at its next tick."""
    import time

    from swarm_registry import settings as S
    from swarm_registry.commands import Command
    from swarm_registry.remote import session as session_mod

    settings = S.from_mapping(hosts.settings())
    s = session_mod.Session(settings.hosts[hosts.hosts[0].name], settings)
    assert s.run(Command(("echo", "ok"))).stdout == "ok\n"
    transport = s._conn.client.get_transport()
    reads = []
    recv = session_mod._PromptAck.recv

    def counted(self, n):
        if self is transport.sock:  # this connection's (other tests' transports may still be winding down)
            reads.append(time.monotonic())
        return recv(self, n)

    monkeypatch.setattr(session_mod._PromptAck, "recv", counted)
    time.sleep(3.0)  # idle: the only reads are the thread's timeouts
    assert 1 <= len(reads) <= 5, f"{len(reads)} reads in 3 s of idle"
    t0 = time.monotonic()
    s.close()
    assert time.monotonic() - t0 < 0.5
    transport.join(3)
    assert not transport.is_alive()


def test_a_connection_starts_no_thread_for_its_handshake_deadline_and_the_deadline_still_holds(hosts, monkeypatch):
    """remote.session._Packetizer: paramiko starts a threading.Timer for every connection's handshake deadline
    (a second thread per host beside the transport's). Ours keeps it as a time, checked before each read: a
    connection starts its transport's thread and nothing else, and a server that sends its version line and
    then nothing is still given up after transport.handshake_timeout."""
    import socket
    import threading
    import time

    import paramiko

    from swarm_registry import settings as S
    from swarm_registry.commands import Command
    from swarm_registry.remote import session as session_mod

    started = []
    start = threading.Thread.start

    def counted(self):
        started.append(type(self).__name__)
        return start(self)

    monkeypatch.setattr(threading.Thread, "start", counted)
    settings = S.from_mapping(hosts.settings())
    s = session_mod.Session(settings.hosts[hosts.hosts[0].name], settings)
    try:
        assert s.run(Command(("echo", "ok"))).stdout == "ok\n"
    finally:
        s.close()
    assert started == ["_Transport"], started

    # a server that answers the TCP connection and its version line, then stays silent
    server = socket.create_server(("127.0.0.1", 0))
    held = []

    def greet():
        conn, _ = server.accept()
        held.append(conn)
        conn.sendall(b"SSH-2.0-OpenSSH_9.2p1 silent\r\n")

    threading.Thread(target=greet, daemon=True).start()
    sock = socket.create_connection(server.getsockname(), timeout=5)
    transport = session_mod._Transport(sock)
    transport.handshake_timeout = 1.5
    t0 = time.monotonic()
    try:
        with pytest.raises((paramiko.SSHException, EOFError)):  # (paramiko returns quietly at its own timeout)
            transport.start_client(timeout=20)
        elapsed = time.monotonic() - t0
        assert 1.4 < elapsed < 4.0, f"given up after {elapsed:.1f} s (handshake_timeout 1.5 s, a 1 s tick)"
        assert not transport.is_active()
    finally:
        transport.close()
        server.close()
        for c in held:
            c.close()


def test_connections_share_the_runs_fabric_config_without_a_clone_and_never_write_into_it(hosts, monkeypatch):
    """remote.session._Connection: every connection of a run reads one Fabric config (no clone per host), and
    setting a connection's attributes (Fabric sets `inline_ssh_env`, a config key, in every __init__) leaves
    that config untouched, so sessions built at once on many threads each reach their own host. With Fabric's
    Connection and the shared config, the config is modified; with the clone of before, one clone per host."""
    from concurrent.futures import ThreadPoolExecutor

    import fabric

    from swarm_registry import settings as S
    from swarm_registry.commands import Command
    from swarm_registry.remote import session as session_mod

    clones = []
    clone = fabric.Config.clone

    def counted(self, *args, **kwargs):
        clones.append(self)
        return clone(self, *args, **kwargs)

    monkeypatch.setattr(fabric.Config, "clone", counted)
    settings = S.from_mapping(hosts.settings())
    shared = session_mod._fabric_config(None)
    sessions = [session_mod.Session(settings.hosts[h.name], settings) for h in hosts.hosts for _ in range(4)]

    def where(s):  # the port the command's sshd listens on: the host this session reached
        return s.run(Command(("sh", "-c", 'echo "${SSH_CONNECTION##* }"'))).stdout.strip()

    try:
        with ThreadPoolExecutor(len(sessions)) as pool:
            reached = list(pool.map(where, sessions))
        assert reached == [str(s.host.port) for s in sessions]  # 16 sessions at once, each on its own host
        assert all(s._conn.config is shared for s in sessions)
        assert all(s._conn.inline_ssh_env is True for s in sessions)  # Fabric's value, read back from the connection
    finally:
        for s in sessions:
            s.close()
    assert clones == []
    assert dict(shared._modifications) == {}, shared._modifications
    # control: Fabric's own Connection on that config writes into it (why each connection had its own clone)
    probe = fabric.Config(overrides={"load_ssh_configs": False})
    fabric.Connection("127.0.0.1", config=probe)
    assert dict(probe._modifications) == {"inline_ssh_env": True}


def test_a_run_dials_its_first_hosts_before_paramiko_is_imported_and_their_sessions_use_those_sockets(hosts):
    """remote/dial.py: a fan-out begins the TCP connections of its first ssh.parallel hosts before it imports
    paramiko, so sshd's own start-up for each (fork, re-exec, host keys: ~6 ms of its CPU) overlaps that
    import. Each session then hands its socket to paramiko. Where the settings alone do not say where a host
    is (a name to look up, a proxy jump, an ssh_config), nothing is dialled early; a socket never taken is
    closed with the executor."""
    import select

    from swarm_registry import settings as S
    from swarm_registry.commands import Command
    from swarm_registry.remote import dial
    from swarm_registry.remote.executor import Executor
    from swarm_registry.remote.session import Session

    names = [h.name for h in hosts.hosts]
    settings = S.from_mapping(hosts.settings(ssh={"parallel": 2}))
    assert dial.start(settings, names) == 2  # the first ssh.parallel hosts only
    early = {key[0]: sock for key, (sock, _) in dial._PENDING.items()}
    assert sorted(early) == names[:2]
    # sshd accepted each and greets it with its version line before any session exists
    for sock in early.values():
        assert select.select([sock], [], [], 5)[0], "no greeting from sshd on an early connection"
        assert sock.recv(4, socket.MSG_PEEK) == b"SSH-"
    s = Session(settings.hosts[names[0]], settings)
    assert s.run(Command(("echo", "early"))).stdout == "early\n"
    assert s._conn.client.get_transport().sock._sock is early[names[0]]  # the very socket dialled early
    s.close()
    Executor(settings, names[2:]).close()  # another executor's hosts: not its socket to close
    assert early[names[1]].fileno() != -1 and len(dial._PENDING) == 1
    Executor(settings, names[:2]).close()  # the one never taken is closed with its executor
    assert not dial._PENDING and early[names[1]].fileno() == -1

    # nothing early where the settings alone do not say where the host is
    named = hosts.settings()
    named["hosts"][names[0]]["address"] = "localhost"
    assert dial.start(S.from_mapping(named), names[:1]) == 0
    jumped = S.from_mapping(hosts.settings(ssh={"proxy_jump": f"root@127.0.0.1:{hosts.hosts[0].port}"}))
    assert dial.start(jumped, names) == 0
    config = hosts.workdir / "ssh_config"
    config.write_text("Host *\n  ServerAliveInterval 30\n")
    assert dial.start(S.from_mapping(hosts.settings(ssh={"config_file": str(config)})), names) == 0
    assert not dial._PENDING

    # a host that refuses: the same error as a session that dials on its own
    down = hosts.hosts[3]
    down.stop()
    plain = S.from_mapping(hosts.settings())
    errors = []
    for early_dial in (False, True):
        if early_dial:
            dial.start(plain, [down.name])
        s = Session(plain.hosts[down.name], plain)
        with pytest.raises(HostError) as exc:
            s.connect()
        errors.append(str(exc.value))
        dial.discard([down.name])
    assert errors[0] == errors[1] and "unreachable" in errors[0]


def test_an_early_dial_that_gets_no_answer_times_out_as_a_session_would(hosts):
    """A host whose TCP connect is never answered: the session fails after ssh.connect_timeout, counted from
    the early dial, with the message of paramiko's own timeout (not twice the wait)."""
    import time

    from swarm_registry import settings as S
    from swarm_registry.remote import dial
    from swarm_registry.remote.session import Session

    # a listener that never accepts, its queue full: Linux then drops further SYNs (no answer at all)
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(0)
    port = silent.getsockname()[1]
    fillers = []
    for _ in range(4):
        f = socket.socket()
        f.setblocking(False)
        f.connect_ex(("127.0.0.1", port))
        fillers.append(f)
    data = hosts.settings(ssh={"connect_timeout": 1})
    name = hosts.hosts[0].name
    data["hosts"][name]["port"] = port
    settings = S.from_mapping(data)
    try:
        for early_dial in (True, False):  # the same outcome as paramiko's own connect (the control)
            if early_dial:
                assert dial.start(settings, [name]) == 1
            t0 = time.monotonic()
            with pytest.raises(HostError) as exc:
                Session(settings.hosts[name], settings).connect()
            took = time.monotonic() - t0
            assert str(exc.value) == f"unreachable: root@127.0.0.1:{port} did not answer within 1s"
            assert 0.5 < took < 1.5, (early_dial, took)
    finally:
        dial.discard([name])
        for f in fillers:
            f.close()
        silent.close()


WATCH_PARAMIKO = """
import sys
class Watch:  # notes how many hosts were dialled when paramiko is first looked for
    def find_spec(self, name, path=None, target=None):
        if name == "paramiko" and not hasattr(self, "seen"):
            self.seen = True
            dial = sys.modules.get("swarm_registry.remote.dial")
            print("dialled before paramiko:", len(dial._PENDING) if dial else 0, file=sys.stderr)
        return None
sys.meta_path.insert(0, Watch())
sys.argv = ["inv", "trust-cert"]
from invoke.main import program
program.run()
"""


def test_inv_trust_cert_dials_every_host_before_it_imports_paramiko(hosts, tmp_path):
    """The product's path (`inv trust-cert` -> jobs.runner.run_plan): the hosts' TCP connections are under way
    before paramiko is imported, and the run still changes every host."""
    import sys

    from tests.integration.clirun import ROOT, _env

    config = hosts.settings_file()
    assert run("inv", "certs", config=config).returncode == 0
    r = subprocess.run([sys.executable, "-c", WATCH_PARAMIKO], cwd=ROOT, env=_env(config, None),
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "dialled before paramiko: 4" in r.stderr
    assert set(statuses(r.stdout, "trust-cert").values()) == {"changed"}


def test_a_run_whose_executor_cannot_be_built_closes_what_it_dialled(hosts, monkeypatch):
    """run_plan dials before it builds the executor; if building fails, the early sockets are closed then
    (the executor's close would not run). Control: the same run with a working executor connects."""
    from swarm_registry import settings as S
    from swarm_registry.jobs import runner
    from swarm_registry.remote import dial, executor as executor_mod
    from swarm_registry.results import OK

    settings = S.from_mapping(hosts.settings())
    names = [h.name for h in hosts.hosts]
    job = runner.Job("facts", lambda host: ("trust",), lambda host, f: (OK, "read"), lambda found, usable: [])
    opened = []
    start = dial.start

    def noted(s, h):
        begun = start(s, h)
        opened.extend(sock for sock, _ in dial._PENDING.values())
        return begun

    monkeypatch.setattr(dial, "start", noted)
    lines = []
    assert runner.run_plan(settings, names, job, lines.append) == 0  # control: dials, connects, reads
    assert len(opened) == len(names) and "RECAP" in "\n".join(lines) and not dial._PENDING

    def broken(self, *args, **kwargs):
        raise RuntimeError("no executor")

    monkeypatch.setattr(executor_mod.Executor, "__init__", broken)
    opened.clear()
    with pytest.raises(RuntimeError):
        runner.run_plan(settings, names, job, lines.append)
    assert len(opened) == len(names) and all(sock.fileno() == -1 for sock in opened)
    assert not dial._PENDING
