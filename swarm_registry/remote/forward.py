"""The registry's API over SSH, like `ssh -L`: a port on 127.0.0.1 of this machine whose connections
are carried by a host's SSH transport (a `direct-tcpip` channel) to an address and port as that host
sees them. For a registry node behind a bastion (ssh.forward_registry), where this machine has no
route to the registry's port; TLS still runs end to end between this machine and the registry."""
from __future__ import annotations

import select
import socket
import threading

import paramiko

from ..errors import HostError


class Forward:
    """Listens on 127.0.0.1:`port` (chosen by the kernel); each connection accepted there gets its own
    channel to `dest` over `transport`, pumped both ways by a thread until either side closes."""

    def __init__(self, transport: paramiko.Transport, dest: tuple[str, int], where: str):
        self.transport, self.dest, self.where = transport, dest, where
        self._listener = socket.create_server(("127.0.0.1", 0), backlog=16)
        self.port = self._listener.getsockname()[1]
        self._closed = threading.Event()
        threading.Thread(target=self._accept, daemon=True, name=f"forward-{where}").start()

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                client, peer = self._listener.accept()
            except OSError:
                return  # closed
            try:
                chan = self.transport.open_channel("direct-tcpip", self.dest, peer, timeout=10)
            except (paramiko.SSHException, OSError, EOFError):
                client.close()  # the HTTP client sees the connection closed; open() told why beforehand
                continue
            threading.Thread(target=_pump, args=(client, chan), daemon=True).start()

    def close(self) -> None:
        self._closed.set()
        self._listener.close()


def _pump(sock: socket.socket, chan: paramiko.Channel) -> None:
    try:
        while True:
            ready, _, _ = select.select([sock, chan], [], [], 60)
            if not ready and chan.closed:
                return
            for src, dst in ((sock, chan), (chan, sock)):
                if src in ready:
                    data = src.recv(1 << 16)
                    if not data:
                        return
                    dst.sendall(data)
    except OSError:
        return
    finally:
        chan.close()
        sock.close()


PROHIBITED = 1  # SSH_OPEN_ADMINISTRATIVELY_PROHIBITED (RFC 4254); 2, connect failed: nothing listens yet


def check_allowed(transport: paramiko.Transport, dest: tuple[str, int], where: str) -> None:
    """One channel opened and closed: sshd allows the forward (else one line saying how to fix it). Nothing
    listening there yet is fine (setup forwards before the registry runs)."""
    try:
        transport.open_channel("direct-tcpip", dest, ("127.0.0.1", 0), timeout=10).close()
    except paramiko.ChannelException as exc:
        if exc.code == PROHIBITED:
            raise HostError(f"{where}: sshd refuses to forward to {dest[0]}:{dest[1]} ({exc.text}): allow it there "
                            "(AllowTcpForwarding yes) or set ssh.forward_registry: never") from None
    except (paramiko.SSHException, OSError, EOFError) as exc:
        raise HostError(f"{where}: cannot forward to {dest[0]}:{dest[1]}: {exc}") from None
