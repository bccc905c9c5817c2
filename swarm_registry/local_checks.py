"""Checks of the control machine's own files, before any connection is opened (exit 2)."""
from __future__ import annotations

import os

from .settings import Settings, SettingsError


def ssh_files(settings: Settings) -> None:
    """The identity file must be a readable private key (optional with ssh.agent); known_hosts must exist
    unless accept-new; ssh.config_file must exist when set."""
    ssh = settings.ssh
    problems = []
    path = ssh.identity_file
    if ssh.agent and not path.exists():
        pass  # keys come from ssh-agent
    elif not path.is_file():
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
    if ssh.config_file is not None and not ssh.config_file.is_file():
        problems.append(f"settings ssh.config_file = {str(ssh.config_file)!r}: no such file; point it at an OpenSSH "
                        "client config, or remove the key")
    if problems:
        raise SettingsError(problems)
