"""The one error model: bad input (exit 2) and a host that failed (exit 1, per host); `Output`.

- `BadInput` (settings.SettingsError): any input, settings, argument or local state file that
  cannot be used. One line per problem naming the value and what is accepted; exit status 2;
  raised before anything remote runs.
- `HostError`: one host cannot be used or a command on it failed; that host is marked failed,
  the others go on; the run exits 1.
No module imports fabric for these: the execution layer (`remote/`) raises them.
"""
from __future__ import annotations

from dataclasses import dataclass

from .settings import EXIT_BAD_INPUT, SettingsError

BadInput = SettingsError
__all__ = ["BadInput", "EXIT_BAD_INPUT", "HostError", "Output", "TlsOutcome"]


class HostError(Exception):
    """The host cannot be used: unreachable, refused its key, or a command failed to run."""


@dataclass(frozen=True)
class Output:
    rc: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.rc == 0

    def expect_ok(self, what: str) -> str:
        """stdout (stripped) when the command succeeded; else HostError '<what> failed: <last error line>'."""
        if not self.ok:
            raise HostError(f"{what} failed: {self.error()}")
        return self.stdout.strip()

    def error(self) -> str:
        """The last non-empty stderr line (or stdout's), for a one-line message."""
        for text in (self.stderr, self.stdout):
            lines = [line.strip() for line in text.splitlines() if line.strip()]
            if lines:
                return lines[-1]
        return f"exit status {self.rc}"

    def values(self) -> dict[str, str]:
        """key=value lines of a script's output (the last of each key)."""
        out = {}
        for line in self.stdout.splitlines():
            key, sep, value = line.partition("=")
            if sep:
                out[key] = value
        return out


# What a TLS check from a node found (remote.tls_check; or curl's exit code, where sshd refuses forwarding)
VERIFIED = "verified"              # detail: the HTTP status of GET /v2/ ("000": no HTTP answer)
UNRESOLVED = "unresolved"          # the node cannot resolve the name
UNREACHABLE = "unreachable"        # refused, timed out, no route: nothing listens there yet
UNTRUSTED = "untrusted"            # the certificate does not chain to the CAs given
NAME_MISMATCH = "name-mismatch"    # the certificate does not name the registry (in a SAN)
HANDSHAKE = "handshake"            # TLS failed otherwise (not TLS there, protocol error)
FORWARDING_REFUSED = "forwarding-refused"  # the node's sshd refuses direct-tcpip (AllowTcpForwarding no)
UNCHECKED = "unchecked"            # nothing could check it (no forwarding and no curl on the node)


@dataclass(frozen=True)
class TlsOutcome:
    kind: str
    detail: str = ""
