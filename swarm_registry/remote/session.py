"""One SSH connection per host, opened once and reused for every command of a run.

Fabric's `Connection` opens and authenticates the connection; commands run on raw
session channels of its transport, so stdin and stdout are bytes (binary-safe, e.g. for
`docker save | docker load`) and no per-command reader threads are started.
"""
from __future__ import annotations

import contextlib
import logging
import os
import select
import threading
import socket
import time
from typing import Callable

from pathlib import Path

import paramiko
from fabric import Config, Connection

from ..commands import SUDO_PROMPT, SUDO_READY, Command, as_run, held_next, holding
from ..errors import HostError, Output, TlsOutcome
from ..results import CommandRun
from ..settings import Host, Settings
from . import dial, engine, forward, hostkeys, tls_check
from .hostkeys import HostKeyError, changed_key_message
from ..validators import parse_jump

_CONFIGS: dict = {}
# paramiko asks for a new session key after 512 MiB in either direction; a channel that closes while that
# key exchange is pending deadlocks its transport thread (paramiko issue #822, open: "Key-exchange timed out
# waiting for key negotiation"; seen here after ~5.7 GB in bench/backup_bench.py, and every time with a
# 100 KiB threshold), which would fail, say, the read-write redeploy after a large backup. OpenSSH's client
# re-keys AES ciphers after 2^32 blocks (64 GiB) by default: so do our connections. The server may still
# re-key on its own; paramiko answers that in its transport thread without the deadlock.
REKEY_BYTES = 1 << 36
TLS_TIMEOUT = 5.0  # a TLS check from a node: for its connection, and again for the handshake and answer
_TRACE_LOCK = threading.Lock()

# paramiko logs what its transport thread meets (e.g. "Socket exception: Bad file descriptor (9)" when
# a connection ends under it) on its "paramiko" logger; with no handler there, Python's last-resort
# handler printed those records on stderr between our result lines. What matters reaches us as an
# exception (a HostError naming the host); the records go to a NullHandler unless the application
# configures logging itself (its handlers on the root logger still get them).
logging.getLogger("paramiko").addHandler(logging.NullHandler())


STREAMLOCAL = "direct-streamlocal@openssh.com"
_STREAMLOCAL = threading.local()  # the socket path of the channel this thread is opening
_OPEN_STREAMLOCAL = bytes([paramiko.common.MSG_CHANNEL_OPEN]) + len(STREAMLOCAL).to_bytes(4, "big") + STREAMLOCAL.encode()


class _Packetizer(paramiko.Packetizer):
    """paramiko's packet layer, its handshake deadline kept as a time instead of a thread: paramiko starts a
    `threading.Timer` for every connection's handshake (one more thread to create, schedule and wake once
    cancelled, per host). The deadline is checked where paramiko checks it: before each read of the socket,
    which the transport thread times out every `_active_check_timeout`."""

    _handshake_deadline: float | None = None
    _handshake_done = False

    def start_handshake(self, timeout):
        if self._handshake_deadline is None:
            self._handshake_deadline = time.monotonic() + float(timeout)

    def handshake_timed_out(self):
        deadline = self._handshake_deadline
        return deadline is not None and not self._handshake_done and time.monotonic() > deadline

    def complete_handshake(self):
        if self._handshake_deadline is not None:
            self._handshake_done = True


