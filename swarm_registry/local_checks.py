"""Checks of the control machine's own files, before any connection is opened (exit 2)."""
from __future__ import annotations

import os

from .settings import Settings, SettingsError


def ssh_files(settings: Settings) -> None:
    """The identity file must be a readable private key; known_hosts must exist unless accept-new."""
    ssh = settings.ssh
    problems = []
    path = ssh.identity_file
    if not path.is_file():
        problems.append(f"settings ssh.identity_file = {str(path)!r}: no such file; point it at the private key "
                        "used for the hosts")
    elif not os.access(path, os.R_OK):
        problems.append(f"settings ssh.identity_file = {str(path)!r}: not readable by this user")
    else:
        head = path.read_bytes()[:200]
        if b"PRIVATE KEY" not in head:
            problems.append(f"settings ssh.identity_file = {str(path)!r}: not a private key file "
                            "(expected an OpenSSH or PEM private key)")
    if not ssh.known_hosts.is_file() and not ssh.accept_new_host_keys:
        problems.append(f"settings ssh.known_hosts = {str(ssh.known_hosts)!r}: no such file; add the hosts' keys "
                        "there, or set ssh.accept_new_host_keys: true to record them on first contact")
    if problems:
        raise SettingsError(problems)
