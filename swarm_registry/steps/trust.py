"""trust-cert: the node's docker trusts the registry: certs.d/HOST:PORT/ca.crt (0644, dir 0755)
holds our trust anchor and nothing else is there; after a change, TLS is verified from the node."""
from __future__ import annotations

from .. import commands
from ..errors import Output
from ..facts import Facts, parse
from ..results import CHANGED, FAILED
from . import Action, StepPlan, change, failed, ok

STEP = "trust-cert"
# curl exit codes: the registry could not be reached at all
UNREACHABLE = {7: "connection refused", 28: "timed out"}
# curl exit codes: TLS failed (peer certificate not verified, handshake failed, name mismatch)
TLS_FAILED = {35: "TLS handshake failed", 51: "certificate name mismatch", 58: "local certificate problem",
              60: "certificate not verified by ca.crt", 77: "cannot read ca.crt"}


def converged(f: Facts, anchor: bytes) -> bool:
    return f.trust == f"{commands.sha256(anchor)}:644:755"


def strays_message(endpoint: str, strays: str) -> str:
    return (f"{commands.certs_dir(endpoint)} also holds {', '.join(strays.split())}: docker accepts only ca.crt "
            "there (a .key/.cert pair is a client certificate); remove them")


def command(endpoint: str, anchor: bytes) -> commands.Command:
    return commands.script("trust-cert", {"endpoint": endpoint, "sha": commands.sha256(anchor)}, stdin=anchor)


def verdict_for(endpoint: str, anchor: bytes):
    def verdict(out: Output) -> tuple[str, str]:
        f = parse(out.stdout)
        if out.rc != 0 or not converged(f, anchor):
            return FAILED, f"could not install {commands.certs_dir(endpoint)}/ca.crt: {out.error()}"
        if f.trust_strays:
            return FAILED, "trust installed, but " + strays_message(endpoint, f.trust_strays)
        verify = out.values().get("verify", "skipped").split()
        if verify[0] == "skipped":
            return CHANGED, "trust installed; not verified (no curl on the node)"
        rc, code = int(verify[0]), (verify[1] if len(verify) > 1 else "000")
        if rc == 0:
            return CHANGED, f"trust installed; TLS to {endpoint} verified (HTTP {code})"
        if rc in TLS_FAILED:
            return FAILED, (f"trust installed, but the registry at {endpoint} fails verification: {TLS_FAILED[rc]} "
                            f"(curl exit {rc})")
        if rc == 6:
            host = endpoint.rsplit(":", 1)[0]
            return FAILED, (f"trust installed, but this node cannot resolve {host} (curl exit 6): add it to DNS or "
                            f"/etc/hosts on the node, pointing at the registry node")
        return CHANGED, f"trust installed; registry {endpoint} not reachable yet ({UNREACHABLE.get(rc, f'curl exit {rc}')})"
    return verdict


def plan(endpoint: str, anchor: bytes, host: str, f: Facts) -> StepPlan:
    if f.trust_strays:
        return failed(STEP, host, strays_message(endpoint, f.trust_strays))
    if converged(f, anchor):
        return ok(STEP, host, "already trusted (ca.crt sha256 and modes match)")
    return change(STEP, host, f"install {commands.certs_dir(endpoint)}/ca.crt and verify TLS from the node",
                  Action(command(endpoint, anchor), verdict_for(endpoint, anchor)))
