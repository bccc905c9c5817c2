"""directories: registry.data_dir (0755), config_dir (0755) and its auth/ (0700) on the registry node."""
from __future__ import annotations

from .. import commands
from ..facts import Facts
from . import Action, StepPlan, change, expect_ok, ok

STEP = "directories"


def plan(w, host: str, f: Facts) -> StepPlan:
    r = w.settings.registry
    actions = []
    if f.data_dir_mode == "" and not w.settings.storage.shared:  # s3: the data is in the bucket
        actions.append(Action(commands.make_dirs([r.data_dir], 0o755), expect_ok(f"created {r.data_dir}")))
    if f.auth_dir_mode != "700":
        actions.append(Action(commands.make_dirs([r.config_dir], 0o755), expect_ok(f"created {r.config_dir}")))
        actions.append(Action(commands.make_dirs([r.auth_dir], 0o700), expect_ok(f"{r.auth_dir} made 0700")))
    if not actions:
        return ok(STEP, host, "auth directory in place" if w.settings.storage.shared else
                  "data and auth directories in place")
    made = ([] if w.settings.storage.shared else [r.data_dir]) + [f"{r.auth_dir} (0700)"]
    return change(STEP, host, f"create/fix {', '.join(made)}", *actions)
