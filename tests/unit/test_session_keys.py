"""known_hosts is parsed once per run and shared by the run's sessions (issue 14); its semantics stay
those of hostkeys (accept-new records, @revoked refused, @cert-authority skipped). No SSH: connections
are built but never opened."""
from __future__ import annotations

import base64
import threading
import time

import paramiko
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fabric import Connection

from swarm_registry import settings as s
from swarm_registry.remote import hostkeys
from swarm_registry.remote.executor import OK, Executor
from swarm_registry.remote.hostkeys import HostKeyError, KnownHosts


def new_key() -> tuple[str, paramiko.PKey]:
    """('ssh-ed25519 AAAA...', the paramiko key) of a fresh ed25519 key."""
    line = Ed25519PrivateKey.generate().public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode()
    return line, paramiko.Ed25519Key(data=base64.b64decode(line.split()[1]))


@pytest.fixture
def count_loads(monkeypatch):
    """Counts the parses of known_hosts (calls of hostkeys.load); each parse is slowed down a little so
    that threads starting together would overlap in it."""
    calls = []
    real = hostkeys.load

    def counted(path):
        calls.append(path)
        time.sleep(0.01)
        return real(path)

    monkeypatch.setattr(hostkeys, "load", counted)
    return calls


def cluster(tmp_path, n: int, **ssh) -> s.Settings:
    identity = tmp_path / "id_ed25519"
    identity.write_text("-----BEGIN OPENSSH PRIVATE KEY-----\nnot used: nothing connects\n")
    known = tmp_path / "known_hosts"
    known.write_text("".join(f"10.0.0.{i} {new_key()[0]}\n" for i in range(1, n + 1)))
    hosts = {f"node{i}": {"address": f"10.0.0.{i}", "roles": ["manager" if i == 1 else "worker"]}
             for i in range(1, n + 1)}
    return s.from_mapping({"hosts": hosts, "state_dir": str(tmp_path / "state"), "registry": {"node": "node1"},
                           "ssh": {"identity_file": str(identity), "known_hosts": str(known), "parallel": n, **ssh}})


@pytest.mark.parametrize("jump", [None, "root@bastion.example.org:2222"])
def test_known_hosts_is_parsed_once_for_n_hosts(tmp_path, monkeypatch, count_loads, jump):
    n = 8
    cfg = cluster(tmp_path, n, **({"proxy_jump": jump} if jump else {}))
    if jump:
        with open(cfg.ssh.known_hosts, "a") as fh:
            fh.write(f"[bastion.example.org]:2222 {new_key()[0]}\n")
    monkeypatch.setattr(Connection, "open", lambda self: None)  # built and verified, never opened
    with Executor(cfg, list(cfg.hosts), out=lambda line: None, progress=False) as ex:
        results = ex.step("connect", lambda session: (session.connect(), (OK, "built"))[1])
        assert {r.status for r in results.values()} == {OK}
        assert len(count_loads) == 1, f"known_hosts parsed {len(count_loads)} times for {n} hosts"
        for i, session in enumerate(ex.sessions.values(), 1):
            known = session._conn.client.get_host_keys()
            assert known.lookup(f"10.0.0.{i}") is not None
            assert len(known._entries) == 1  # its own host's key, not the file's n (see the test below)
            assert session.known_hosts is ex.known_hosts
            if jump:
                gateway = session._conn.gateway.client.get_host_keys()
                assert len(gateway._entries) == 1 and gateway.lookup("[bastion.example.org]:2222") is not None
        ex.sessions["node1"]._conn = None
        ex.sessions["node1"].connect()  # a reconnect does not parse again either
        assert len(count_loads) == 1


def test_installs_from_many_threads_parse_once(tmp_path, count_loads):
    line, _ = new_key()
    (tmp_path / "known_hosts").write_text(f"[10.0.0.1]:2222 {line}\n")
    store = KnownHosts(tmp_path / "known_hosts", accept_new=False)
    clients = [paramiko.SSHClient() for _ in range(16)]
    threads = [threading.Thread(target=store.install, args=(c, "10.0.0.1", 2222)) for c in clients]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(count_loads) == 1
    assert all(c.get_host_keys().lookup("[10.0.0.1]:2222") is not None for c in clients)


def test_accept_new_is_recorded_once_and_seen_by_the_other_sessions(tmp_path, count_loads):
    path = tmp_path / "known_hosts"
    path.write_text(f"10.0.0.9 {new_key()[0]}")  # no newline at the end
    store = KnownHosts(path, accept_new=True)
    early, first, later = paramiko.SSHClient(), paramiko.SSHClient(), paramiko.SSHClient()
    store.install(early, "bastion", 2222)  # installed before the key is recorded (a host connecting at the same time)
    store.install(first, "bastion", 2222)
    _, key = new_key()
    first._policy.missing_host_key(first, "[bastion]:2222", key)
    lines = path.read_text().splitlines()
    assert len(lines) == 2 and lines[1] == f"[bastion]:2222 ssh-ed25519 {key.get_base64()}"
    assert first.get_host_keys().lookup("[bastion]:2222")["ssh-ed25519"] == key
    store.install(later, "bastion", 2222)  # a later session knows it without asking the policy
    assert later.get_host_keys().lookup("[bastion]:2222")["ssh-ed25519"] == key
    early._policy.missing_host_key(early, "[bastion]:2222", key)  # the same key again: known, not appended
    assert len(path.read_text().splitlines()) == 2
    assert early.get_host_keys().lookup("[bastion]:2222")["ssh-ed25519"] == key
    racer = paramiko.SSHClient()
    store.install(racer, "bastion", 2222)
    racer.get_host_keys()._entries.clear()  # as if installed before the record: it asks the policy
    with pytest.raises(paramiko.BadHostKeyException):  # another key for the same host: changed, refused
        racer._policy.missing_host_key(racer, "[bastion]:2222", new_key()[1])
    assert len(path.read_text().splitlines()) == 2
    assert len(count_loads) == 1


