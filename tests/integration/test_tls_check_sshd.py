"""trust-cert's TLS check from each node, through real sshd hosts: the node's sshd opens the connection
(direct-tcpip), TLS runs in `inv` against the CA the node now trusts; no command runs on the node for it.
A TLS server on this machine stands in for the registry's port (answering GET /v2/ with 401, as the
registry does without credentials); its certificates are made here (the project's CA, a wrong CA, a name
the registry does not have, CN only). Where sshd refuses forwarding, curl on the node does the check."""
import datetime as dt
import socket
import ssl
import threading

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from swarm_registry import pki
from tests.conftest import require
from tests.integration.clirun import run, statuses

pytestmark = pytest.mark.sshd


class TlsServer:
    """HTTPS on 127.0.0.1:port answering every request with 401; `use(key, cert)` swaps its certificate."""

    def __init__(self, tmp_path):
        self.dir = tmp_path
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.ctx = None
        self.handshakes = 0
        threading.Thread(target=self._serve, daemon=True).start()

    def use(self, key: bytes, cert: bytes) -> None:
        (self.dir / "srv.crt").write_bytes(cert)
        (self.dir / "srv.key").write_bytes(key)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(self.dir / "srv.crt", self.dir / "srv.key")
        self.ctx = ctx

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            try:
                with self.ctx.wrap_socket(conn, server_side=True) as tls:
                    self.handshakes += 1
                    tls.recv(4096)
                    tls.sendall(b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            except (OSError, ssl.SSLError):
                conn.close()

    def close(self) -> None:
        self.sock.close()


def cn_only_cert(name: str, ca_key_pem: bytes, ca_pem: bytes) -> tuple[bytes, bytes]:  # (key, cert), as pki
    """A server certificate naming `name` in its CN only (the recipe's openssl command): docker refuses it."""
    ca_key, ca = serialization.load_pem_private_key(ca_key_pem, None), x509.load_pem_x509_certificate(ca_pem)
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
            .issuer_name(ca.subject).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=1)).not_valid_after(now + dt.timedelta(days=1))
            .sign(ca_key, hashes.SHA256()))
    return pki.key_pem(key), cert.public_bytes(serialization.Encoding.PEM)


@pytest.fixture
def server(tmp_path):
    srv = TlsServer(tmp_path)
    yield srv
    srv.close()


def project_ca(hosts, cfg) -> tuple[bytes, bytes]:
    made = run("inv", "certs", config=cfg)
    assert made.returncode == 0, made.stdout + made.stderr
    state = hosts.workdir / "state"
    return (state / "ca.key").read_bytes(), (state / "ca.crt").read_bytes()


def said(stdout: str, words: str) -> int:
    """How many per-host result lines say `words` (the recap's FAILED lines repeat them)."""
    return sum(words in line for line in stdout.splitlines() if not line.startswith("FAILED "))


def fresh(hosts) -> None:
    """Every host without certs.d, so that trust-cert installs (and checks) again."""
    for h in hosts.hosts:
        for path in sorted((h.etc_docker / "certs.d").rglob("*"), reverse=True):
            path.rmdir() if path.is_dir() else path.unlink()


