"""setup's plan: facts + wanted -> the ordered steps, per host: commands to run, or ok with why.

Pure: no SSH, no clock. `jobs.setup` reads the facts, calls `setup_plan`, and either prints
the plan (--check: what would change; --dry: every command) or executes it; so all three
show the same plan. Cluster steps run on the registry node or on the manager; node steps on
every node that passed preflight.
"""
from __future__ import annotations

from .facts import Facts
from .steps import (StepPlan, bucket, compose_file, converge, credential_store, deploy, directories, htpasswd_file, image,
                    inventory, label, login, move_data, old_secrets, secrets, trust)
from .wanted import Wanted

CLUSTER_STEPS = (inventory.STEP, bucket.STEP, move_data.STOP, move_data.STEP, directories.STEP, htpasswd_file.STEP, secrets.STEP, label.STEP, image.STEP, compose_file.STEP,
                 deploy.STEP, converge.STEP, old_secrets.STEP)
NODE_STEPS = (trust.STEP, credential_store.STEP, login.STEP)
ORDER = CLUSTER_STEPS + NODE_STEPS


def node_plan(w: Wanted, facts: dict[str, Facts], nodes: list[str]) -> list[StepPlan]:
    """The node steps only (trust, credential store, login) for `nodes`: a node that joined later."""
    s = w.settings
    endpoint, anchor = s.registry.endpoint, w.bundle.trust_anchor
    steps = [trust.plan(endpoint, anchor, h, facts[h], previous=w.previous_anchor) for h in nodes]
    stores = [credential_store.plan(s, s.hosts[h], facts[h], w.helper_binary) for h in nodes]
    steps += stores
    steps += [login.plan(endpoint, s.registry.login_user, w.password, h, facts[h], helper_coming=bool(st.actions))
              for h, st in zip(nodes, stores)]
    return steps


def setup_plan(w: Wanted, facts: dict[str, Facts], manager: str, nodes: list[str]) -> list[StepPlan]:
    """Every step in ORDER; `nodes`: the hosts that passed preflight (manager and registry nodes among them).
    Registry-node steps run on each of registry.nodes (one replica each); the compose copy on the first."""
    s = w.settings
    reg, regs = s.registry.node, s.registry.nodes
    m, r = facts[manager], facts[reg]
    moving = move_data.plans(w, manager, facts, m, w.move)
    deploying = deploy.plan(w, manager, m, forced="scaled to 0 for the data move" if moving else "")
    steps = [
        inventory.plan(s, manager, m),
        *([bucket.plan(w, reg, r)] if s.storage.driver == "s3" else []),
        *moving,
        *(directories.plan(w, n, facts[n]) for n in regs),
        *(htpasswd_file.plan(w, n, facts[n]) for n in regs),
        secrets.plan(w, manager, m),
        label.plan(w, manager, m),
        *(image.plan(w, n, facts[n]) for n in regs),
        compose_file.plan(w, reg, r),
        deploying,
        converge.plan(w, manager, m, deploying=bool(deploying.actions)),
        old_secrets.plan(w, manager, m),
    ]
    return steps + node_plan(w, facts, nodes)
