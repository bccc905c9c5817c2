"""PKI checked with real tools: openssl verify/x509 and a real TLS handshake on loopback."""
import datetime as dt
import socket
import ssl
import subprocess
import threading

import pytest

from swarm_registry import certs, pki
from swarm_registry import settings as s
from swarm_registry.state import StateError
from tests.conftest import require

NOW = dt.datetime(2026, 11, 28, tzinfo=dt.timezone.utc)


def openssl(*args, input=None):
    return subprocess.run([require("openssl"), *args], input=input, capture_output=True)


@pytest.fixture
def ca_settings(base_settings):
    base_settings["cert"].update({"alt_names": ["10.0.0.10", "registry.alt.test"]})
    return s.from_mapping(base_settings)


def write(tmp_path, name, data):
    p = tmp_path / name
    p.write_bytes(data)
    return str(p)


def test_ca_mode_files_verify_with_openssl_and_have_typed_sans(ca_settings, tmp_path):
    bundle = certs.ensure(ca_settings)
    state = ca_settings.state_dir
    cert = state / "registry.onsen.lan.crt"
    assert sorted(p.name for p in state.iterdir()) == ["ca.crt", "ca.key", "registry.onsen.lan.crt",
                                                       "registry.onsen.lan.key"]
    assert {oct(p.stat().st_mode & 0o777) for p in state.iterdir()} == {"0o600"}
    assert oct(state.stat().st_mode & 0o777) == "0o700"
    r = openssl("verify", "-CAfile", str(state / "ca.crt"), str(cert))
    assert r.returncode == 0, r.stderr
    assert openssl("x509", "-checkend", str(300 * 86400), "-noout", "-in", str(cert)).returncode == 0
    assert openssl("x509", "-checkend", str(400 * 86400), "-noout", "-in", str(cert)).returncode == 1
    text = openssl("x509", "-noout", "-ext", "subjectAltName,extendedKeyUsage", "-in", str(cert)).stdout.decode()
    assert "DNS:registry.onsen.lan" in text and "DNS:registry.alt.test" in text and "IP Address:10.0.0.10" in text
    assert "TLS Web Server Authentication" in text
    ca_text = openssl("x509", "-noout", "-ext", "basicConstraints,keyUsage", "-in", str(state / "ca.crt")).stdout.decode()
    assert "CA:TRUE" in ca_text and "Certificate Sign" in ca_text
    assert bundle.trust_anchor == (state / "ca.crt").read_bytes()


def test_rsa4096_server_cert_and_sha256(base_settings):
    base_settings["cert"] = {"key_type": "rsa4096", "mode": "self-signed"}
    cfg = s.from_mapping(base_settings)
    bundle = certs.ensure(cfg)
    cert = cfg.state_dir / "registry.onsen.lan.crt"
    text = openssl("x509", "-noout", "-text", "-in", str(cert)).stdout.decode()
    assert "Public-Key: (4096 bit)" in text and "sha256WithRSAEncryption" in text
    assert openssl("verify", "-CAfile", str(cert), str(cert)).returncode == 0  # self-signed trusts itself
    assert bundle.ca_cert is None and bundle.trust_anchor == bundle.server_cert
    assert not (cfg.state_dir / "ca.crt").exists()


def test_reuse_is_idempotent_and_renewal_keeps_the_ca(ca_settings):
    first = certs.ensure(ca_settings)
    again = certs.ensure(ca_settings)
    assert again.changed == [] and again.server_cert == first.server_cert
    renewed = certs.ensure(ca_settings, force_renew=True)
    assert renewed.server_cert != first.server_cert and renewed.ca_cert == first.ca_cert
    assert sorted(renewed.changed) == ["registry.onsen.lan.crt", "registry.onsen.lan.key"]


def test_cert_near_expiry_is_reissued(ca_settings):
    old = certs.ensure(ca_settings, now=NOW - dt.timedelta(days=340))
    new = certs.ensure(ca_settings, now=NOW)
    assert new.server_cert != old.server_cert and "within renew_before_days" in new.reasons[0]


