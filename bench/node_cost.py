#!/usr/bin/env python3
"""What one node pays for trust-cert: CPU (user+sys, the shell and every process it starts) of the
remote commands `fab -H nodes trust-cert` sends, run here by sh as the product sends them, without ssh
or sshd: the facts command wrapped by commands.holding (its shell then waits on stdin), and on a first
run the trust script sent through that held shell (its length, its shell string, the certificate, EOF:
what Session._send_held writes); on a re-run the held shell reads EOF and ends.

Cases: a first run (no certs.d/ENDPOINT: facts, then install, verify, read back); a re-run (ca.crt in
place: facts only). Up to e154950 the script also ran curl against ENDPOINT, where the TLS check now runs
on the control machine through sshd, no process on the node; ENDPOINT is a refused port on loopback, as in
bench/run_bench.py. certs.d is a temp dir (the commands' /etc/docker/certs.d rewritten), nothing is
written outside it.

Usage (from the project root):
    .venv/bin/python bench/node_cost.py [--runs 60] [--tree DIR]
`--tree DIR`: another checkout of the project (e.g. `git worktree add` of the commit before a change):
its swarm_registry/ and files/scripts/ build the commands. Run one tree after the other, at the same load.
"""
from __future__ import annotations

import argparse
import dataclasses
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ENDPOINT = "127.0.0.1:1"


def child_cpu() -> float:
    u = resource.getrusage(resource.RUSAGE_CHILDREN)
    return u.ru_utime + u.ru_stime


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=60)
    ap.add_argument("--tree", default=str(Path(__file__).resolve().parents[1]))
    args = ap.parse_args()
    sys.path.insert(0, str(Path(args.tree).resolve()))
    from swarm_registry import commands, facts, pki
    from swarm_registry import settings as settings_mod
    from swarm_registry.steps import trust

    tmp = Path(tempfile.mkdtemp(prefix="node-cost-"))
    certs_d = tmp / "certs.d"
    _, anchor = pki.make_ca("node-cost", "ecdsa-p256", days=1)

    def here(cmd):  # certs.d -> the temp dir, in every argument (the scripts name it literally)
        return dataclasses.replace(cmd, argv=tuple(a.replace(commands.CERTS_D, str(certs_d)) for a in cmd.argv))

    settings = settings_mod.from_mapping({
        "registry": {"host": "127.0.0.1", "port": 1, "node": "n1"}, "state_dir": str(tmp / "state"),
        "hosts": {"n1": {"address": "127.0.0.1", "roles": ["manager"]}}})
    assert settings.registry.endpoint == ENDPOINT
    install = here(trust.command(ENDPOINT, anchor))

    mark = "node-cost-held-mark"
    held = here(commands.holding(facts.command(settings, ["trust"]), mark))
    through_held = commands.held_next(install) + (install.stdin or b"")  # as Session._send_held sends it

    def run(stdin: bytes) -> str:
        r = subprocess.run(held.argv, input=stdin, capture_output=True)
        if r.returncode != 0:
            raise SystemExit(f"held facts exited {r.returncode}: {r.stderr[-300:]!r}")
        return r.stdout.decode()

    cases = (("first run: held facts, then the trust script", through_held, True),
             ("re-run: held facts (ca.crt in place), then EOF", b"", False))
    load = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    print(f"tree {args.tree}; {args.runs} runs per case; load {load}")
    try:
        for label, stdin, fresh in cases:
            cpus, walls = [], []
            for _ in range(args.runs):
                if fresh:
                    shutil.rmtree(certs_d, ignore_errors=True)
                c0, t0 = child_cpu(), time.perf_counter()
                out = run(stdin)
                walls.append(time.perf_counter() - t0)
                cpus.append(child_cpu() - c0)
            assert f"trust={commands.sha256(anchor)}:644:755" in out, out
            print(f"{label:48} CPU median {statistics.median(cpus) * 1000:5.1f} ms   wall median "
                  f"{statistics.median(walls) * 1000:5.1f} ms")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