class _Transport(paramiko.Transport):
    """paramiko's transport, asking for AES-GCM first (OpenSSH has offered aes128-gcm@openssh.com since
    6.2): paramiko's default pick, aes128-ctr with hmac-sha2-256, MACs every packet in a separate pass.
    Measured on loopback, 300 MB through one channel: sending 1.32 -> 0.96 s, receiving 0.87 -> 0.64 s,
    where OpenSSH's own default takes 0.94 s (bench/backup-results.md). A server without GCM still gets the
    rest of paramiko's list, in its order: this is a preference, nothing is disabled."""

    _preferred_ciphers = tuple(c for c in paramiko.Transport._preferred_ciphers if "-gcm@" in c) + \
        tuple(c for c in paramiko.Transport._preferred_ciphers if "-gcm@" not in c)

    # paramiko's transport thread reads its socket with this timeout, and on each one checks whether the
    # transport was closed, a handshake or banner deadline passed, or a keepalive is due: 0.1 s by default,
    # so every idle connection woke its thread 10 times a second (~35 us of CPU and a GIL hand-over each).
    # Measured here, 128 connected transports sitting idle: 44 ms of the client's CPU per second at 0.1 s,
    # 11 ms at 1.0 s. Those deadlines are seconds long (keepalive 15 s, ssh.connect_timeout): a 1 s tick
    # notices them as well. close() does not wait for the tick; the thread ends at its next one (so the
    # connection's end reaches sshd up to 1 s after close(), or when this process exits). Shutting the
    # socket down in close() to end it at once was tried: closing 8 sessions took 8 ms instead of 0.24 ms
    # (every transport thread woke to wind down while the next close ran), a cost on every run.
    _active_check_timeout = 1.0

    def __init__(self, sock, *args, **kwargs):
        """A TCP socket of ours (not a bastion's channel, not a ProxyCommand) gets TCP_NODELAY and, on Linux,
        prompt ACKs (`_PromptAck`): see there."""
        if isinstance(sock, socket.socket) and sock.type == socket.SOCK_STREAM and \
                sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if hasattr(socket, "TCP_QUICKACK"):
                sock = _PromptAck(sock)
        super().__init__(sock, *args, packetizer_class=_Packetizer, **kwargs)

    def open_streamlocal(self, path: str, timeout: float) -> paramiko.Channel:
        """A channel to the unix socket `path` on the server, opened by its sshd as the login user
        (OpenSSH's direct-streamlocal@openssh.com, its PROTOCOL file 2.4: the open message carries the path,
        a reserved string and a reserved uint32). paramiko's open_channel knows no such kind: it is used as
        is and `_send_user_message` adds the three fields to the open message it sends from this thread."""
        _STREAMLOCAL.path = path
        try:
            return self.open_channel(STREAMLOCAL, timeout=timeout)
        finally:
            _STREAMLOCAL.path = None

    def _send_user_message(self, data):
        path = getattr(_STREAMLOCAL, "path", None)
        if path is not None and isinstance(data, paramiko.Message) and data.asbytes().startswith(_OPEN_STREAMLOCAL):
            _STREAMLOCAL.path = None
            data.add_string(path)
            data.add_string("")
            data.add_int(0)
        super()._send_user_message(data)

    def _parse_channel_open_failure(self, m):
        """As paramiko's (3.5), but the ChannelException keeps the server's own words ("Connection refused",
        "Name or service not known": remote.tls_check tells them apart) where paramiko keeps only the code's
        name ("Connect failed")."""
        chanid, reason, reason_str = m.get_int(), m.get_int(), m.get_text()
        m.get_text()  # language
        self._log(logging.DEBUG, f"channel {chanid} open failed: {reason_str} (code {reason})")
        with self.lock:
            self.saved_exception = paramiko.ChannelException(
                reason, reason_str or paramiko.common.CONNECTION_FAILED_CODE.get(reason, "(unknown code)"))
            if chanid in self.channel_events:
                self._channels.delete(chanid)
                if chanid in self.channel_events:
                    self.channel_events[chanid].set()
                    del self.channel_events[chanid]


class _PromptAck:
    """A TCP socket that acknowledges what it reads at once (Linux TCP_QUICKACK, set again after every read:
    the kernel drops it on its own), for paramiko's transport; the rest is the socket's.

    Two 40 ms stalls per connection otherwise, both Nagle's algorithm waiting on a delayed ACK (Linux delays
    one up to 40 ms): paramiko writes each SSH packet with its own send(), so during the key exchange a second
    small packet waited for the ACK of the first (TCP_NODELAY, set beside this, lifts that); and sshd sends
    its host-keys notice (hostkeys-00@openssh.com) just after authentication, our kernel held the ACK of it,
    and sshd's Nagle then held the reply to our session request until that ACK came. Measured on loopback
    against a stock sshd, one connection then `true` on an idle machine: connect 62 -> 21 ms, opening the
    session channel 44 -> 1.3 ms."""

    __slots__ = ("_sock",)

    def __init__(self, sock: socket.socket):
        self._sock = sock

    def recv(self, n: int) -> bytes:
        data = self._sock.recv(n)
        try:
            self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)
        except OSError:  # closed under us by another thread: the next read reports it
            pass
        return data

    def __getattr__(self, name):
        return getattr(self._sock, name)


