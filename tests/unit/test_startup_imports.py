"""What a trust-cert run imports at start-up: no module it does not use (the start-up cost is most of a
re-run at 8 hosts, bench/RESULTS.md). A fresh interpreter each, as `fab -H nodes trust-cert` starts."""
import subprocess
import sys

TRUST_PATH = ("import swarm_registry.cli, swarm_registry.jobs.trust, swarm_registry.remote.executor, "
              "swarm_registry.remote.session, fabfile, tasks")


def loaded(code: str) -> set[str]:
    out = subprocess.run([sys.executable, "-c", code + "; import sys; print(' '.join(sys.modules))"],
                         capture_output=True, text=True, check=True, cwd=str(__import__("pathlib").Path(
                             __file__).resolve().parents[2])).stdout
    return set(out.split())


def test_the_trust_cert_path_imports_neither_requests_nor_passlib_nor_pyrage():
    mods = loaded(TRUST_PATH)
    assert "swarm_registry.remote.executor" in mods and "paramiko" in mods  # the path itself was loaded
    for heavy in ("requests", "urllib3", "passlib", "pyrage", "boto3", "swarm_registry.registry_http",
                  "http.client"):
        assert heavy not in mods, f"{heavy} imported on trust-cert's start-up path"


def test_the_api_path_does_import_requests():  # positive control: the probe sees an import when there is one
    assert "requests" in loaded("import swarm_registry.registry_http")


def test_trust_cert_parses_the_ca_once_then_reads_it_without_cryptography_x509(tmp_path):
    """A trust-cert run after the CA passed its checks (certs.CA_CHECKED) does not import cryptography.x509
    (~25 ms of start-up); the first run does (positive control), and so does one after the CA changed."""
    settings = tmp_path / "settings.yaml"
    settings.write_text(f"hosts:\n  n1: {{address: 127.0.0.1, roles: [manager]}}\n"
                        f"registry: {{host: registry.test, node: n1}}\nstate_dir: {tmp_path / 'state'}\n")
    probe = (f"import os; os.environ['SWARM_REGISTRY_CONFIG'] = {str(settings)!r}; " + TRUST_PATH +
             "; from swarm_registry import certs, settings; certs.trust_anchor(settings.load())")
    subprocess.run([sys.executable, "-c", f"import os; os.environ['SWARM_REGISTRY_CONFIG'] = {str(settings)!r}; "
                    "from swarm_registry import certs, settings; certs.ensure(settings.load())"],
                   check=True, cwd=str(__import__("pathlib").Path(__file__).resolve().parents[2]))
    assert "cryptography.x509" in loaded(probe)  # first: a full check, recorded
    assert (tmp_path / "state" / "ca.checked").exists()
    assert "cryptography.x509" not in loaded(probe)
    crt = tmp_path / "state" / "ca.crt"
    crt.write_bytes(crt.read_bytes() + b"\n")  # other bytes: checked again
    assert "cryptography.x509" in loaded(probe)
