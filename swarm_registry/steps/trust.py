"""trust-cert: the node's docker trusts the registry: certs.d/HOST:PORT/ca.crt (0644, dir 0755)
holds our trust anchor and nothing else is there; after a change, TLS is verified from the node: the
node's sshd opens the connection (its resolver and routes) and TLS runs on this machine against the
CAs the node now trusts (remote.tls_check); curl on the node where its sshd refuses forwarding."""
from __future__ import annotations

from .. import commands
from ..errors import (FORWARDING_REFUSED, HANDSHAKE, NAME_MISMATCH, UNCHECKED, UNREACHABLE, UNRESOLVED, UNTRUSTED,
                      VERIFIED, Output, TlsOutcome)
from ..facts import Facts, parse
from ..results import CHANGED, FAILED
from . import Action, StepPlan, TlsCheck, change, expect_ok, failed, ok

STEP = "trust-cert"
# curl's exit codes (the fallback, verify-tls.sh), read as the outcomes remote.tls_check gives
CURL_CODES = {6: (UNRESOLVED, "curl exit 6"), 7: (UNREACHABLE, "connection refused"), 28: (UNREACHABLE, "timed out"),
              35: (HANDSHAKE, "curl exit 35"), 51: (NAME_MISMATCH, "curl exit 51"),
              58: (UNTRUSTED, "local certificate problem, curl exit 58"), 60: (UNTRUSTED, "curl exit 60"),
              77: (UNTRUSTED, "cannot read ca.crt, curl exit 77")}


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
        return CHANGED, "trust installed"
    return verdict


def host_port(endpoint: str) -> tuple[str, int]:
    """HOST:PORT or [ADDR]:PORT -> (name or address, port)."""
    host, _, port = endpoint.rpartition(":")
    return host.strip("[]"), int(port)


def tls_check(endpoint: str, cas: bytes) -> Action:
    """TLS to the registry from the node, trusting `cas` (what certs.d/ENDPOINT now holds)."""
    host, port = host_port(endpoint)
    fallback = commands.script("verify-tls", {"endpoint": endpoint})
    return Action(None, tls_verdict(endpoint), tls=TlsCheck(host, port, cas, fallback, outcome_from_curl))


def outcome_from_curl(out: Output) -> TlsOutcome:
    """verify-tls.sh's `verify=RC CODE` (curl's exit code and HTTP status), or `verify=skipped` (no curl)."""
    verify = out.values().get("verify", "skipped").split()
    if verify[0] != "skipped" and verify[0].isdigit():
        rc = int(verify[0])
        if rc == 0:
            return TlsOutcome(VERIFIED, verify[1] if len(verify) > 1 else "000")
        kind, detail = CURL_CODES.get(rc, (UNREACHABLE, f"curl exit {rc}"))
        return TlsOutcome(kind, detail)
    return TlsOutcome(UNCHECKED, "the node's sshd refuses TCP forwarding and the node has no curl")


def tls_verdict(endpoint: str):
    host = host_port(endpoint)[0]

    def verdict(o: TlsOutcome) -> tuple[str, str]:
        failing = f"trust installed, but the registry at {endpoint} fails verification"
        if o.kind == VERIFIED:
            return CHANGED, f"TLS to {endpoint} verified (HTTP {o.detail})"
        if o.kind == UNTRUSTED:
            return FAILED, f"{failing}: certificate not verified by ca.crt ({o.detail})"
        if o.kind == NAME_MISMATCH:
            return FAILED, f"{failing}: certificate name mismatch ({o.detail})"
        if o.kind == HANDSHAKE:
            return FAILED, f"{failing}: TLS handshake failed ({o.detail})"
        if o.kind == UNRESOLVED:
            return FAILED, (f"trust installed, but this node cannot resolve {host} ({o.detail}): add it to DNS or "
                            "/etc/hosts on the node, pointing at the registry node")
        if o.kind == UNREACHABLE:
            return CHANGED, f"registry {endpoint} not reachable yet ({o.detail})"
        if o.kind == FORWARDING_REFUSED:  # only without a fallback
            return CHANGED, f"TLS not verified (the node's sshd refuses TCP forwarding: {o.detail})"
        return CHANGED, f"TLS not verified ({o.detail})"
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
        cas = anchor + (previous if previous is not None else b"")  # what docker on the node trusts now
        mine = [Action(command(endpoint, anchor), verdict_for(endpoint, anchor)), tls_check(endpoint, cas)]
        what.append(f"install {d}/ca.crt and verify TLS from the node")
    if previous is None and f.trust_previous:
        last = [Action(commands.remove_paths([prev]), expect_ok(f"removed {PREVIOUS} (rotation over)"))]
        what.append(f"remove {prev} (the previous CA: rotation over)")
    return change(step, host, "; ".join(what), *first, *mine, *last)