def test_changed_alt_names_reissue(base_settings, ca_settings):
    certs.ensure(ca_settings)
    base_settings["cert"]["alt_names"] = ["10.0.0.10"]
    changed = certs.ensure(s.from_mapping(base_settings))
    assert "differ from the settings" in changed.reasons[0]


def test_foreign_ca_in_state_dir_is_refused(ca_settings):
    certs.ensure(ca_settings)
    other_key, _ = pki.make_ca("other", "ecdsa-p256")
    (ca_settings.state_dir / "ca.key").write_bytes(other_key)
    with pytest.raises(StateError) as exc:
        certs.ensure(ca_settings)
    assert "does not match ca.key" in str(exc.value) and exc.value.exit_code == 2


def test_expired_ca_is_refused(ca_settings):
    key, cert = pki.make_ca("old", "ecdsa-p256", now=NOW - dt.timedelta(days=20), days=10)
    ca_settings.state_dir.mkdir(mode=0o700)
    for name, data in (("ca.key", key), ("ca.crt", cert)):
        (ca_settings.state_dir / name).write_bytes(data)
        (ca_settings.state_dir / name).chmod(0o600)
    with pytest.raises(StateError) as exc:
        certs.ensure(ca_settings, now=NOW)
    assert "expired" in str(exc.value)


def test_a_checked_ca_is_recorded_and_other_bytes_are_checked_again(ca_settings):
    """trust_anchor records a CA that passed every check (sha256 of the pair, expiry); the record never
    vouches for other bytes: a foreign key is still refused, and a garbled record means a full check."""
    certs.ensure(ca_settings)
    record = ca_settings.state_dir / certs.CA_CHECKED
    assert not record.exists()
    certs.trust_anchor(ca_settings, write=False, now=NOW)
    assert not record.exists()  # --check writes nothing
    anchor, made = certs.trust_anchor(ca_settings, now=NOW)
    assert made == [] and anchor == (ca_settings.state_dir / "ca.crt").read_bytes()
    assert oct(record.stat().st_mode & 0o777) == "0o600"
    digest, until = record.read_text().split()
    assert dt.datetime.fromisoformat(until) == pki.inspect(anchor).not_after
    assert certs.trust_anchor(ca_settings, now=NOW) == (anchor, [])  # the record is used: same answer
    other_key, _ = pki.make_ca("other", "ecdsa-p256")
    (ca_settings.state_dir / "ca.key").write_bytes(other_key)
    with pytest.raises(StateError) as exc:
        certs.trust_anchor(ca_settings, now=NOW)
    assert "does not match ca.key" in str(exc.value)
    record.write_text("garbage\n")
    (ca_settings.state_dir / "ca.key").write_bytes(b"not a key")
    with pytest.raises(StateError) as exc:
        certs.trust_anchor(ca_settings, now=NOW)
    assert "does not match ca.key" in str(exc.value) or "cannot be read" in str(exc.value)


def test_a_recorded_ca_is_still_refused_once_expired(ca_settings):
    certs.ensure(ca_settings, now=NOW)
    certs.trust_anchor(ca_settings, now=NOW)
    assert (ca_settings.state_dir / certs.CA_CHECKED).exists()
    with pytest.raises(StateError) as exc:
        certs.trust_anchor(ca_settings, now=NOW + dt.timedelta(days=20 * 365))
    assert "expired" in str(exc.value) and exc.value.exit_code == 2


def test_loose_state_dir_is_refused(ca_settings):
    certs.ensure(ca_settings)
    ca_settings.state_dir.chmod(0o755)
    with pytest.raises(StateError) as exc:
        certs.ensure(ca_settings)
    assert "mode 0755" in str(exc.value) and "chmod 700" in str(exc.value)


