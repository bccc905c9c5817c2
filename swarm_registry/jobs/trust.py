"""`trust-cert`: every node's docker trusts the registry (certs.d/HOST:PORT/ca.crt), verified from the node."""
from __future__ import annotations

from .. import certs, rotation
from ..results import OK
from ..settings import Settings
from ..steps import trust
from .runner import RUN, Job, run_plan


def trust_cert(settings: Settings, hosts: list[str], out, *, mode: str = RUN, sudo_password: str | None = None) -> int:
    anchor, made = certs.trust_anchor(settings, write=mode == RUN)
    if made:
        out(f"certs: {'made' if mode == RUN else 'would make'} {', '.join(made)} in {settings.state_dir}")
    endpoint = settings.registry.endpoint
    previous = rotation.previous_anchor(settings)  # during rotate-ca: the previous CA stays trusted
    job = Job("facts", lambda host: ("trust",), lambda host, f: (OK, "read"),
              lambda found, usable: [trust.plan(endpoint, anchor, h, found[h], previous=previous) for h in usable],
              per_host=True)
    return run_plan(settings, hosts, job, out, mode=mode, sudo_password=sudo_password)
