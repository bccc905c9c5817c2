"""Plain sshd "hosts" on loopback for tests and the benchmark.

Each host is its own sshd process with its own host key and port, root login by one
client key. Each runs in its own mount namespace with a private /etc/docker bound to a
directory of the host's own, so files a task writes under /etc/docker land per host
(`host.etc_docker`). Start-up is polled (the SSH banner), never slept on.
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

SSHD = "/usr/sbin/sshd"

CONFIG = """\
Port {port}
ListenAddress 127.0.0.1
HostKey {dir}/ssh_host_ed25519_key
PidFile none
AuthorizedKeysFile {authorized_keys}
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
LogLevel VERBOSE
MaxStartups 100
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_banner(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                if s.recv(4).startswith(b"SSH-"):
                    return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"sshd on port {port} did not answer within {timeout}s")
        time.sleep(0.05)


@dataclass
class SshdHost:
    name: str
    dir: Path
    port: int
    proc: subprocess.Popen | None = None

    @property
    def etc_docker(self) -> Path:
        return self.dir / "etc-docker"

    @property
    def log(self) -> Path:
        return self.dir / "sshd.log"

    def host_key_line(self) -> str:
        key = (self.dir / "ssh_host_ed25519_key.pub").read_text().split()
        return f"[127.0.0.1]:{self.port} {key[0]} {key[1]}"

    def start(self) -> None:
        if self.proc and self.proc.poll() is None:
            return
        script = ("mount --make-rprivate / && mkdir -p /etc/docker && mount --bind \"$1\" /etc/docker "
                  "&& exec \"$2\" -D -e -f \"$3\"")
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                ["unshare", "-m", "sh", "-c", script, "sh", str(self.etc_docker), SSHD, str(self.dir / "sshd_config")],
                stdout=log, stderr=log, stdin=subprocess.DEVNULL, start_new_session=True)
        wait_for_banner(self.port)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=10)
        self.proc = None

    def new_host_key(self) -> None:
        """Replace the host key (as a reinstalled machine would) and restart sshd."""
        self.stop()
        for f in self.dir.glob("ssh_host_ed25519_key*"):
            f.unlink()
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(self.dir / "ssh_host_ed25519_key")],
                       check=True)
        self.start()

    def sessions_opened(self) -> int:
        """How many authenticated connections sshd logged (LogLevel VERBOSE)."""
        return self.log.read_text(errors="replace").count("Accepted publickey")


class SshdHosts:
    """N sshd hosts under `workdir`; `settings_file()` writes a settings YAML for them."""

    def __init__(self, n: int, workdir: Path):
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        os.chmod(self.workdir, 0o700)
        self.client_key = self.workdir / "id_ed25519"
        self.known_hosts = self.workdir / "known_hosts"
        self.hosts = [SshdHost(f"h{i}", self.workdir / f"h{i}", free_port()) for i in range(1, n + 1)]

    def __enter__(self) -> "SshdHosts":
        Path("/run/sshd").mkdir(exist_ok=True)
        if not self.client_key.exists():
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(self.client_key)], check=True)
        authorized = self.workdir / "authorized_keys"
        authorized.write_text((self.workdir / "id_ed25519.pub").read_text())
        for h in self.hosts:
            h.dir.mkdir(exist_ok=True)
            h.etc_docker.mkdir(exist_ok=True)
            if not (h.dir / "ssh_host_ed25519_key").exists():
                subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f",
                                str(h.dir / "ssh_host_ed25519_key")], check=True)
            (h.dir / "sshd_config").write_text(CONFIG.format(port=h.port, dir=h.dir, authorized_keys=authorized))
        for h in self.hosts:
            h.start()
        self.write_known_hosts()
        return self

    def write_known_hosts(self, hosts: list[SshdHost] | None = None) -> None:
        chosen = self.hosts if hosts is None else hosts
        self.known_hosts.write_text("".join(h.host_key_line() + "\n" for h in chosen))

    def __exit__(self, *exc) -> None:
        for h in self.hosts:
            h.stop()

    def settings(self, **overrides) -> dict:
        data = {
            "hosts": {h.name: {"address": "127.0.0.1", "port": h.port, "user": "root",
                               "roles": ["manager"] if i == 0 else ["worker"]}
                      for i, h in enumerate(self.hosts)},
            "registry": {"node": self.hosts[0].name},
            "cert": {"key_type": "ecdsa-p256"},
            "ssh": {"identity_file": str(self.client_key), "known_hosts": str(self.known_hosts),
                    "parallel": max(1, len(self.hosts)), "connect_timeout": 5},
            "state_dir": str(self.workdir / "state"),
        }
        for key, value in overrides.items():
            if isinstance(value, dict):
                data.setdefault(key, {}).update(value)
            else:
                data[key] = value
        return data

    def settings_file(self, name: str = "settings.yaml", **overrides) -> Path:
        path = self.workdir / name
        path.write_text(yaml.safe_dump(self.settings(**overrides), sort_keys=False))
        return path