class _Connection(Connection):
    """Fabric's Connection, whose attributes are its own: setting one never writes into the config.

    Fabric's Connection is an invoke DataProxy: `conn.name = value` writes into its config unless
    `name` is found in `dir(conn)`, a sorted list built anew for every set (13 per connection). Fabric
    sets one such key, `inline_ssh_env`, in every `__init__`, so connections sharing a config raced on
    it ('gateway' and 'authentication' went missing on random hosts at N=128) and each needed a clone
    of it. Here every set is an attribute of this connection: the run's config is only read, shared by
    all its connections, and a connection costs neither a clone nor the `dir()` calls (the client's CPU
    0.89-0.93x at 64 and 128 hosts, bench/HISTORY.md). Reads are Fabric's own: an attribute first, then the config."""

    __setattr__ = object.__setattr__


def _fabric_config(ssh_config: Path | None) -> Config:
    """Fabric's config: with ssh.config_file, that OpenSSH client config only (Fabric/paramiko parse it:
    Host aliases, HostName, User, Port, IdentityFile, ProxyJump); without, no ssh_config at all. One per
    ssh_config for the process, shared by every connection, which only reads it (`_Connection`)."""
    if ssh_config not in _CONFIGS:
        if ssh_config is None:
            _CONFIGS[None] = Config(overrides={"load_ssh_configs": False})
        else:
            _CONFIGS[ssh_config] = Config(runtime_ssh_path=str(ssh_config))
    return _CONFIGS[ssh_config]


