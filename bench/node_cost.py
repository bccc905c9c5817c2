#!/usr/bin/env python3
"""What one node pays for trust-cert: CPU (user+sys, the shell and every process it starts) of the
remote commands `fab -H nodes trust-cert` sends, run here by sh, without ssh or sshd.

Cases: the trust fact on a node without certs.d/ENDPOINT (a first run's facts), the facts and then the
trust script (a first run: install, verify, read back; up to e154950 the script also ran curl against
ENDPOINT, where the TLS check now runs on the control machine through sshd, no process on the node),
the trust fact with ca.crt in place (a re-run). ENDPOINT is a refused port on loopback, as in bench/run_bench.py, so curl
ends at its connect. certs.d is a temp dir (the commands' /etc/docker/certs.d rewritten), nothing is
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
    fact = here(facts.command(settings, ["trust"]))
    install = here(trust.command(ENDPOINT, anchor))

    def run(cmd) -> str:
        r = subprocess.run(cmd.argv, input=cmd.stdin or b"", capture_output=True)
        if r.returncode != 0:
            name = cmd.argv[3] if len(cmd.argv) > 3 else cmd.argv[0]  # a script's name follows sh -c TEXT
            raise SystemExit(f"{name} exited {r.returncode}: {r.stderr[-300:]!r}")
        return r.stdout.decode()

    cases = (("trust fact, no certs.d (first run's facts)", [fact], True),
             ("trust fact + trust script (first run)", [fact, install], True),
             ("trust fact, ca.crt in place (re-run)", [fact], False))
    load = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    print(f"tree {args.tree}; {args.runs} runs per case; load {load}")
    try:
        for label, cmds, fresh in cases:
            cpus, walls = [], []
            for _ in range(args.runs):
                if fresh:
                    shutil.rmtree(certs_d, ignore_errors=True)
                c0, t0 = child_cpu(), time.perf_counter()
                for cmd in cmds:
                    out = run(cmd)
                walls.append(time.perf_counter() - t0)
                cpus.append(child_cpu() - c0)
            assert f"trust={commands.sha256(anchor)}:644:755" in out or fresh and len(cmds) == 1, out
            print(f"{label:46} CPU median {statistics.median(cpus) * 1000:5.1f} ms   wall median "
                  f"{statistics.median(walls) * 1000:5.1f} ms")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
