"""secrets: the TLS certificate and key as swarm secrets named by their content hash, made through stdin."""
from __future__ import annotations

from .. import commands
from ..facts import Facts
from . import Action, StepPlan, change, expect_ok, ok

STEP = "secrets"


def plan(w, host: str, f: Facts) -> StepPlan:
    have = {name for name, _ in f.secrets}
    stack = w.settings.registry.stack
    missing = [(n, d) for n, d in ((w.names.cert, w.bundle.server_cert), (w.names.key, w.bundle.server_key))
               if n not in have]
    if not missing:
        return ok(STEP, host, f"secrets {w.names.cert}, {w.names.key} exist")
    actions = [Action(commands.secret_create(n, d, stack), expect_ok(f"created secret {n}")) for n, d in missing]
    return change(STEP, host, f"create secrets {', '.join(n for n, _ in missing)} (content on stdin)", *actions)
