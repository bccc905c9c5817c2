"""One SSH connection per host, opened once and reused for every command of a run.

Fabric's `Connection` opens and authenticates the connection; commands run on raw
session channels of its transport, so stdin and stdout are bytes (binary-safe, e.g. for
`docker save | docker load`) and no per-command reader threads are started.
"""
from __future__ import annotations

import os
import select
import threading
import socket
import time
from typing import Callable

import paramiko
from fabric import Config, Connection

from ..commands import Command, as_run
from ..errors import HostError, Output
from ..settings import Host, Settings
from .hostkeys import HostKeyError, VerifyingPolicy, changed_key_message

_CONFIG = None
_TRACE_LOCK = threading.Lock()


def _fabric_config() -> Config:
    global _CONFIG
    if _CONFIG is None:  # built once: no ssh_config files, nothing implicit
        _CONFIG = Config(overrides={"load_ssh_configs": False})
    return _CONFIG


class Session:
    def __init__(self, host: Host, settings: Settings, *, sudo_password: str | None = None,
                 on_command: Callable[[str], None] | None = None):
        self.host = host
        self.settings = settings
        self.sudo_password = sudo_password
        self.on_command = on_command
        self._conn: Connection | None = None

    def connect(self) -> None:
        if self._conn is not None and self._conn.is_connected:
            return
        ssh = self.settings.ssh
        conn = Connection(self.host.address, user=self.host.user, port=self.host.port, config=_fabric_config(),
                          connect_timeout=ssh.connect_timeout,
                          connect_kwargs={"key_filename": [str(ssh.identity_file)], "look_for_keys": False,
                                          "allow_agent": False, "banner_timeout": ssh.connect_timeout,
                                          "auth_timeout": ssh.connect_timeout})
        if ssh.known_hosts.exists():
            conn.client.load_host_keys(str(ssh.known_hosts))
        conn.client.set_missing_host_key_policy(VerifyingPolicy(ssh.known_hosts, ssh.accept_new_host_keys))
        where = f"{self.host.user}@{self.host.address}:{self.host.port}"
        try:
            conn.open()
        except HostKeyError as exc:
            raise HostError(str(exc)) from None
        except paramiko.BadHostKeyException as exc:
            raise HostError(changed_key_message(f"{self.host.address}:{self.host.port}", exc, ssh.known_hosts)) from None
        except paramiko.AuthenticationException as exc:
            raise HostError(f"authentication failed for {where} with {ssh.identity_file}: {exc}") from None
        except (socket.timeout, TimeoutError):
            raise HostError(f"unreachable: {where} did not answer within {ssh.connect_timeout}s") from None
        except (OSError, paramiko.SSHException) as exc:
            raise HostError(f"unreachable: {where}: {exc}") from None
        transport = conn.client.get_transport()
        if transport is not None:
            transport.set_keepalive(15)
        self._conn = conn

    def run(self, cmd: Command, source=None, chunk: int = 1 << 16) -> Output:
        """Run one command; send its stdin (then, with `source`, the bytes of that binary file object,
        e.g. `docker save` output) and close it; return the exit status and output."""
        self.connect()
        assert self._conn is not None
        cmd = as_run(cmd, self.settings.ssh.sudo, self.sudo_password)
        if self.on_command:
            self.on_command(self.host.name)
        _trace(self.host.name, cmd)
        transport = self._conn.client.get_transport()
        if transport is None or not transport.is_active():
            raise HostError("connection lost")
        try:
            chan = transport.open_session(timeout=self.settings.ssh.connect_timeout)
            chan.settimeout(cmd.timeout)
            chan.exec_command(cmd.shell())
            if cmd.stdin:
                chan.sendall(cmd.stdin)
            while source is not None and (data := source.read(chunk)):
                chan.sendall(data)
            chan.shutdown_write()
            return _collect(chan, cmd.timeout)
        except (socket.timeout, TimeoutError):
            raise HostError(f"timed out after {cmd.timeout:.0f}s: {cmd.display()}") from None
        except (OSError, EOFError, paramiko.SSHException) as exc:
            raise HostError(f"connection lost while running {cmd.argv[0]}: {exc or type(exc).__name__}") from None

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


def _trace(host: str, cmd: Command) -> None:
    """With env SWARM_REGISTRY_TRACE=FILE, append 'HOST<TAB>COMMAND' (as --dry shows it, secrets
    redacted) for every command sent: what a run executed, to compare with what --dry printed."""
    path = os.environ.get("SWARM_REGISTRY_TRACE")
    if path:
        with _TRACE_LOCK, open(path, "a", encoding="utf-8") as fh:
            fh.write(f"{host}\t{cmd.display()}\n")


def _collect(chan: paramiko.Channel, timeout: float) -> Output:
    out, err = bytearray(), bytearray()
    deadline = time.monotonic() + timeout
    while True:
        got = False
        while chan.recv_ready():
            out += chan.recv(1 << 16)
            got = True
        while chan.recv_stderr_ready():
            err += chan.recv_stderr(1 << 16)
            got = True
        if chan.exit_status_ready() and not chan.recv_ready() and not chan.recv_stderr_ready():
            break
        if not got:
            if time.monotonic() > deadline:
                chan.close()
                raise TimeoutError
            select.select([chan], [], [], 0.5)
    rc = chan.recv_exit_status()
    # Drain what may have arrived between the last read and the exit status.
    while chan.recv_ready():
        out += chan.recv(1 << 16)
    while chan.recv_stderr_ready():
        err += chan.recv_stderr(1 << 16)
    chan.close()
    return Output(rc, out.decode("utf-8", "replace"), err.decode("utf-8", "replace"))
