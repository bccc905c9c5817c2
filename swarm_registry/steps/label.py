"""label: the registry nodes (registry.nodes) carry `registry.label=true`, and no other node does."""
from __future__ import annotations

from .. import commands
from ..facts import Facts
from . import Action, StepPlan, change, expect_ok, ok

STEP = "label"


def plan(w, host: str, f: Facts) -> StepPlan:
    s = w.settings
    key = s.registry.label
    nodes = [s.hosts[n].node_name for n in s.registry.nodes]
    actions, done = [], []
    for node in nodes:
        if (f.node_labels.get(node) or {}).get(key) != "true":
            actions.append(Action(commands.node_label_add(node, key), expect_ok(f"labelled {node}")))
            done.append(f"label {node} {key}=true")
    for other, labels in sorted(f.node_labels.items()):
        if other not in nodes and key in (labels or {}):
            actions.append(Action(commands.node_label_remove(other, key), expect_ok(f"unlabelled {other}")))
            done.append(f"remove {key} from {other} (no longer a registry node)")
    if not actions:
        return ok(STEP, host, f"node label {key}=true on {', '.join(nodes)} only")
    return change(STEP, host, "; ".join(done), *actions)
