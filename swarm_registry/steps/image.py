"""image: the registry image on the registry node; streamed from this machine (`docker save` |
ssh | `docker load`) when the node lacks it (or registry.preload_image and the IDs differ)."""
from __future__ import annotations

from ..commands import Command
from ..facts import Facts
from . import Action, StepPlan, change, expect_ok, ok

STEP = "image"


def plan(w, host: str, f: Facts) -> StepPlan:
    r = w.settings.registry
    local = w.local_image_id
    if (not f.image_id or r.preload_image) and local and local != f.image_id:
        load = Command(("docker", "load", "-q"), timeout=600)
        return change(STEP, host, f"stream {r.image} ({local[:19]}) from this machine",
                      Action(load, expect_ok(f"streamed {r.image} ({local[:19]}) to the node"), stream_image=r.image))
    return ok(STEP, host, f"image {r.image} " + ("present" if f.image_id else "will be pulled by the node"))
