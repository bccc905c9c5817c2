"""htpasswd: auth_dir/htpasswd (0600) holds exactly the users listed in settings `users`."""
from __future__ import annotations

from .. import commands
from ..facts import Facts
from . import Action, StepPlan, change, expect_ok, ok

STEP = "htpasswd"


def plan(w, host: str, f: Facts) -> StepPlan:
    path = f"{w.settings.registry.auth_dir}/htpasswd"
    users = ", ".join(w.settings.users)
    note = (f"; not deployed (not in settings users): {', '.join(w.unlisted_users)}" if w.unlisted_users else "")
    if f.htpasswd == f"{commands.sha256(w.htpasswd)}:600":
        return ok(STEP, host, f"htpasswd up to date ({users}){note}")
    cmd = commands.converge_file(path, w.htpasswd, 0o600, secret=True)
    return change(STEP, host, f"upload {path} (0600: {users}){note}",
                  Action(cmd, expect_ok(f"uploaded {path} (0600: {users}){note}")))
