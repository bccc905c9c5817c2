"""pyinfra's equivalent of trust-cert: certs.d dir 0755, ca.crt 0644 (files.put uploads only when the sha differs).
Run by bench/run_bench.py: pyinfra -y --parallel N INVENTORY bench/pyinfra_deploy.py --data certs_dir=... --data cert_src=..."""
from pyinfra import host
from pyinfra.operations import files

files.directory(name="certs.d directory", path=host.data.certs_dir, mode="755", present=True)
files.put(name="ca.crt", src=host.data.cert_src, dest=f"{host.data.certs_dir}/ca.crt", mode="644")