def test_tls_is_checked_from_each_node_without_a_command_there(hosts, server):
    cfg = hosts.settings_file(registry={"host": "localhost", "port": server.port})
    ca_key, ca = project_ca(hosts, cfg)
    server.use(*pki.make_server_cert(["localhost"], "ecdsa-p256", 30, ca=(ca_key, ca)))
    plan = run("inv", "--dry", "trust-cert", config=cfg)  # the check is in the plan, as a comment line
    assert plan.returncode == 0 and server.handshakes == 0, plan.stdout
    assert said(plan.stdout, f"# TLS to localhost:{server.port} from this host: its sshd connects (direct-tcpip)") == 4
    assert said(plan.stdout, "if its sshd refuses: <files/scripts/verify-tls.sh>") == 4, plan.stdout
    assert " $ <files/scripts/verify-tls.sh>" not in plan.stdout  # " $ " marks what is sent: this is not
    before = [h.commands_started() for h in hosts.hosts]
    r = run("inv", "trust-cert", config=cfg)
    assert r.returncode == 0, r.stdout + r.stderr
    assert statuses(r.stdout, "trust-cert") == {h.name: "changed" for h in hosts.hosts}
    assert r.stdout.count(f"TLS to localhost:{server.port} verified (HTTP 401)") == len(hosts.hosts), r.stdout
    assert server.handshakes == len(hosts.hosts)  # one TLS connection per node reached the server
    # the facts command's shell ran the install; the check ran no command on the node (no curl)
    assert [h.commands_started() - b for h, b in zip(hosts.hosts, before)] == [1] * len(hosts.hosts)
    again = run("inv", "--dry", "trust-cert", config=cfg)
    assert again.stdout.count("already trusted") == 4 and "# TLS to" not in again.stdout

    # the wrong certificate on the registry's port: each node's check says which way it is wrong
    _, other_ca = pki.make_ca("not ours", "ecdsa-p256")
    cases = [
        (pki.make_server_cert(["localhost"], "ecdsa-p256", 30), "certificate not verified by ca.crt"),
        (pki.make_server_cert(["registry.example"], "ecdsa-p256", 30, ca=(ca_key, ca)), "certificate name mismatch"),
        (cn_only_cert("localhost", ca_key, ca), "certificate name mismatch"),  # curl 7.88 would pass this one
    ]
    for (key, cert), words in cases:
        server.use(key, cert)
        fresh(hosts)
        bad = run("inv", "trust-cert", config=cfg)
        assert bad.returncode != 0, (words, bad.stdout)
        assert statuses(bad.stdout, "trust-cert") == {h.name: "failed" for h in hosts.hosts}
        assert said(bad.stdout, f"trust installed, but the registry at localhost:{server.port} fails verification: "
                                f"{words}") == len(hosts.hosts), bad.stdout


def test_a_name_the_node_cannot_resolve_and_a_port_nothing_listens_on(hosts, server):
    cfg = hosts.settings_file(registry={"host": "no-such-registry.invalid", "port": 5000})
    r = run("inv", "trust-cert", config=cfg)
    assert r.returncode != 0
    assert statuses(r.stdout, "trust-cert") == {h.name: "failed" for h in hosts.hosts}
    assert said(r.stdout, "this node cannot resolve no-such-registry.invalid (") == len(hosts.hosts), r.stdout
    closed = socket.create_server(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()  # nothing listens there now
    ok = run("inv", "trust-cert", config=hosts.settings_file("closed.yaml", registry={"host": "localhost", "port": port}))
    assert ok.returncode == 0, ok.stdout  # installed; the registry may simply not run yet
    assert ok.stdout.count(f"registry localhost:{port} not reachable yet (connection refused)") == len(hosts.hosts)


def test_where_sshd_refuses_forwarding_curl_on_the_node_checks(tmp_path, server):
    from devtools.sshd_hosts import SshdHosts

    require("/usr/sbin/sshd")
    require("curl")
    with SshdHosts(2, tmp_path / "noforward", sshd_options="AllowTcpForwarding no") as hosts:
        cfg = hosts.settings_file(registry={"host": "localhost", "port": server.port})
        ca_key, ca = project_ca(hosts, cfg)
        server.use(*pki.make_server_cert(["localhost"], "ecdsa-p256", 30, ca=(ca_key, ca)))
        before = [h.commands_started() for h in hosts.hosts]
        r = run("inv", "trust-cert", config=cfg)
        assert r.returncode == 0, r.stdout + r.stderr
        assert r.stdout.count(f"TLS to localhost:{server.port} verified (HTTP 401)") == 2, r.stdout
        assert [h.commands_started() - b for h, b in zip(hosts.hosts, before)] == [2, 2]  # + verify-tls.sh
        server.use(*pki.make_server_cert(["registry.example"], "ecdsa-p256", 30, ca=(ca_key, ca)))
        fresh(hosts)
        bad = run("inv", "trust-cert", config=cfg)
        # curl 7.88 exits 60 for a name mismatch as for an unknown CA: the fallback cannot tell them apart
        assert bad.returncode != 0 and said(bad.stdout, "fails verification: certificate not verified by ca.crt "
                                                        "(curl exit 60)") == 2, bad.stdout
