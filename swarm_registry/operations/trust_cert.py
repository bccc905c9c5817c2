"""trust-cert: make a node's docker trust the registry (`certs.d/HOST:PORT/ca.crt`).

One remote command per host compares content and modes, writes only when they differ
(temp file + rename), lists stray files, and verifies the registry's TLS handshake
against the installed file when the registry answers.
"""
from __future__ import annotations

from .. import commands
from ..results import CHANGED, FAILED, OK

# curl exit codes: the registry could not be reached at all
UNREACHABLE = {6: "name not resolved", 7: "connection refused", 28: "timed out"}
# curl exit codes: TLS failed (peer certificate not verified, handshake failed, name mismatch)
TLS_FAILED = {35: "TLS handshake failed", 51: "certificate name mismatch", 58: "local certificate problem",
              60: "certificate not verified by ca.crt", 77: "cannot read ca.crt"}


def command(endpoint: str, anchor: bytes, check: bool) -> commands.Command:
    return commands.trust_cert(endpoint, anchor, check=check)


def parse(rc: int, stdout: str, stderr: str, endpoint: str) -> tuple[str, str]:
    """(status, message) from the trust-cert script's output."""
    facts = dict(line.split("=", 1) for line in stdout.splitlines() if "=" in line)
    if rc != 0 or "state" not in facts:
        detail = (stderr.strip().splitlines() or [f"exit status {rc}"])[-1]
        return FAILED, f"could not install {commands.certs_dir(endpoint)}/ca.crt: {detail}"
    state = facts["state"]
    status = OK if state == "ok" else CHANGED
    done = {"ok": "already trusted", "changed": "trust installed", "would-change": "would install trust"}[state]
    strays = facts.get("strays", "").split()
    if strays:
        return FAILED, (f"{done}, but {commands.certs_dir(endpoint)} also holds {', '.join(strays)}: docker "
                        "accepts only ca.crt there (a .key/.cert pair is a client certificate); remove them")
    verify = facts.get("verify", "skipped").split()
    if verify[0] == "skipped":
        note = "not verified (check mode)" if state == "would-change" else "not verified (no curl on the node)"
        return status, f"{done}; {note}"
    curl_rc = int(verify[0])
    code = verify[1] if len(verify) > 1 else "000"
    if curl_rc == 0:
        return status, f"{done}; TLS to {endpoint} verified (HTTP {code})"
    if curl_rc in TLS_FAILED:
        return FAILED, f"{done}, but the registry at {endpoint} fails verification: {TLS_FAILED[curl_rc]} (curl exit {curl_rc})"
    reason = UNREACHABLE.get(curl_rc, f"curl exit {curl_rc}")
    return status, f"{done}; registry {endpoint} not reachable yet ({reason})"
