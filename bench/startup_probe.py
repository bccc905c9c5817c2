#!/usr/bin/env python3
"""Start-up probe of `fab`: wall time of `fab --list`, and of `fab -H nodes trust-cert` (re-run, nothing to
change; and first run, every host without certs.d) on N sshd hosts, plus `python -X importtime` of that trust-cert run (modules, summed self time, by
package, and the full module list for diffing).

Usage (from the project root; no settings needed, it makes its own hosts):
    .venv/bin/python bench/startup_probe.py [--hosts 8] [--runs 5] [--modules FILE] [--other DIR]
Runs are sequential; one probe at a time. Byte-compiled project modules, PYTHONDONTWRITEBYTECODE cleared
(as bench/run_bench.py does). `--other DIR`: another checkout of the project (e.g. `git worktree add` of
the commit before a change; it uses this tree's .venv): every timed command is run there too, alternating
run by run with this tree (paired, same load), and both medians are printed.
"""
from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from devtools.sshd_hosts import SshdHosts  # noqa: E402
from run_bench import importtime_summary  # noqa: E402

BIN = ROOT / ".venv" / "bin"
WORK = ROOT / "bench" / ".work" / "startup-probe"


def wall(argv, env, cwd: Path = ROOT) -> float:
    """Wall seconds of one run; its CPU seconds (user + sys of the process) are kept in CPU[-1]."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    r = subprocess.run(argv, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    t = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    CPU.append(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)
    if r.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} exited {r.returncode}:\n{r.stdout[-2000:]}")
    return t


CPU: list[float] = []


def paired(label: str, argv_for, env, runs: int, trees: list[Path], prepare=None) -> None:
    """Time argv_for(tree) `runs` times per tree, alternating trees run by run; print each tree's median.
    `prepare()`, untimed, before each run."""
    times: dict[Path, list[float]] = {t: [] for t in trees}
    cpus: dict[Path, list[float]] = {t: [] for t in trees}
    for _ in range(runs):
        for tree in trees:
            if prepare is not None:
                prepare()
            times[tree].append(wall(argv_for(tree), env, tree))
            cpus[tree].append(CPU[-1])
    for tree in trees:
        ts = times[tree]
        print(f"{label}{'' if len(trees) == 1 else f' [{tree}]'}: median {statistics.median(ts):.3f} s  "
              f"(min {min(ts):.3f}, max {max(ts):.3f}, {runs} runs); CPU median {statistics.median(cpus[tree]):.3f} s")
    if len(trees) == 2:
        ratios = sorted(a / b for a, b in zip(times[trees[0]], times[trees[1]]))
        print(f"  paired ratio this / other: median {statistics.median(ratios):.3f}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--hosts", type=int, default=8)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--modules", help="write the modules imported by `fab -H nodes trust-cert` here, one a line")
    ap.add_argument("--other", help="another checkout of the project: its runs alternate with this tree's (paired)")
    args = ap.parse_args()
    trees = [ROOT] + ([Path(args.other).resolve()] if args.other else [])
    if args.hosts > 16:
        ap.error("at most 16 hosts (shared 2-core machine)")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONDONTWRITEBYTECODE", "SWARM_REGISTRY_CONFIG")}
    for tree in trees:
        subprocess.run([str(BIN / "python"), "-m", "compileall", "-q", "tasks.py", "fabfile", "swarm_registry"],
                       cwd=tree, env=env, capture_output=True, check=False)
    print(f"load average at start: {' '.join(Path('/proc/loadavg').read_text().split()[:3])}")
    paired("fab --list", lambda tree: [str(BIN / "fab"), "--list"], env, args.runs, trees)

    shutil.rmtree(WORK, ignore_errors=True)
    with SshdHosts(args.hosts, WORK, home_skel="/etc/skel") as hs:
        settings = hs.settings_file("settings.yaml", state_dir=str(WORK / "state"))
        env["SWARM_REGISTRY_CONFIG"] = str(settings)
        subprocess.run([str(BIN / "inv"), "certs"], cwd=ROOT, env=env, capture_output=True, check=True)
        fab = [str(BIN / "fab"), "-H", "nodes", "trust-cert"]
        wall(fab, env)  # first run: installs; what follows are re-runs (facts only, 1 command per host)
        paired(f"fab -H nodes trust-cert (re-run, N={args.hosts})", lambda tree: fab, env, args.runs, trees)

        def fresh() -> None:  # every host without certs.d: the run changes every host
            for h in hs.hosts:
                shutil.rmtree(h.etc_docker / "certs.d", ignore_errors=True)

        paired(f"fab -H nodes trust-cert (first run, N={args.hosts})", lambda tree: fab, env, args.runs, trees,
               prepare=fresh)
        totals, summary, stderr = [], None, ""
        for _ in range(args.runs):
            r = subprocess.run([str(BIN / "python"), "-X", "importtime", *fab], cwd=ROOT, env=env,
                               capture_output=True, text=True)
            if r.returncode != 0:
                raise SystemExit(f"importtime run exited {r.returncode}:\n{r.stdout[-1000:]}{r.stderr[-1000:]}")
            summary, stderr = importtime_summary(r.stderr), r.stderr
            totals.append(summary["total_us"] / 1000)
        print(f"python -X importtime fab -H nodes trust-cert: {summary['modules']} modules, summed self time "
              f"median {statistics.median(totals):.1f} ms (min {min(totals):.1f}, max {max(totals):.1f})")
        print("  by package (ms, last run): " + ", ".join(f"{p} {us / 1000:.1f}" for p, us in summary["by_package"]))
        if args.modules:
            names = sorted({ln.split("|")[-1].strip() for ln in stderr.splitlines()
                            if ln.startswith("import time:") and "|" in ln and "cumulative" not in ln})
            Path(args.modules).write_text("\n".join(names) + "\n")
            print(f"  module list: {args.modules}")
    print(f"load average at end: {' '.join(Path('/proc/loadavg').read_text().split()[:3])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
