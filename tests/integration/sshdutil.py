"""Shared by the tests on plain sshd hosts: the registry endpoint they use and where trust lands."""
ENDPOINT = "localhost:5000"  # every sshd host resolves it (see devtools/sshd_hosts.py settings)


def installed(h):
    """The trust anchor trust-cert installs on sshd host `h` (its private /etc/docker)."""
    return h.etc_docker / "certs.d" / ENDPOINT / "ca.crt"