class Session:
    def __init__(self, host: Host, settings: Settings, *, sudo_password: str | None = None,
                 on_command: Callable[[str], None] | None = None, known_hosts: hostkeys.KnownHosts | None = None):
        """known_hosts: the run's parsed ssh.known_hosts, shared by its sessions (the executor makes one);
        None: this session's own, parsed on its first connection."""
        self.host = host
        self.settings = settings
        self.known_hosts = known_hosts or hostkeys.KnownHosts(settings.ssh.known_hosts,
                                                              settings.ssh.accept_new_host_keys)
        self.sudo_password = sudo_password
        self.on_command = on_command
        self.journal: list[CommandRun] | None = None  # set by the executor: the commands of the current step
        self._conn: Connection | None = None
        self._forwards: dict[int, forward.Forward] = {}
        self._held: paramiko.Channel | None = None  # a held command's shell, waiting for one more command
        self._lock = threading.Lock()

    def _connection(self, address: str, user: str | None, port: int | None, gateway=None) -> Connection:
        ssh = self.settings.ssh
        keys = [str(ssh.identity_file)] if ssh.identity_file.is_file() or not ssh.agent else []
        conn = _Connection(address, user=user, port=port, config=_fabric_config(ssh.config_file),
                           connect_timeout=ssh.connect_timeout, gateway=gateway,
                           connect_kwargs={"key_filename": keys, "look_for_keys": False, "allow_agent": ssh.agent,
                                           "banner_timeout": ssh.connect_timeout, "auth_timeout": ssh.connect_timeout,
                                           "transport_factory": _Transport})
        hop = conn
        # this host and every bastion before it (also from ssh_config); a `gateway` passed in was verified
        # when it was built
        while isinstance(hop, Connection) and hop is not gateway:
            self._verify_keys(hop)
            hop = hop.gateway
        return conn

    def _verify_keys(self, conn: Connection) -> None:
        self.known_hosts.install(conn.client, conn.host, conn.port)  # parsed once per run, not per connection

    @property
    def sudo(self) -> bool:
        """Commands go through sudo: ssh.sudo, or a sudo password was given."""
        return self.settings.ssh.sudo or self.sudo_password is not None

    def route(self) -> str:
        """user@host:port, with ' via BASTION' when a proxy jump is set (for messages and --dry)."""
        jump = self.host.proxy_jump or self.settings.ssh.proxy_jump
        return f"{self.host.user}@{self.host.address}:{self.host.port}" + (f" via {jump}" if jump else "")

    def connect(self) -> None:
        if self._conn is not None and self._conn.is_connected:
            return
        ssh = self.settings.ssh
        from_config = ssh.config_file is not None  # ssh_config's User/Port apply unless the settings set them
        user = self.host.user if not from_config or "user" in self.host.explicit else None
        port = self.host.port if not from_config or "port" in self.host.explicit else None
        jump = self.host.proxy_jump or ssh.proxy_jump
        gateway = None
        if jump:
            j_user, j_host, j_port = parse_jump(jump)
            gateway = self._connection(j_host, j_user or self.host.user, j_port)
        conn = self._connection(self.host.address, user, port, gateway)
        where = self.route()
        try:
            if gateway is None and not from_config:  # its TCP connection may be under way already (dial.py)
                sock = dial.take(self.host.name, self.host.address, self.host.port, ssh.connect_timeout)
                if sock is not None:
                    conn.connect_kwargs["sock"] = sock
            conn.open()
        except HostKeyError as exc:
            raise HostError(str(exc)) from None
        except paramiko.BadHostKeyException as exc:
            raise HostError(changed_key_message(exc.hostname if hasattr(exc, "hostname") else where, exc,
                                                ssh.known_hosts)) from None
        except paramiko.AuthenticationException as exc:
            raise HostError(f"authentication failed for {where} with {ssh.identity_file}: {exc}") from None
        except (socket.timeout, TimeoutError):
            raise HostError(f"unreachable: {where} did not answer within {ssh.connect_timeout}s") from None
        except (OSError, paramiko.SSHException) as exc:
            raise HostError(f"unreachable: {where}: {exc}") from None
        transport = conn.client.get_transport()
        if transport is not None:
            transport.set_keepalive(15)
            transport.packetizer.REKEY_BYTES = REKEY_BYTES
        self._conn = conn

    def run(self, cmd: Command, source=None, chunk: int = 1 << 16, *, hold: bool = False) -> Output:
        """Run one command; send its stdin (then, with `source`, the bytes of that binary file object,
        e.g. `docker save` output) and close it; return the exit status and output. With a `journal`,
        the command as --dry shows it (secrets redacted), its exit status and time are added to it.

        With `hold` (a command without stdin: the facts), its shell stays on the host once the command
        succeeded, and the next `run` without a `source` is sent through it (commands.holding): on a
        first run a changed host then costs one session, as a converged one does, where a second
        command would open a channel and start a login shell again. The host runs the same command,
        as the same user, with the same stdin; what the journal, --dry and the trace show is unchanged."""
        self.connect()  # a host that cannot be reached was sent nothing: no command in the journal
        held = self._take_held()
        sent = as_run(cmd, self.sudo, self.sudo_password)
        t0, rc = time.monotonic(), None
        try:
            if held is not None and source is None and not hold:
                res = self._send_held(held, cmd, sent)
            else:
                _end(held)
                res = (self._send_holding(cmd, sent) if hold and cmd.stdin is None
                       else self._send(sent, source, chunk))
            rc = res.rc
            return res
        finally:
            if self.journal is not None:
                self.journal.append(CommandRun(sent.display(), rc, time.monotonic() - t0))

    def _take_held(self) -> paramiko.Channel | None:
        """The held shell, if it still waits (else it is closed): whoever takes it uses or ends it."""
        with self._lock:
            held, self._held = self._held, None
        if held is not None and (held.closed or held.eof_received or held.exit_status_ready()):
            _end(held)
            return None
        return held

    def _start(self, cmd: Command, shown: Command | None = None) -> tuple[paramiko.Channel, bytes | None]:
        """Open a channel and start `cmd` (already wrapped by as_run) on it; answer sudo's prompt when a
        sudo password was given. Returns the channel and what stderr held after sudo (None: sudo gave up).
        `shown`: what the trace shows instead of `cmd` (a held command shows as itself)."""
        self.connect()
        assert self._conn is not None
        if self.on_command:
            self.on_command(self.host.name)
        _trace(self.host.name, shown or cmd)
        transport = self._conn.client.get_transport()
        if transport is None or not transport.is_active():
            raise HostError("connection lost")
        chan = transport.open_session(timeout=self.settings.ssh.connect_timeout)
        chan.settimeout(cmd.timeout)
        chan.exec_command(cmd.shell())
        return chan, (self._answer_sudo(chan) if self.sudo_password is not None else b"")

    def _send(self, cmd: Command, source, chunk: int) -> Output:
        with _failures(cmd):
            chan, early = self._start(cmd)
            if early is None:  # sudo ended before running the command
                return _collect(chan, cmd.timeout)
            if cmd.stdin:
                chan.sendall(cmd.stdin)
            while source is not None and (data := source.read(chunk)):
                chan.sendall(data)
            chan.shutdown_write()
            return _after_sudo(early, _collect(chan, cmd.timeout))

    def _send_holding(self, cmd: Command, sent: Command) -> Output:
        mark = f"swarm-registry-held-{os.urandom(8).hex()}"  # os, not secrets: no import at start-up
        wrapped = as_run(holding(cmd, mark), self.sudo, self.sudo_password)
        with _failures(sent):
            chan, early = self._start(wrapped, shown=sent)
            if early is None:
                return _collect(chan, cmd.timeout)
            res, waiting = _until_mark(chan, mark.encode(), cmd.timeout, err=early)
            if waiting:
                with self._lock:
                    self._held = chan
            return res

    def _send_held(self, held: paramiko.Channel, cmd: Command, sent: Command) -> Output:
        """`cmd` through the held shell: its length, its shell string (not `sent`: the held shell already
        runs as sudo made it), its stdin, EOF."""
        with _failures(sent):
            if self.on_command:
                self.on_command(self.host.name)
            _trace(self.host.name, sent)
            held.settimeout(cmd.timeout)
            held.sendall(held_next(cmd))
            if cmd.stdin:
                held.sendall(cmd.stdin)
            held.shutdown_write()
            return _collect(held, cmd.timeout)

    def reader(self, cmd: Command) -> "RemoteReader":
        """Start `cmd` and read its stdout as a stream (e.g. to feed another host's `run(source=...)`)."""
        cmd = as_run(cmd, self.sudo, self.sudo_password)
        _end(self._take_held())
        try:
            chan, early = self._start(cmd)
            if early is not None and cmd.stdin:
                chan.sendall(cmd.stdin)
            chan.shutdown_write()
        except (OSError, EOFError, paramiko.SSHException) as exc:
            raise HostError(f"connection lost while starting {cmd.argv[0]}: {exc or type(exc).__name__}") from None
        return RemoteReader(chan, cmd.timeout)

    def _answer_sudo(self, chan: paramiko.Channel) -> bytes | None:
        """Answer sudo's own prompt (and only it) with the sudo password; return once the command runs
        (sudo's wrapper printed SUDO_READY) with what stderr held after it, or None when sudo gave up.
        The password is never the command's input: with NOPASSWD or a cached timestamp, no prompt comes
        and nothing is sent. A second prompt means the password was refused: the channel is closed."""
        buf, answered = b"", False
        ready, prompt = SUDO_READY.encode(), SUDO_PROMPT.encode()
        deadline = time.monotonic() + self.settings.ssh.connect_timeout + 30
        while True:
            if ready in buf:
                return buf.split(ready, 1)[1].lstrip(b"\n")
            if prompt in buf:
                if answered:
                    chan.close()
                    raise HostError(f"sudo refused the sudo password for {self.host.user} (nothing was run)")
                chan.sendall(self.sudo_password.encode("utf-8") + b"\n")
                answered, buf = True, buf.split(prompt, 1)[1]
                continue
            if chan.recv_stderr_ready():
                buf += chan.recv_stderr(4096)
                continue
            if _whole(chan):
                return None
            if time.monotonic() > deadline:
                chan.close()
                raise HostError("sudo did not answer")
            select.select([chan], [], [], 0.2)

    @property
    def jumps(self) -> bool:
        """The open connection goes through a bastion (ssh.proxy_jump, or a ProxyJump of ssh.config_file)."""
        return self._conn is not None and isinstance(self._conn.gateway, Connection)

    def forward(self, port: int) -> int:
        """A port on 127.0.0.1 of this machine forwarded over this connection to `port` on the host itself
        (like `ssh -L`), made on first use and kept for the run; the first checks that sshd allows it."""
        with self._lock:
            if port not in self._forwards:
                self.connect()
                transport = self._conn.client.get_transport()
                dest = ("127.0.0.1", port)
                forward.check_allowed(transport, dest, self.route())
                self._forwards[port] = forward.Forward(transport, dest, self.host.name)
            return self._forwards[port].port

    def ask_engine_info(self) -> "engine.InfoRequest | None":
        """The engine's /info asked over its socket (remote.engine); None: read the docker fact with a command.
        Not where commands go through sudo: sshd would open the socket as the login user, not as root."""
        if self.sudo:
            return None
        self.connect()
        assert self._conn is not None
        transport = self._conn.client.get_transport()
        if transport is None or not isinstance(transport, _Transport):
            return None
        return engine.ask_info(transport, self.settings.ssh.connect_timeout)

    def check_tls(self, host: str, port: int, cas: bytes) -> TlsOutcome:
        """TLS to host:port as this host sees it (remote.tls_check): its sshd connects, TLS runs here."""
        self.connect()
        return tls_check.check(self._conn.client.get_transport(), host, port, cas, TLS_TIMEOUT)

    def close(self) -> None:
        _end(self._take_held())  # EOF: the held shell exits 0
        for f in self._forwards.values():
            f.close()
        self._forwards = {}
        if self._conn is not None:
            self._conn.close()
            self._conn = None


