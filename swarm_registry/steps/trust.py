"""trust-cert: the node's docker trusts the registry: certs.d/HOST:PORT/ca.crt (0644, dir 0755)
holds our trust anchor and nothing else is there; after a change, TLS is verified from the node."""
from __future__ import annotations

from .. import commands
from ..errors import Output
from ..facts import Facts, parse
from ..results import CHANGED, FAILED
from . import Action, StepPlan, change, expect_ok, failed, ok

STEP = "trust-cert"
# curl exit codes: the registry could not be reached at all
UNREACHABLE = {7: "connection refused", 28: "timed out"}
# curl exit codes: TLS failed (peer certificate not verified, handshake failed, name mismatch)
TLS_FAILED = {35: "TLS handshake failed", 51: "certificate name mismatch", 58: "local certificate problem",
              60: "certificate not verified by ca.crt", 77: "cannot read ca.crt"}


PREVIOUS = "ca-previous.crt"  # during rotate-ca: the previous CA, trusted beside ca.crt (docker reads every *.crt)


def converged(f: Facts, anchor: bytes, previous: bytes | None = None) -> bool:
    return (f.trust == f"{commands.sha256(anchor)}:644:755"
            and f.trust_previous == (f"{commands.sha256(previous)}:644" if previous is not None else ""))


def strays_message(endpoint: str, strays: str) -> str:
    return (f"{commands.certs_dir(endpoint)} also holds {', '.join(strays.split())}: docker accepts only ca.crt "
            "there (a .key/.cert pair is a client certificate); remove them")


def command(endpoint: str, anchor: bytes) -> commands.Command:
    return commands.script("trust-cert", {"endpoint": endpoint, "sha": commands.sha256(anchor)}, stdin=anchor)


def verdict_for(endpoint: str, anchor: bytes):
    def verdict(out: Output) -> tuple[str, str]:
        f = parse(out.stdout)
        if out.rc != 0 or f.trust != f"{commands.sha256(anchor)}:644:755":
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


def previous_path(endpoint: str) -> str:
    return f"{commands.certs_dir(endpoint)}/{PREVIOUS}"


def plan(endpoint: str, anchor: bytes, host: str, f: Facts, *, previous: bytes | None = None,
         step: str = STEP) -> StepPlan:
    """`previous`: the previous CA, trusted too while rotate-ca runs (installed before ca.crt changes);
    without, a ca-previous.crt left there is removed (after ca.crt is in place)."""
    if f.trust_strays:
        return failed(step, host, strays_message(endpoint, f.trust_strays))
    if converged(f, anchor, previous):
        return ok(step, host, "already trusted (ca.crt sha256 and modes match)" +
                  (f"; {PREVIOUS} too (rotate-ca)" if previous is not None else ""))
    d, prev = commands.certs_dir(endpoint), previous_path(endpoint)
    first, last, what = [], [], []
    if previous is not None and f.trust_previous != f"{commands.sha256(previous)}:644":
        first = [Action(commands.make_dirs([d], 0o755), expect_ok(f"{d} in place")),
                 Action(commands.converge_file(prev, previous, 0o644), expect_ok(f"installed {PREVIOUS}"))]
        what.append(f"install {prev} (the previous CA, still trusted during rotate-ca)")
    mine = []
    if f.trust != f"{commands.sha256(anchor)}:644:755":
        mine = [Action(command(endpoint, anchor), verdict_for(endpoint, anchor))]
        what.append(f"install {d}/ca.crt and verify TLS from the node")
    if previous is None and f.trust_previous:
        last = [Action(commands.remove_paths([prev]), expect_ok(f"removed {PREVIOUS} (rotation over)"))]
        what.append(f"remove {prev} (the previous CA: rotation over)")
    return change(step, host, "; ".join(what), *first, *mine, *last)
