"""old secrets: versions of our secrets no longer in use, beyond the newest registry.secrets_keep
of each kind, are removed. A secret still in use is kept (ok, said so); any other failure fails."""
from __future__ import annotations

from .. import commands
from ..errors import Output
from ..facts import Facts
from ..results import CHANGED, FAILED, OK
from . import Action, StepPlan, change, ok

STEP = "old secrets"


def stale(secrets: list[tuple[str, str]], in_use: set[str], keep: int) -> list[str]:
    """Secrets to remove: those not in use, beyond the `keep` newest of each kind (.crt / .key / .yml)."""
    out = []
    for kind in (".crt-", ".key-", ".yml-"):
        mine = sorted((s for s in secrets if kind in s[0] and s[0] not in in_use), key=lambda s: s[1], reverse=True)
        out += [name for name, _ in mine[keep:]]
    return out


def verdict(out: Output) -> tuple[str, str]:
    if out.ok:
        return CHANGED, "removed old secret versions"
    if "is in use by" in out.stderr:
        return OK, f"old secrets still in use, kept for now: {out.error()}"
    return FAILED, f"docker secret rm failed: {out.error()}"


def plan(w, host: str, f: Facts) -> StepPlan:
    keep = w.settings.registry.secrets_keep
    names = stale(f.secrets, {w.names.cert, w.names.key, w.names.config}, keep)
    if not names:
        return ok(STEP, host, f"no old secret versions beyond the {keep} kept")
    return change(STEP, host, f"remove old secrets {', '.join(names)}", Action(commands.secret_remove(names), verdict))
