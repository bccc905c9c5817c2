"""secrets: the TLS certificate and key (and with storage s3 the registry config) as swarm secrets named by their content hash, made through stdin."""
from __future__ import annotations

from .. import commands
from ..facts import Facts
from . import Action, StepPlan, change, expect_ok, ok

STEP = "secrets"


def plan(w, host: str, f: Facts) -> StepPlan:
    have = {name for name, _ in f.secrets}
    stack = w.settings.registry.stack
    wanted = [(w.names.cert, w.bundle.server_cert), (w.names.key, w.bundle.server_key)]
    if w.names.config:
        wanted.append((w.names.config, w.registry_config))  # storage s3: the config with keys and HTTP secret
    missing = [(n, d) for n, d in wanted if n not in have]
    if not missing:
        return ok(STEP, host, f"secrets {', '.join(n for n, _ in wanted)} exist")
    actions = [Action(commands.secret_create(n, d, stack), expect_ok(f"created secret {n}")) for n, d in missing]
    return change(STEP, host, f"create secrets {', '.join(n for n, _ in missing)} (content on stdin)", *actions)