def test_revoked_and_cert_authority_lines_keep_their_meaning(tmp_path, count_loads):
    good, good_key = new_key()
    bad, bad_key = new_key()
    ca, _ = new_key()
    path = tmp_path / "known_hosts"
    path.write_text(f"10.0.0.1 {good}\n10.0.0.2 {bad}\n@cert-authority *.example.org {ca}\n@revoked * {bad}\n")
    store = KnownHosts(path, accept_new=True)
    client, revoked_host, ca_host = paramiko.SSHClient(), paramiko.SSHClient(), paramiko.SSHClient()
    store.install(client, "10.0.0.1", 22)
    store.install(revoked_host, "10.0.0.2", 22)
    store.install(ca_host, "x.example.org", 22)
    assert client.get_host_keys().lookup("10.0.0.1")["ssh-ed25519"] == good_key
    assert revoked_host.get_host_keys().lookup("10.0.0.2") is None  # its only key is revoked
    assert ca_host.get_host_keys().lookup("x.example.org") is None  # @cert-authority: skipped, not a host key
    with pytest.raises(HostKeyError, match="REVOKED"):  # refused even with accept-new, and not recorded
        client._policy.missing_host_key(client, "10.0.0.2", bad_key)
    assert path.read_text().count(bad.split()[1]) == 2
    strict = KnownHosts(path, accept_new=False)
    other = paramiko.SSHClient()
    strict.install(other, "10.0.0.3", 22)
    with pytest.raises(HostKeyError, match="unknown host key"):
        other._policy.missing_host_key(other, "10.0.0.3", new_key()[1])


def test_a_client_gets_only_its_hosts_entries_plain_or_hashed_in_the_files_order(tmp_path, count_loads):
    """paramiko's lookup reads every entry a client holds (twice per connection): with the whole file in every
    client, a run's lookups grew with the square of its hosts. A client now holds its host's entries only,
    found by name (plain) or by HMAC (hashed, as OpenSSH writes with HashKnownHosts), in the file's order:
    paramiko asks the server for the first entry's key type first."""
    from paramiko.ecdsakey import ECDSAKey

    ecdsa = ECDSAKey.generate()
    hashed = paramiko.HostKeys.hash_host("[10.9.9.9]:2222")
    target_plain, target_key = new_key()
    lines = [f"10.1.{i // 250}.{i % 250} {new_key()[0]}" for i in range(1000)]
    lines.insert(500, f"{hashed} {ecdsa.get_name()} {ecdsa.get_base64()}")  # hashed, first in the file
    lines.append(f"[10.9.9.9]:2222,10.9.9.9 {target_plain}")
    (tmp_path / "known_hosts").write_text("\n".join(lines) + "\n")
    store = KnownHosts(tmp_path / "known_hosts", accept_new=False)

    target, other, port22 = paramiko.SSHClient(), paramiko.SSHClient(), paramiko.SSHClient()
    store.install(target, "10.9.9.9", 2222)
    store.install(other, "10.1.3.7", 22)
    store.install(port22, "10.9.9.9", 22)
    entries = target.get_host_keys()._entries
    assert [e.key.get_name() for e in entries] == ["ecdsa-sha2-nistp256", "ssh-ed25519"]  # 2 of 1002, in order
    assert target.get_host_keys().lookup("[10.9.9.9]:2222")["ssh-ed25519"] == target_key
    assert len(other.get_host_keys()._entries) == 1 and other.get_host_keys().lookup("10.1.3.7") is not None
    assert [e.key.get_name() for e in port22.get_host_keys()._entries] == ["ssh-ed25519"]  # "10.9.9.9" only
    assert hostkeys.key_name("::1", 22) == "::1" and hostkeys.key_name("::1", "2222") == "[::1]:2222"
    assert len(count_loads) == 1


def test_a_hashed_name_without_a_valid_salt_is_skipped_as_openssh_skips_it(tmp_path):
    """paramiko raises on such a line ("Incorrect padding") for whatever host it looks up; OpenSSH skips the
    line. The other lines keep working, a good hashed line among them (the control)."""
    good, good_key = new_key()
    hashed = paramiko.HostKeys.hash_host("10.0.0.2")
    path = tmp_path / "known_hosts"
    bad = ["|1|not base64!|x", "|1|onlysalt", "|1|c2hvcnQ=|x"]  # not base64; no hash field; a 5-byte salt
    path.write_text("".join(f"{name} {new_key()[0]}\n" for name in bad) + f"10.0.0.1 {good}\n{hashed} {good}\n")
    for name in bad:  # what paramiko does with each, looking up any host
        with pytest.raises((ValueError, AssertionError, IndexError)):
            paramiko.HostKeys.hash_host("10.0.0.1", name)
    known, _ = hostkeys.load(path)
    assert len(known._entries) == 2 and known.lookup("10.0.0.1")["ssh-ed25519"] == good_key
    store = KnownHosts(path, accept_new=False)
    plain, by_hash = paramiko.SSHClient(), paramiko.SSHClient()
    store.install(plain, "10.0.0.1", 22)
    store.install(by_hash, "10.0.0.2", 22)
    assert plain.get_host_keys().lookup("10.0.0.1")["ssh-ed25519"] == good_key
    assert by_hash.get_host_keys().lookup("10.0.0.2")["ssh-ed25519"] == good_key
