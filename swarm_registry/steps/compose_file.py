"""compose file: a copy of the deployed stack file in config_dir, for the operator. Only a copy:
what is deployed is read back from the swarm (see deploy), never from this file."""
from __future__ import annotations

from .. import commands
from ..facts import Facts, compose_path
from . import Action, StepPlan, change, expect_ok, ok

STEP = "compose file"


def plan(w, host: str, f: Facts) -> StepPlan:
    path = compose_path(w.settings)
    if f.compose == f"{commands.sha256(w.stack)}:644":
        return ok(STEP, host, f"{path} up to date")
    return change(STEP, host, f"write {path}", Action(commands.converge_file(path, w.stack, 0o644),
                                                      expect_ok(f"wrote {path}")))