class RemoteReader:
    """A remote command's stdout as a binary reader; `finish()` gives its exit status and stderr."""

    def __init__(self, chan: paramiko.Channel, timeout: float):
        self.chan, self.timeout, self.err = chan, timeout, bytearray()

    def read(self, n: int = 1 << 16) -> bytes:
        try:
            while True:
                while self.chan.recv_stderr_ready():
                    self.err += self.chan.recv_stderr(1 << 16)
                if self.chan.recv_ready() or self.chan.exit_status_ready() or self.chan.eof_received:
                    return self.chan.recv(n if n > 0 else 1 << 16)
                select.select([self.chan], [], [], 0.5)
        except (socket.timeout, TimeoutError):
            raise HostError(f"timed out after {self.timeout:.0f}s reading a stream") from None

    def finish(self) -> Output:
        rest = _collect(self.chan, self.timeout)
        return Output(rest.rc, rest.stdout, self.err.decode("utf-8", "replace") + rest.stderr)


def _trace(host: str, cmd: Command) -> None:
    """With env SWARM_REGISTRY_TRACE=FILE, append 'HOST<TAB>COMMAND' (as --dry shows it, secrets
    redacted) for every command sent: what a run executed, to compare with what --dry printed."""
    path = os.environ.get("SWARM_REGISTRY_TRACE")
    if path:
        with _TRACE_LOCK, open(path, "a", encoding="utf-8") as fh:
            fh.write(f"{host}\t{cmd.display()}\n")


