"""TLS and auth on the wire, with real clients: curl, openssl s_client, skopeo, the docker CLI."""
import subprocess

import pytest

from tests.conftest import require
from tests.integration.clirun import run
from tests.integration.labutil import CERTS, ENDPOINT, ensure_setup, node_exec

pytestmark = pytest.mark.lab
PASSWORD = "wire-pass-9012"
HOST, PORT = ENDPOINT.split(":")


@pytest.fixture(scope="module")
def lab(lab_config):
    ensure_setup(lab_config, PASSWORD)
    return lab_config


@pytest.fixture(scope="module")
def ca(lab):
    return str(lab.parent.parent / ".lab" / "state" / "ca.crt")


def sh(*argv, input=None):
    return subprocess.run(list(argv), capture_output=True, text=True, input=input, timeout=60)


def test_plain_http_is_refused(lab):
    r = sh(require("curl"), "-s", "-o", "/dev/null", "-w", "%{http_code}", f"http://{ENDPOINT}/v2/_catalog")
    assert r.stdout == "400"  # Go's TLS server answers plain HTTP with 400 and serves nothing


@pytest.mark.parametrize("version,ok", [("-tls1", False), ("-tls1_1", False), ("-tls1_2", True), ("-tls1_3", True)])
def test_tls_below_1_2_is_refused(lab, ca, version, ok):
    # @SECLEVEL=0 lets this client offer old versions, so a refusal is the server's
    r = sh(require("openssl"), "s_client", "-connect", f"{ENDPOINT}", "-servername", HOST, version,
           "-cipher", "DEFAULT:@SECLEVEL=0", "-CAfile", ca, "-verify_return_error", input="")
    assert (r.returncode == 0) == ok, r.stdout[-500:] + r.stderr[-500:]


def test_client_without_the_ca_fails_verification(lab):
    r = sh(require("curl"), "-s", "-o", "/dev/null", f"https://{ENDPOINT}/v2/")
    assert r.returncode == 60  # peer certificate cannot be authenticated with known CA certificates


def test_served_certificate_has_the_settings_sans(lab, ca):
    r = sh("openssl", "s_client", "-connect", ENDPOINT, "-servername", HOST, "-CAfile", ca, "-verify_return_error",
           input="")
    assert r.returncode == 0 and "Verify return code: 0 (ok)" in r.stdout
    cert = r.stdout[r.stdout.index("-----BEGIN CERTIFICATE-----"):r.stdout.index("-----END CERTIFICATE-----") + 25]
    sans = sh("openssl", "x509", "-noout", "-ext", "subjectAltName", input=cert).stdout
    assert f"DNS:{HOST}" in sans


def test_no_anonymous_read_or_write(lab, ca, tmp_path):
    catalog = sh("curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--cacert", ca, f"https://{ENDPOINT}/v2/_catalog")
    assert catalog.stdout == "401"
    certs = tmp_path / "certs"
    certs.mkdir()
    (certs / "ca.crt").write_text(open(ca).read())
    skopeo = require("skopeo")
    pull = sh(skopeo, "inspect", "--cert-dir", str(certs), "--authfile", str(tmp_path / "none.json"),
              f"docker://{ENDPOINT}/swarm-registry-smoke:latest")
    assert pull.returncode != 0 and "unauthorized" in (pull.stderr + pull.stdout).lower()
    # a push from a node that is logged out: 401 as well (then log it back in)
    assert run("inv", "logout", "--hosts", "node3", config=lab).returncode == 0
    try:
        build = node_exec(3, "sh", "-c", 'mkdir -p /tmp/anon && echo anon > /tmp/anon/f && '
                          'printf "FROM scratch\\nCOPY f /f\\n" > /tmp/anon/Dockerfile && '
                          'docker build -q -t "$1" /tmp/anon && rm -rf /tmp/anon', "sh", f"{ENDPOINT}/anon:1")
        assert build.returncode == 0, build.stderr
        push = node_exec(3, "docker", "push", f"{ENDPOINT}/anon:1")
        assert push.returncode != 0 and ("no basic auth credentials" in push.stderr or "unauthorized" in push.stderr)
        pull_anon = node_exec(3, "docker", "pull", f"{ENDPOINT}/swarm-registry-smoke:none")
        assert pull_anon.returncode != 0
    finally:
        node_exec(3, "docker", "rmi", "-f", f"{ENDPOINT}/anon:1")
        assert run("inv", "login", "--hosts", "node3", config=lab, env={"REGISTRY_PASSWORD": PASSWORD}).returncode == 0


def test_docker_on_a_node_verifies_with_certs_d(lab):
    """The docker CLI on a node: with ca.crt it talks TLS; without, x509 unknown authority."""
    ok = node_exec(2, "docker", "pull", f"{ENDPOINT}/does-not-exist:1")
    assert "x509" not in ok.stderr  # TLS fine (the image just does not exist)
    saved = node_exec(2, "cat", f"{CERTS}/ca.crt").stdout
    node_exec(2, "rm", "-rf", CERTS)
    try:
        bad = node_exec(2, "docker", "pull", f"{ENDPOINT}/does-not-exist:1")
        assert "x509: certificate signed by unknown authority" in bad.stderr
    finally:
        assert run("inv", "trust-cert", "--hosts", "node2", config=lab).returncode == 0
    assert node_exec(2, "cat", f"{CERTS}/ca.crt").stdout == saved
