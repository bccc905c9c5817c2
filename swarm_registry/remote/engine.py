"""The Docker engine's `GET /info` over its unix socket, opened by the host's sshd (a
`direct-streamlocal@openssh.com` channel, like `ssh -L PORT:/var/run/docker.sock`): the `docker` fact
with no process started on the host. `docker info` costs a node about 30 ms of CPU, most of it the docker
CLI starting (bench/HISTORY.md); the engine answers /info in a few. sshd opens the socket as the login
user: root, or a user in the docker group; where commands go through sudo it is not asked (Session). Where
sshd cannot open it (AllowStreamLocalForwarding no, a key with no-port-forwarding, no engine on the default
socket, a user outside the docker group), the request answers None and the facts command reads the fact
with `docker info` as before."""
from __future__ import annotations

import socket

import paramiko

SOCKET = "/var/run/docker.sock"  # the engine's default socket, as the docker CLI finds it without DOCKER_HOST
_REQUEST = b"GET /info HTTP/1.1\r\nHost: docker\r\nUser-Agent: swarm-registry\r\nConnection: close\r\n\r\n"


class InfoRequest:
    """`GET /info` sent on its own channel; `answer()` reads the reply (the facts command runs meanwhile)."""

    def __init__(self, chan: paramiko.Channel, timeout: float):
        self._chan = chan
        chan.settimeout(timeout)
        chan.sendall(_REQUEST)

    def answer(self) -> bytes | None:
        """The JSON body of a 200 answer, else None (the caller falls back to `docker info`)."""
        import http.client  # here, not at start-up: trust-cert never asks (tests/unit/test_startup_imports.py)

        try:
            reply = http.client.HTTPResponse(self._chan)  # type: ignore[arg-type]  # makefile("rb") is all it uses
            reply.begin()
            body = reply.read()
            return body if reply.status == 200 else None
        except (http.client.HTTPException, OSError, EOFError, paramiko.SSHException):
            return None
        finally:
            self._chan.close()


def ask_info(transport: paramiko.Transport, timeout: float) -> InfoRequest | None:
    """Open the channel to the engine's socket and send the request; None where sshd refuses or cannot."""
    try:
        chan = transport.open_streamlocal(SOCKET, timeout=timeout)  # session._Transport
        return InfoRequest(chan, timeout)
    except (paramiko.ChannelException, paramiko.SSHException, OSError, EOFError, socket.timeout):
        return None
