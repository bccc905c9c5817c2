"""Where the wall time of one `inv trust-cert` goes: a timeline of one run, in-process.

Usage (from the project root, settings in env SWARM_REGISTRY_CONFIG):
    .venv/bin/python bench/profile_timeline.py [--runs 5]
Each run is a fresh interpreter (`python -c` of this file's CHILD code) that times: interpreter
start, each import group, settings load, per-host connect (TCP + SSH handshake + auth) and the one
remote command, closing, and exit. Nothing in the project is changed; methods are wrapped at run time.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CHILD = r"""
import json, os, sys, threading, time
T0 = float(os.environ["BENCH_T0"])
marks = {"interpreter up": time.time()}
sys.path.insert(0, os.getcwd())
import invoke.main
marks["import invoke (+ unittest.mock, asyncio via invoke.context)"] = time.time()
import dataclasses
made = [0, 0.0]  # our dataclasses: how many, seconds (Python 3.11 compiles each one's methods at import)
process_class = dataclasses._process_class
def timed_class(cls, *args, **kwargs):
    a = time.time(); r = process_class(cls, *args, **kwargs)
    if cls.__module__.startswith("swarm_registry"):
        made[0] += 1; made[1] += time.time() - a
    return r
dataclasses._process_class = timed_class
import swarm_registry.cli, swarm_registry.settings
marks["import swarm_registry.cli + settings (+ yaml)"] = time.time()
import swarm_registry.jobs.trust, swarm_registry.jobs.runner
marks["import swarm_registry.jobs.trust (certs, steps; pki only for an unchecked CA)"] = time.time()
import swarm_registry.remote.executor as ex, swarm_registry.remote.session as se
marks["import remote (fabric, paramiko)"] = time.time()
hosts = {}
lock = threading.Lock()
orig_connect, orig_run, orig_load = se.Session.connect, se.Session.run, swarm_registry.cli.load_settings
def connect(self):
    if self._conn is not None:
        return orig_connect(self)
    a = time.time(); r = orig_connect(self); b = time.time()
    with lock: hosts.setdefault(self.host.name, {})["connect"] = (a, b)
    return r
def run(self, cmd, *args, **kwargs):
    self.connect()
    a = time.time(); r = orig_run(self, cmd, *args, **kwargs); b = time.time()
    with lock: hosts.setdefault(self.host.name, {})["command"] = (a, b)
    return r
def load():
    a = time.time(); s = orig_load(); marks["settings loaded"] = time.time(); return s
se.Session.connect, se.Session.run, swarm_registry.cli.load_settings = connect, run, load
orig_close = ex.Executor.close
def close(self):
    marks["all hosts done (before close)"] = time.time(); orig_close(self); marks["sessions closed"] = time.time()
ex.Executor.close = close
sys.argv = ["inv", "trust-cert"]
import io, contextlib
buf = io.StringIO()
try:
    with contextlib.redirect_stdout(buf):
        invoke.main.program.run(["inv", "trust-cert"], exit=False)
except SystemExit:
    pass
marks["task returned"] = time.time()
cpu = os.times()
print(json.dumps({"t0": T0, "marks": marks, "hosts": hosts, "cpu": cpu.user + cpu.system, "made": made}))
"""


def one() -> dict:
    env = dict(os.environ, BENCH_T0=repr(time.time()))
    t0 = time.time()
    r = subprocess.run([str(ROOT / ".venv" / "bin" / "python"), "-c", CHILD], cwd=ROOT, env=env,
                       capture_output=True, text=True, check=True)
    end = time.time()
    data = json.loads(r.stdout.strip().splitlines()[-1])
    data["exit"] = end
    data["t0"] = t0
    return data


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    runs = [one() for _ in range(args.runs)]
    phases: dict[str, list[float]] = {}
    for d in runs:
        t0, prev = d["t0"], d["t0"]
        for name, t in d["marks"].items():
            if name == "all hosts done (before close)":
                conns = [h["connect"] for h in d["hosts"].values() if "connect" in h]
                cmds = [h["command"] for h in d["hosts"].values() if "command" in h]
                first = min(a for a, _ in conns)
                phases.setdefault("  first connect starts (after settings, certs, executor set-up)", []).append(first - prev)
                phases.setdefault("  connect: TCP + SSH handshake + auth, per host (median)", []).append(
                    statistics.median(b - a for a, b in conns))
                phases.setdefault("  command: channel + script + exit status, per host (median)", []).append(
                    statistics.median(b - a for a, b in cmds))
                phases.setdefault("  last connect done - first connect started", []).append(max(b for _, b in conns) - first)
            phases.setdefault(name, []).append(t - prev)
            prev = t
            if name.startswith("import swarm_registry.jobs.trust"):
                made = f"  in the two imports above: creating our {d['made'][0]} dataclasses (methods compiled at import)"
                phases.setdefault(made, []).append(d["made"][1])
        phases.setdefault("interpreter exit (after task)", []).append(d["exit"] - prev)
        phases.setdefault("TOTAL wall", []).append(d["exit"] - t0)
        phases.setdefault("CPU of the python process (user+sys)", []).append(d["cpu"])
    print(f"{'phase (seconds since the previous mark; indented = detail)':<72} {'median':>7} {'min':>7} {'max':>7}")
    for name, vals in phases.items():
        print(f"{name:<72} {statistics.median(vals):7.3f} {min(vals):7.3f} {max(vals):7.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
