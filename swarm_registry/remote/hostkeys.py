"""Host key verification against `ssh.known_hosts` (Fabric's default accepts any key).

known_hosts is read as OpenSSH reads it: hashed names and `[host]:port` (paramiko's own
parser), `@revoked` keys refused wherever they are offered, `@cert-authority` lines skipped
(host certificates are not used here) rather than a crash, a hashed name without a valid salt
skipped as OpenSSH skips it. Unknown key: refused, unless
`accept_new_host_keys`, which records it (OpenSSH's accept-new). Changed key: always refused,
naming the host and both fingerprints. A bastion's key is checked the same way.

`KnownHosts` is one run's view of the file: parsed once, on the first connection, and shared by
every session of the run (the executor makes one); a key recorded by accept-new goes to the file
and into that view, so later connections of the run (other hosts behind the same bastion, a
reconnect) see it instead of appending it again. Each connection's client gets only the entries for
the name paramiko looks its host up by: paramiko's lookup reads every entry it holds, twice per
connection, which made a run's lookups grow with the square of its hosts.
"""
from __future__ import annotations

import base64
import hashlib
import threading
from pathlib import Path

import paramiko

_append_lock = threading.Lock()


class HostKeyError(Exception):
    """The host's key is unknown or has changed; nothing was sent to it."""


def fingerprint(key: paramiko.PKey) -> str:
    """OpenSSH-style SHA256 fingerprint."""
    digest = hashlib.sha256(key.asbytes()).digest()
    return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")


def load(path: Path) -> tuple[paramiko.HostKeys, set[tuple[str, str]]]:
    """(known keys, revoked (type, base64) pairs) of a known_hosts file; revoked keys are never known."""
    known, revoked = paramiko.HostKeys(), set()
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return known, revoked
    entries = []
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        marker = ""
        if line.startswith("@"):
            marker, _, line = line.partition(" ")
            line = line.strip()
        if marker == "@cert-authority":
            continue
        try:
            entry = paramiko.hostkeys.HostKeyEntry.from_line(line, lineno)
        except (paramiko.hostkeys.InvalidHostKey, ValueError):
            entry = None  # a line OpenSSH would also skip
        if entry is None or not _salts_decode(entry):
            continue
        if marker == "@revoked":
            revoked.add((entry.key.get_name(), entry.key.get_base64()))
        elif not marker:
            entries.append(entry)
    for entry in entries:
        if (entry.key.get_name(), entry.key.get_base64()) not in revoked:
            known._entries.append(entry)
    return known, revoked


def _salts_decode(entry: paramiko.hostkeys.HostKeyEntry) -> bool:
    """Whether every hashed name of `entry` (|1|SALT|HASH) has a SALT of 20 bytes in base64, as OpenSSH
    requires: it skips a line without one. paramiko fails on such a line ("Incorrect padding", or an
    assertion) whatever host it looks up, so one damaged line would have refused every host."""
    for h in entry.hostnames:
        if h.startswith("|1|"):
            parts = h.split("|")
            try:
                salt = base64.b64decode(parts[2], validate=True) if len(parts) == 4 else b""
            except ValueError:  # binascii.Error
                salt = b""
            if len(salt) != hashlib.sha1().digest_size:
                return False
    return True


def _append(known_hosts: Path, hostname: str, key: paramiko.PKey) -> None:
    line = f"{hostname} {key.get_name()} {key.get_base64()}\n"
    with _append_lock:
        known_hosts.parent.mkdir(parents=True, exist_ok=True)
        with open(known_hosts, "a+b") as fh:
            fh.seek(0, 2)
            if fh.tell():  # a last line without its newline must not swallow ours
                fh.seek(-1, 2)
                if fh.read(1) != b"\n":
                    fh.write(b"\n")
            fh.write(line.encode())


def key_name(host: str, port: int | str) -> str:
    """The name paramiko's SSHClient.connect looks a server's key up by: HOST on port 22, else [HOST]:PORT."""
    return host if int(port) == 22 else f"[{host}]:{port}"


