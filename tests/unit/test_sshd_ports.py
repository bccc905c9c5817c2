"""The sshd test hosts (devtools/sshd_hosts.py, issue 14): N hosts get N distinct ports; a start cut short stops them.

Binding port 0 and letting it go host after host gave two hosts the same port at N >= 64 (the bench
saw it); free_ports holds every socket until all are picked. Pure: loopback sockets only, no sshd."""
from __future__ import annotations

import socket
import subprocess
import time

import pytest

from devtools import sshd_hosts
from devtools.sshd_hosts import SshdHost, SshdHosts, free_ports


def test_free_ports_are_distinct_and_bindable():
    ports = free_ports(512)
    assert len(set(ports)) == 512
    held = []
    try:
        for port in ports[:64]:  # free once picked: each can be bound (what sshd does next)
            sock = socket.socket()
            held.append(sock)
            sock.bind(("127.0.0.1", port))
    finally:
        for sock in held:
            sock.close()


def test_ipv6_loopback():
    if not socket.has_ipv6:
        pytest.skip("no IPv6 on this machine")
    try:
        ports = free_ports(16, "::1")
    except OSError as exc:
        pytest.skip(f"::1 not usable here: {exc}")
    assert len(set(ports)) == 16


@pytest.mark.parametrize("n", [64, 128, 512])
def test_sshd_hosts_get_distinct_ports(tmp_path, n):
    # 512 hosts by the old allocator: about 4.6 clashes expected (birthday bound over ~28k ephemeral ports)
    hosts = SshdHosts(n, tmp_path / "hosts")  # ports are assigned here; no sshd is started
    assert len({h.port for h in hosts.hosts}) == n


def test_a_port_taken_before_sshd_binds_it_moves_the_host(tmp_path, monkeypatch):
    """The window left: another process binds the port between the pick and sshd's bind. SshdHosts moves
    that host to a new port, rewrites its config and starts it again (sshd replaced by a stand-in here)."""
    hosts = SshdHosts(3, tmp_path / "hosts")
    victim = hosts.hosts[1]
    taken_port = victim.port
    tries = []

    def start(self):
        tries.append(self.port)
        if self.port == taken_port:
            raise sshd_hosts.PortTaken(f"port {self.port} taken")

    monkeypatch.setattr(SshdHost, "start", start)
    victim.dir.mkdir()
    hosts._start(victim)
    assert tries[0] == taken_port and victim.port == tries[-1] != taken_port
    assert len({h.port for h in hosts.hosts}) == 3
    assert f"Port {victim.port}\n" in (victim.dir / "sshd_config").read_text()


def test_sshd_exiting_at_start_is_reported_at_once():
    """An sshd that exited (e.g. could not bind) is seen at once, not waited out for the banner timeout."""
    exited = subprocess.Popen(["sh", "-c", "exit 255"])
    exited.wait()
    t0 = time.monotonic()
    with pytest.raises(sshd_hosts.SshdExited, match="status 255"):
        sshd_hosts.wait_for_banner(free_ports(1)[0], timeout=10, proc=exited)
    assert time.monotonic() - t0 < 1


def test_an_interrupted_start_stops_the_hosts_already_started(tmp_path, monkeypatch):
    """A start interrupted half-way (Ctrl-C, a SIGTERM handler's exception, a host that will not start) leaves
    no process behind: `with` does not call __exit__ when __enter__ raises, so __enter__ stops what it
    started (stand-ins for sshd here, each in its own session as sshd is)."""
    hosts = SshdHosts(3, tmp_path / "hosts")
    started = []

    def start(self):
        if self is hosts.hosts[2]:
            raise KeyboardInterrupt
        self.proc = subprocess.Popen(["sleep", "60"], start_new_session=True)
        started.append(self.proc)

    monkeypatch.setattr(SshdHost, "start", start)
    with pytest.raises(KeyboardInterrupt):
        with hosts:
            pytest.fail("the body must not run")
    assert len(started) == 2 and all(p.poll() is not None for p in started)
    assert all(h.proc is None for h in hosts.hosts)