@contextlib.contextmanager
def _failures(cmd: Command):
    """A timeout or a lost connection while `cmd` runs: one HostError naming it."""
    try:
        yield
    except (socket.timeout, TimeoutError):
        raise HostError(f"timed out after {cmd.timeout:.0f}s: {cmd.display()}") from None
    except (OSError, EOFError, paramiko.SSHException) as exc:
        raise HostError(f"connection lost while running {cmd.argv[0]}: {exc or type(exc).__name__}") from None


def _after_sudo(early: bytes, out: Output) -> Output:
    """`out` with what stderr held after sudo's ready line put first."""
    return Output(out.rc, out.stdout, early.decode("utf-8", "replace") + out.stderr) if early else out


def _end(chan: paramiko.Channel | None) -> None:
    """End a held shell: EOF on its stdin (it exits 0), then close the channel."""
    if chan is None:
        return
    try:
        chan.shutdown_write()
    except (OSError, EOFError, paramiko.SSHException):
        pass
    chan.close()


def _until_mark(chan: paramiko.Channel, mark: bytes, timeout: float, err: bytes = b"") -> tuple[Output, bool]:
    """The output of a held command (commands.holding) up to its mark, and whether its shell now waits for
    one more command (the command succeeded). A command that failed, or a shell that ended before the mark,
    is collected to its end and its channel closed. `err`: stderr already read (after sudo's ready line)."""
    out, err = bytearray(), bytearray(err)
    head, tail = b"\n" + mark + b" ", mark + b"\n"
    deadline, exited = time.monotonic() + timeout, []
    while True:
        got = _drain(chan, out, err)
        at, et = out.find(head), err.find(tail)
        end = out.find(b"\n", at + len(head)) if at >= 0 else -1
        if end >= 0 and et >= 0:
            rc = int(out[at + len(head):end])
            res = Output(rc, out[:at].decode("utf-8", "replace"), err[:et].decode("utf-8", "replace"))
            if rc != 0:
                _collect(chan, timeout)
            return res, rc == 0
        if not got and _ended(chan, exited):
            rest = _collect(chan, timeout)  # ended before its mark (killed, or sudo refused to run it)
            return Output(rest.rc, out.decode("utf-8", "replace") + rest.stdout,
                          err.decode("utf-8", "replace") + rest.stderr), False
        if not got:
            _wait(chan, deadline)


