"""label: the registry node carries `registry.label=true`, and no other node does."""
from __future__ import annotations

from .. import commands
from ..facts import Facts
from . import Action, StepPlan, change, expect_ok, ok

STEP = "label"


def plan(w, host: str, f: Facts) -> StepPlan:
    key = w.settings.registry.label
    node = w.settings.registry_host.node_name
    actions, done = [], []
    if (f.node_labels.get(node) or {}).get(key) != "true":
        actions.append(Action(commands.node_label_add(node, key), expect_ok(f"labelled {node}")))
        done.append(f"label {node} {key}=true")
    for other, labels in sorted(f.node_labels.items()):
        if other != node and key in (labels or {}):
            actions.append(Action(commands.node_label_remove(other, key), expect_ok(f"unlabelled {other}")))
            done.append(f"remove {key} from {other} (no longer registry.node)")
    if not actions:
        return ok(STEP, host, f"node label {key}=true on {node} only")
    return change(STEP, host, "; ".join(done), *actions)
