"""Plain sshd "hosts" on loopback for tests and the benchmark.

Each host is its own sshd process with its own host key and port, root login by one
client key. Each runs in its own mount namespace with a private /etc/docker bound to a
directory of the host's own, so files a task writes under /etc/docker land per host
(`host.etc_docker`). Start-up is polled (the SSH banner), never slept on.

Opt-in `home_skel` (default None: root's real home, as before): each host also gets a HOME of
its own, `host.home`, filled from that directory (e.g. /etc/skel, Debian's stock .bashrc and
.profile) and bound over root's home directory in the host's namespace, so sshd runs root's
login shell with those startup files instead of this machine's ~/.bashrc. Opt-in `sftp=True`
(default False) adds Debian's stock `Subsystem sftp` line (tools that copy files over SFTP).
"""
from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

SSHD = "/usr/sbin/sshd"
SFTP_SUBSYSTEM = "Subsystem sftp /usr/lib/openssh/sftp-server\n"  # as in Debian's stock sshd_config

CONFIG = """\
Port {port}
ListenAddress {address}
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


def free_ports(n: int, address: str = "127.0.0.1") -> list[int]:
    """`n` distinct free ports, picked in one pass: every socket stays bound until all `n` are picked, so
    the kernel cannot hand one port out twice (binding port 0 and letting it go, one host after the
    other, gave two hosts the same port at N >= 64). Another process can still take a port before
    sshd binds it: SshdHosts then moves that host to a new port (see SshdHost.start)."""
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    held: list[socket.socket] = []
    try:
        for _ in range(n):
            sock = socket.socket(family)
            held.append(sock)
            sock.bind((address, 0))
        return [sock.getsockname()[1] for sock in held]
    finally:
        for sock in held:
            sock.close()


def free_port(address: str = "127.0.0.1") -> int:
    return free_ports(1, address)[0]


class SshdExited(RuntimeError):
    """sshd exited before it answered."""


class PortTaken(SshdExited):
    """sshd could not bind its port: another process took it after it was picked."""


def wait_for_banner(port: int, timeout: float = 10.0, address: str = "127.0.0.1",
                    proc: subprocess.Popen | None = None) -> None:
    """Until an SSH banner answers on the port; with `proc` (the sshd), fail at once if it exited."""
    deadline = time.monotonic() + timeout
    while True:
        if proc is not None and proc.poll() is not None:
            raise SshdExited(f"sshd for port {port} exited with status {proc.returncode} before answering")
        try:
            with socket.create_connection((address, port), timeout=1) as s:
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
    address: str = "127.0.0.1"
    home_skel: Path | None = None  # opt-in: see the module docstring

    @property
    def home(self) -> Path:
        """With home_skel: the directory bound over root's home in this host's namespace."""
        return self.dir / "home"

    @property
    def etc_docker(self) -> Path:
        return self.dir / "etc-docker"

    @property
    def log(self) -> Path:
        return self.dir / "sshd.log"

    def host_key_line(self) -> str:
        key = (self.dir / "ssh_host_ed25519_key.pub").read_text().split()
        return f"[{self.address}]:{self.port} {key[0]} {key[1]}"

    def start(self) -> None:
        if self.proc and self.proc.poll() is None:
            return
        script = ("mount --make-rprivate / && mkdir -p /etc/docker && mount --bind \"$1\" /etc/docker "
                  "&& exec \"$2\" -D -e -f \"$3\"")
        args = [str(self.etc_docker), SSHD, str(self.dir / "sshd_config")]
        if self.home_skel is not None:
            script = script.replace("&& exec", "&& mount --bind \"$4\" \"$5\" && exec")
            args += [str(self.home), pwd.getpwnam("root").pw_dir]  # the hosts log in root
        offset = self.log.stat().st_size if self.log.exists() else 0
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                ["unshare", "-m", "sh", "-c", script, "sh", *args],
                stdout=log, stderr=log, stdin=subprocess.DEVNULL, start_new_session=True)
        try:
            wait_for_banner(self.port, address=self.address, proc=self.proc)
        except SshdExited as exc:
            self.proc = None
            with open(self.log, "rb") as fh:
                fh.seek(offset)
                said = fh.read().decode(errors="replace")
            if "Address already in use" in said:
                raise PortTaken(f"{exc}: port {self.port} taken") from None  # SshdHosts moves the host
            raise SshdExited(f"{exc}; see {self.log}") from None

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

    def commands_started(self) -> int:
        """How many remote commands sshd started, each on its own session channel (`Starting session:`)."""
        return self.log.read_text(errors="replace").count("Starting session:")


class SshdHosts:
    """N sshd hosts under `workdir`; `settings_file()` writes a settings YAML for them."""

    def __init__(self, n: int, workdir: Path, address: str = "127.0.0.1", home_skel: str | Path | None = None,
                 sftp: bool = False, sshd_options: str = ""):
        """`address`: where every sshd listens (127.0.0.1, or ::1 for IPv6 hosts).
        `home_skel` (opt-in, default None): each host's root HOME is a copy of this directory (e.g.
        "/etc/skel"), bound over root's home in its namespace; None keeps this machine's.
        `sftp` (opt-in, default False): also serve the sftp subsystem.
        `sshd_options`: more sshd_config lines (e.g. "AllowTcpForwarding no")."""
        self.workdir = Path(workdir).absolute()  # sshd re-executes itself from /: its config needs absolute paths
        self.address = address
        self.workdir.mkdir(parents=True, exist_ok=True)
        os.chmod(self.workdir, 0o700)
        self.client_key = self.workdir / "id_ed25519"
        self.known_hosts = self.workdir / "known_hosts"
        self.home_skel = Path(home_skel) if home_skel is not None else None
        self.sftp = sftp
        self.sshd_options = sshd_options
        self.hosts = [SshdHost(f"h{i}", self.workdir / f"h{i}", port, address=address, home_skel=self.home_skel)
                      for i, port in enumerate(free_ports(n, address), 1)]

    def __enter__(self) -> "SshdHosts":
        Path("/run/sshd").mkdir(exist_ok=True)
        if not self.client_key.exists():
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(self.client_key)], check=True)
        authorized = self.workdir / "authorized_keys"
        authorized.write_text((self.workdir / "id_ed25519.pub").read_text())
        for h in self.hosts:
            h.dir.mkdir(exist_ok=True)
            h.etc_docker.mkdir(exist_ok=True)
            if self.home_skel is not None and not h.home.exists():
                shutil.copytree(self.home_skel, h.home, symlinks=True)
                os.chmod(h.home, 0o700)
            if not (h.dir / "ssh_host_ed25519_key").exists():
                subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f",
                                str(h.dir / "ssh_host_ed25519_key")], check=True)
            self._write_config(h)
        try:
            for h in self.hosts:
                self._start(h)
        except BaseException:  # interrupted or failed half-way: __exit__ will not run, so stop what started
            self.__exit__()
            raise
        self.write_known_hosts()
        return self

    def _start(self, h: SshdHost, attempts: int = 3) -> None:
        """Start h's sshd; if another process took its port since it was picked, move it to a new one."""
        for attempt in range(attempts):
            try:
                h.start()
                return
            except PortTaken:
                if attempt == attempts - 1:
                    raise
                in_use = {o.port for o in self.hosts}
                h.port = next(p for p in free_ports(len(in_use) + 1, self.address) if p not in in_use)
                self._write_config(h)

    def _write_config(self, h: SshdHost) -> None:
        h.dir.joinpath("sshd_config").write_text(
            CONFIG.format(port=h.port, dir=h.dir, authorized_keys=self.workdir / "authorized_keys", address=h.address)
            + (SFTP_SUBSYSTEM if self.sftp else "") + (self.sshd_options.rstrip("\n") + "\n" if self.sshd_options else ""))

    def write_known_hosts(self, hosts: list[SshdHost] | None = None) -> None:
        chosen = self.hosts if hosts is None else hosts
        self.known_hosts.write_text("".join(h.host_key_line() + "\n" for h in chosen))

    def __exit__(self, *exc) -> None:
        for h in self.hosts:
            h.stop()

    def settings(self, **overrides) -> dict:
        data = {
            "hosts": {h.name: {"address": h.address, "port": h.port, "user": "root",
                               "roles": ["manager"] if i == 0 else ["worker"]}
                      for i, h in enumerate(self.hosts)},
            # a name every host resolves (to itself: no registry there, so curl finds it refused, not unknown)
            "registry": {"node": self.hosts[0].name, "host": "localhost"},
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