class KnownHosts:
    """One run's known_hosts, parsed once (on first use) and shared by the sessions of the run; thread-safe.

    `install(client, host, port)` gives a paramiko client the known (unrevoked) keys for that host and the
    verifying policy; a key that accept-new records is appended to the file and added here, so every later
    `install` has it. Plain names are indexed; hashed ones are matched per host by paramiko's own matching
    (an HMAC each, as OpenSSH does)."""

    def __init__(self, path: Path, accept_new: bool):
        self.path = path
        self.accept_new = accept_new
        self._lock = threading.Lock()
        self._keys: paramiko.HostKeys | None = None
        self._revoked: set[tuple[str, str]] = set()
        self._by_name: dict[str, list[tuple[int, paramiko.hostkeys.HostKeyEntry]]] = {}
        self._hashed: list[tuple[int, paramiko.hostkeys.HostKeyEntry]] = []

    def _loaded(self) -> paramiko.HostKeys:
        """The parsed file (parsed and indexed here the first time); call with self._lock held."""
        if self._keys is None:
            self._keys, self._revoked = load(self.path)
            for at, entry in enumerate(self._keys._entries):
                self._index(at, entry)
        return self._keys

    def _index(self, at: int, entry: paramiko.hostkeys.HostKeyEntry) -> None:
        """`entry`, at position `at` of the view: a client's entries keep that order (paramiko asks for the
        first match's key type first)."""
        names = dict.fromkeys(entry.hostnames)
        if any(h.startswith("|1|") for h in names):
            self._hashed.append((at, entry))
        for h in names:
            if not h.startswith("|1|"):
                self._by_name.setdefault(h, []).append((at, entry))

    def install(self, client: paramiko.SSHClient, host: str, port: int | str) -> None:
        name = key_name(host, port)
        with self._lock:
            keys = self._loaded()
            found = dict(self._by_name.get(name, ()))
            hashed = list(self._hashed)  # a snapshot: this client's list is its own
            revoked = self._revoked
        for at, entry in hashed:
            if at not in found and keys._hostname_matches(name, entry):  # paramiko's lookup rule
                found[at] = entry
        client.get_host_keys()._entries.extend(found[at] for at in sorted(found))
        client.set_missing_host_key_policy(VerifyingPolicy(self.path, self.accept_new, revoked, store=self))

    def record(self, client: paramiko.SSHClient, hostname: str, key: paramiko.PKey) -> None:
        """accept-new: `key` (not in this client's snapshot) becomes known. If another session recorded a
        key for `hostname` since that snapshot, the same key is taken as is (no second line), a different
        one is refused as a changed key."""
        with self._lock:
            found = self._loaded().lookup(hostname)
            if found:
                current = list(found.values())
                if key not in current:
                    raise paramiko.BadHostKeyException(hostname, key, current[0])
            else:
                _append(self.path, hostname, key)
                entry = paramiko.hostkeys.HostKeyEntry([hostname], key)
                self._index(len(self._keys._entries), entry)
                self._keys._entries.append(entry)
        client.get_host_keys()._entries.append(paramiko.hostkeys.HostKeyEntry([hostname], key))


class VerifyingPolicy(paramiko.MissingHostKeyPolicy):
    """Called by paramiko only for hosts that have no (unrevoked) entry in known_hosts."""

    def __init__(self, known_hosts: Path, accept_new: bool, revoked: set | None = None,
                 store: KnownHosts | None = None):
        """store: the run's KnownHosts, which records accepted keys (None: append to the file only)."""
        self.known_hosts = known_hosts
        self.accept_new = accept_new
        self.revoked = revoked or set()
        self.store = store

    def missing_host_key(self, client, hostname, key):
        if (key.get_name(), key.get_base64()) in self.revoked:
            raise HostKeyError(f"host key REVOKED for {hostname} ({key.get_name()} {fingerprint(key)}): marked "
                               f"@revoked in {self.known_hosts}; refusing to connect")
        if not self.accept_new:
            raise HostKeyError(
                f"unknown host key for {hostname} ({key.get_name()} {fingerprint(key)}): not in "
                f"{self.known_hosts}; add it there after checking it, or set ssh.accept_new_host_keys: true")
        if self.store is not None:
            self.store.record(client, hostname, key)
            return
        _append(self.known_hosts, hostname, key)
        client.get_host_keys().add(hostname, key.get_name(), key)


def changed_key_message(host: str, exc: paramiko.BadHostKeyException, known_hosts: Path) -> str:
    return (f"host key CHANGED for {host}: known_hosts {known_hosts} has {exc.expected_key.get_name()} "
            f"{fingerprint(exc.expected_key)}, the host offered {exc.key.get_name()} {fingerprint(exc.key)}; "
            "refusing to connect (if the change is expected, remove the old line from known_hosts)")
