"""Host key verification against `ssh.known_hosts` (Fabric's default accepts any key).

Unknown key: refused, unless `accept_new_host_keys`, which records it (OpenSSH's
accept-new). Changed key: always refused, naming the host and both fingerprints.
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


class VerifyingPolicy(paramiko.MissingHostKeyPolicy):
    """Called by paramiko only for hosts that have no entry in known_hosts."""

    def __init__(self, known_hosts: Path, accept_new: bool):
        self.known_hosts = known_hosts
        self.accept_new = accept_new

    def missing_host_key(self, client, hostname, key):
        if not self.accept_new:
            raise HostKeyError(
                f"unknown host key for {hostname} ({key.get_name()} {fingerprint(key)}): not in "
                f"{self.known_hosts}; add it there after checking it, or set ssh.accept_new_host_keys: true")
        line = f"{hostname} {key.get_name()} {key.get_base64()}\n"
        with _append_lock:
            self.known_hosts.parent.mkdir(parents=True, exist_ok=True)
            with open(self.known_hosts, "a", encoding="utf-8") as fh:
                fh.write(line)
        client.get_host_keys().add(hostname, key.get_name(), key)


def changed_key_message(host: str, exc: paramiko.BadHostKeyException, known_hosts: Path) -> str:
    return (f"host key CHANGED for {host}: known_hosts {known_hosts} has {exc.expected_key.get_name()} "
            f"{fingerprint(exc.expected_key)}, the host offered {exc.key.get_name()} {fingerprint(exc.key)}; "
            "refusing to connect (if the change is expected, remove the old line from known_hosts)")
