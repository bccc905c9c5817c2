"""Early TCP connections: a run's first hosts are dialled before paramiko and Fabric are imported.

After accepting a connection, sshd forks and re-executes itself, reads its config and host keys, then
sends its version line: ~6 ms of its CPU per connection here (8 hosts at once: 24 ms until the last line
came, on 2 cores). Dialled when the settings are read, that work runs on another core while this process
imports paramiko and Fabric (~30 ms, one core), not after, when every connection's key exchange competes
for the same cores. A session takes its host's socket (`take`) and hands it to paramiko, which then does
everything else as for a socket of its own (the version exchange, keys, authentication).

Only where the settings alone say where a host is: no ssh.config_file (ssh_config could name another
HostName or Port, and parsing it needs paramiko), no proxy jump (the bastion's channel is the socket), an
address given as numbers (no name lookup here: a slow resolver would hold up the run; named hosts connect
as usual). At most ssh.parallel hosts, the ones the executor connects first. No data is sent: a host
whose socket is never taken (the run stopped before it) sees a connection closed before any greeting,
as after a port check; `discard` closes those when their executor closes.
"""
from __future__ import annotations

import errno
import select
import socket
import threading
import time

_LOCK = threading.Lock()
# (host name, address, port) -> (non-blocking socket with its connect under way, when it was started)
_PENDING: dict[tuple[str, str, int], tuple[socket.socket, float]] = {}


def start(settings, hosts: list[str]) -> int:
    """Begin the TCP connection of each of the first ssh.parallel `hosts` that qualifies (see above);
    returns how many were begun. Never blocks and never fails: a host that cannot be dialled here is
    connected as usual by its session, which reports what went wrong."""
    ssh = settings.ssh
    if ssh.config_file is not None or ssh.proxy_jump:
        return 0
    begun = 0
    for name in hosts[:ssh.parallel]:
        host = settings.hosts[name]
        key = (name, host.address, host.port)
        if host.proxy_jump or key in _PENDING:
            continue
        try:
            family, kind, proto, _, addr = socket.getaddrinfo(host.address, host.port, type=socket.SOCK_STREAM,
                                                              flags=socket.AI_NUMERICHOST)[0]
            sock = socket.socket(family, kind, proto)
        except (OSError, UnicodeError):  # a name, not numbers (socket.gaierror), or no socket to be had
            continue
        sock.setblocking(False)
        if sock.connect_ex(addr) not in (0, errno.EINPROGRESS):
            sock.close()
            continue
        with _LOCK:
            _PENDING[key] = (sock, time.monotonic())
        begun += 1
    return begun


def take(name: str, address: str, port: int, timeout: float) -> socket.socket | None:
    """The connected socket dialled for this host (blocking, as paramiko expects), waiting for its connect
    up to `timeout` seconds from when it was begun. None: none was begun, or it failed (refused,
    unreachable: the caller connects as usual and reports that error in its own words). Raises
    socket.timeout when the host did not answer in time, as paramiko's own connect would."""
    with _LOCK:
        item = _PENDING.pop((name, address, port), None)
    if item is None:
        return None
    sock, began = item
    poll = select.poll()
    poll.register(sock, select.POLLOUT)
    if not poll.poll(max(0.0, began + timeout - time.monotonic()) * 1000):
        sock.close()
        raise socket.timeout(f"timed out connecting to {address} port {port}")
    if sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR):
        sock.close()
        return None
    sock.setblocking(True)
    return sock


def discard(names) -> None:
    """Close the sockets dialled for these hosts and not taken (the run ended before they connected);
    another run's sockets stay (an executor closes what it owns: one for the registry's API alone has no
    hosts)."""
    with _LOCK:
        keys = [key for key in _PENDING if key[0] in names]
        items = [_PENDING.pop(key) for key in keys]
    for sock, _ in items:
        sock.close()
