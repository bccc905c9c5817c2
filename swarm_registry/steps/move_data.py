"""moving registry.node: the registry's data stays with the node that held it unless asked.

`old_holders` finds the nodes that still carry the registry label (the registry ran there). One
that holds data makes setup stop before any change, unless `--move-data` (the service is scaled
to 0, the data streamed node to node through this machine as a tar, and the file digests on both
sides compared) or `--abandon-data` (left where it is, said so). The label step then moves the
label, and deploy starts the registry on the new node.
"""
from __future__ import annotations

from .. import commands
from ..errors import Output
from ..facts import Facts
from ..results import CHANGED, FAILED
from . import Action, StepPlan, change, expect_ok

STOP = "stop registry"
STEP = "move data"
MOVE, ABANDON = "move", "abandon"


def old_holders(settings, m: Facts) -> list[str]:
    """Inventory hosts, other than registry.node, whose swarm node carries the registry label."""
    by_node = {h.node_name: name for name, h in settings.hosts.items()}
    key, wanted = settings.registry.label, settings.registry_host.node_name
    return [by_node.get(node, node) for node, labels in sorted(m.node_labels.items())
            if node != wanted and (labels or {}).get(key) == "true"]


def problems(settings, facts: dict[str, Facts], m: Facts, move: str) -> list[tuple[str, str]]:
    if settings.storage.shared:  # the data is in the bucket, not on a node (storage.migrate moves it there)
        return []
    reg, data = settings.registry.node, settings.registry.data_dir
    found = []
    for old in old_holders(settings, m):
        f = facts.get(old)
        if f is None:
            if move == MOVE:
                found.append((reg, f"registry.node moved from {old} to {reg}, but {old} is not reachable (or not in "
                                   "the inventory): its data cannot be read; bring it back, or use --abandon-data"))
            continue
        if not f.data_files or move == ABANDON:
            continue
        if move != MOVE:
            size = f.data_bytes or 0
            found.append((reg, f"registry.node moved from {old} to {reg}, and {old} holds registry data "
                               f"({size / 1048576:.1f} MiB in {data}): re-run with --move-data (copied to {reg} "
                               f"through this machine, digests compared) or --abandon-data (left on {old})"))
        elif facts[reg].data_files:
            found.append((reg, f"--move-data: {data} on {reg} is not empty; refusing to mix two registries' data"))
    return found


def compare(label: str):
    """The verdict of the copy: both ends succeeded and the file digests they computed are equal."""
    def verdict(out: Output, sent: Output) -> tuple[str, str]:
        got = out.values().get("digest", "")
        want = next((line.split("=", 1)[1] for line in sent.stderr.splitlines() if line.startswith("digest=")), "")
        if not out.ok or not sent.ok:
            return FAILED, f"{label} failed: {(out if not out.ok else sent).error()}"
        if not want or got != want:
            return FAILED, f"{label}: file digests differ after the copy ({want[:12]} sent, {got[:12]} received)"
        return CHANGED, f"{label}; every file's sha256 equal on both nodes ({got[:12]})"
    return verdict


def plans(w, manager: str, facts: dict[str, Facts], m: Facts, move: str) -> list[StepPlan]:
    """--move-data: scale the service to 0 on the manager, then stream the data to registry.node."""
    s = w.settings
    if move != MOVE or s.storage.shared:
        return []
    sources = [o for o in old_holders(s, m) if o in facts and facts[o].data_files]
    if not sources:
        return []
    old, reg, r = sources[0], s.registry.node, s.registry
    scale = commands.Command(("docker", "service", "scale", f"{r.service}=0"), timeout=300)
    values = {"data_dir": r.data_dir}
    send = commands.script("data-send", values, timeout=3600)
    receive = commands.script("data-receive", values, timeout=3600)
    label = f"moved {r.data_dir} from {old} to {reg}"
    return [change(STOP, manager, f"scale {r.service} to 0 (no write while its data moves)",
                   Action(scale, expect_ok(f"{r.service} scaled to 0"))),
            change(STEP, reg, f"copy {r.data_dir} from {old} through this machine",
                   Action(receive, compare(label), stream_from=(old, send), label=label))]