RENEWAL = [
    ({}, None),
    ({"names": ["other.test"]}, "differ"),
    ({"key_type": "rsa2048"}, "settings ask for rsa2048"),
    ({"renew_before_days": 400}, "within renew_before_days"),
    ({"now": NOW + dt.timedelta(days=400)}, "within renew_before_days"),
]


@pytest.mark.parametrize("change,reason", RENEWAL)
def test_renewal_reason_table(change, reason):
    ca_key, ca_cert = pki.make_ca("ca", "ecdsa-p256", now=NOW)
    key, cert = pki.make_server_cert(["r.test"], "ecdsa-p256", 365, ca=(ca_key, ca_cert), now=NOW)
    args = {"names": ["r.test"], "key_type": "ecdsa-p256", "renew_before_days": 30, "now": NOW,
            "ca_cert_pem": ca_cert, **change}
    got = pki.renewal_reason(cert, key, **args)
    assert (got is None) if reason is None else (reason in got)


def test_cert_from_another_ca_needs_renewal():
    _, ca_cert = pki.make_ca("ca", "ecdsa-p256", now=NOW)
    other = pki.make_ca("other", "ecdsa-p256", now=NOW)
    key, cert = pki.make_server_cert(["r.test"], "ecdsa-p256", 365, ca=other, now=NOW)
    assert "not signed by the current CA" in pki.renewal_reason(
        cert, key, names=["r.test"], key_type="ecdsa-p256", renew_before_days=30, now=NOW, ca_cert_pem=ca_cert)


def serve_once(server_ctx: ssl.SSLContext):
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(1)

    def run():
        conn, _ = sock.accept()
        try:
            with server_ctx.wrap_socket(conn, server_side=True) as tls:
                tls.sendall(b"hello")
        except (ssl.SSLError, OSError):
            pass
        finally:
            sock.close()

    threading.Thread(target=run, daemon=True).start()
    return sock.getsockname()[1]


def handshake(bundle, tmp_path, server_hostname: str, ok: bool, refusal: str | None = None) -> None:
    """A real TLS handshake with a server holding `bundle`'s certificate: verified for `server_hostname`
    against the CA when `ok`, else refused."""
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(write(tmp_path, "c.pem", bundle.server_cert), write(tmp_path, "k.pem", bundle.server_key))
    port = serve_once(server)
    client = ssl.create_default_context(cafile=write(tmp_path, "ca.pem", bundle.ca_cert))
    with socket.create_connection(("127.0.0.1", port)) as raw:
        if ok:
            with client.wrap_socket(raw, server_hostname=server_hostname) as tls:
                assert tls.recv(5) == b"hello"
        else:
            with pytest.raises(ssl.SSLCertVerificationError, match=refusal):
                client.wrap_socket(raw, server_hostname=server_hostname)


@pytest.mark.parametrize("server_hostname,ok", [("registry.onsen.lan", True), ("registry.alt.test", True),
                                                 ("wrong.example", False)])
def test_real_tls_handshake_verifies_against_the_ca(ca_settings, tmp_path, server_hostname, ok):
    handshake(certs.ensure(ca_settings), tmp_path, server_hostname, ok)


@pytest.mark.parametrize("address,ok", [("127.0.0.1", True), ("::1", True), ("127.0.0.2", False)])
def test_ip_san_verifies_by_address_in_a_real_handshake(base_settings, tmp_path, address, ok):
    """A certificate with IP SANs: a client that names the registry by address (no DNS name) verifies it;
    an address that is not among the SANs is refused."""
    base_settings["cert"].update({"alt_names": ["127.0.0.1", "::1"]})
    bundle = certs.ensure(s.from_mapping(base_settings))
    assert {"127.0.0.1", "::1"} <= set(pki.inspect(bundle.server_cert).sans)
    assert isinstance(pki.san_entry("127.0.0.1").value, __import__("ipaddress").IPv4Address)
    handshake(bundle, tmp_path, address, ok, refusal="IP address mismatch")