def _drain(chan: paramiko.Channel, out: bytearray, err: bytearray) -> bool:
    """Add what stdout and stderr hold now to `out` and `err`; True when anything came."""
    got = False
    while chan.recv_ready():
        out += chan.recv(1 << 16)
        got = True
    while chan.recv_stderr_ready():
        err += chan.recv_stderr(1 << 16)
        got = True
    return got


# How long a command's output may still come after its exit status. sshd sends the exit status when the
# child is reaped, which can be before it has read the last of the child's stdout and stderr pipes: the
# output is only whole at EOF. A command that left a process holding its stdout open sends no EOF until
# that process ends; it is taken as ended this long after its exit status (where ssh(1) would wait).
_EOF_GRACE = 2.0


def _whole(chan: paramiko.Channel) -> bool:
    """The command is over and all of its output has come: its exit status and EOF (or the channel closed;
    paramiko's exit_status_ready() is true then too)."""
    return chan.exit_status_ready() and (chan.eof_received or chan.closed)


def _ended(chan: paramiko.Channel, exited: list[float]) -> bool:
    """True once the command is over: _whole() and nothing is left to read, or _EOF_GRACE passed since its
    exit status. `exited` keeps when that was first seen."""
    if chan.recv_ready() or chan.recv_stderr_ready():
        return False
    if _whole(chan):
        return True
    if not chan.exit_status_ready():
        return False
    if not exited:
        exited.append(time.monotonic())
    return time.monotonic() - exited[0] > _EOF_GRACE


def _wait(chan: paramiko.Channel, deadline: float) -> None:
    """Wait (at most 0.5 s) for more from `chan`; past `deadline`, close it and raise TimeoutError."""
    if time.monotonic() > deadline:
        chan.close()
        raise TimeoutError
    if chan.eof_received:  # its output is whole; the exit status is still to come (select would not wait)
        chan.status_event.wait(0.5)
    else:
        select.select([chan], [], [], 0.5)


def _collect(chan: paramiko.Channel, timeout: float) -> Output:
    out, err = bytearray(), bytearray()
    deadline, exited = time.monotonic() + timeout, []
    while True:
        got = _drain(chan, out, err)
        if _ended(chan, exited):
            break
        if not got:
            _wait(chan, deadline)
    rc = chan.recv_exit_status()
    _drain(chan, out, err)  # what may have arrived between the last read and the exit status
    chan.close()
    return Output(rc, out.decode("utf-8", "replace"), err.decode("utf-8", "replace"))
