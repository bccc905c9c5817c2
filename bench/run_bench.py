#!/usr/bin/env python3
"""Benchmark trust-cert against N plain sshd hosts on 127.0.0.1: this project vs. its floor and Ansible.

Variants (alternated run by run, A B C D E, A B C D E, ...):
  inv       `inv trust-cert`               this project
  fab       `fab -H nodes trust-cert`      this project
  floor     bench/floor.sh                 plain OpenSSH, one ssh per host in parallel, one command each
  minfab    bench/minimal_fabric.py        one Fabric ThreadingGroup.run, no settings, no checks
  ansible   bench/playbook.yml             ansible-core (bench-only venv), forks=N, pipelining on

For each N (8, 16) and each case ("first": certs.d removed on every host before each run;
"rerun": already in place), 1 warm-up round then ROUNDS counted rounds. Each run is wrapped in
`/usr/bin/time -f %M` (peak RSS: ru_maxrss from wait4, i.e. the largest single process of the
variant's tree, not a sum) and checked afterwards (every host's ca.crt present, same bytes as the
CA, mode 0644, dir 0755, nothing else in the dir); a failing variant aborts the bench.

Run from the project root: `make bench` (or `.venv/bin/python bench/run_bench.py`).
"""
from __future__ import annotations

import argparse
import datetime as dt
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from devtools.sshd_hosts import SshdHosts  # noqa: E402

BENCH = ROOT / "bench"
WORK = BENCH / ".work"
PROJECT_BIN = ROOT / ".venv" / "bin"
ANSIBLE_VENV = WORK / "ansible-venv"
ANSIBLE_BIN = ANSIBLE_VENV / "bin"
GNU_TIME = "/usr/bin/time"
REMOTE_PYTHON = "/usr/bin/python3"
# registry.host resolves through /etc/hosts to 127.0.0.1, so the script's curl check is refused at once
# and nothing is looked up in DNS (the project's default name would be sent to the resolver).
REGISTRY_HOST, REGISTRY_PORT = "localhost", 5000
ENDPOINT = f"{REGISTRY_HOST}:{REGISTRY_PORT}"
CERTS_DIR = f"/etc/docker/certs.d/{ENDPOINT}"
# The project's default key type: cert generation is not timed (`inv certs` runs once first), so there
# is no reason to pick a faster one; trust-cert reads the CA key on every run.
KEY_TYPE = "rsa4096"
VARIANTS = ["inv", "fab", "floor", "minfab", "ansible"]
PROJECT = ("inv", "fab")
LABELS = {
    "inv": "inv trust-cert (this project)",
    "fab": "fab -H nodes trust-cert (this project)",
    "floor": "OpenSSH floor (ssh x N in parallel)",
    "minfab": "minimal Fabric ThreadingGroup",
    "ansible": "Ansible (forks=N, pipelining)",
}


class BenchError(Exception):
    pass


class Deadline:
    def __init__(self, seconds: float):
        self.end = time.monotonic() + seconds
        self.seconds = seconds

    def left(self, cap: float = 300.0) -> float:
        left = self.end - time.monotonic()
        if left <= 0:
            raise BenchError(f"overall deadline of {self.seconds:.0f}s reached; stopping (raise --deadline)")
        return min(cap, left)


def sh(argv, **kw) -> str:
    return subprocess.run(argv, capture_output=True, text=True, check=False, **kw).stdout.strip()


# --- prerequisites ---------------------------------------------------------------------------------


def ensure_gnu_time() -> None:
    if os.access(GNU_TIME, os.X_OK):
        return
    print("installing the Debian package `time` (for /usr/bin/time -f %M) ...", flush=True)
    subprocess.run(["apt-get", "install", "-y", "-q", "time"], check=False)
    if not os.access(GNU_TIME, os.X_OK):
        raise BenchError("/usr/bin/time is missing and `apt-get install time` failed")


def ensure_ansible(log) -> str | None:
    """Install ansible-core into the bench-only venv if missing. Returns None if usable, else why not."""
    playbook = ANSIBLE_BIN / "ansible-playbook"
    if not playbook.exists():
        print(f"installing ansible-core into {ANSIBLE_VENV} ...", flush=True)
        r = subprocess.run([sys.executable, "-m", "venv", str(ANSIBLE_VENV)], stdout=log, stderr=log)
        if r.returncode == 0:
            r = subprocess.run([str(ANSIBLE_BIN / "pip"), "install", "-q", "--disable-pip-version-check",
                                "ansible-core"], stdout=log, stderr=log, timeout=600)
        if r.returncode != 0 or not playbook.exists():
            return f"ansible-core could not be installed (pip exit {r.returncode}; see {log.name})"
    if sh([str(playbook), "--version"]) == "":
        return "ansible-playbook is installed but does not run"
    return None


# --- the variants ----------------------------------------------------------------------------------


class Setup:
    """Everything one N needs: the hosts, the project's settings file, the Ansible inventory."""

    def __init__(self, hosts: SshdHosts, settings: Path, cert: Path, n: int):
        self.hs, self.settings, self.cert, self.n = hosts, settings, cert, n
        self.ports = [str(h.port) for h in hosts.hosts]
        self.common = [str(hosts.known_hosts), str(hosts.client_key), str(cert), CERTS_DIR, *self.ports]
        adir = WORK / f"ansible-{n}"
        adir.mkdir(exist_ok=True)
        self.inventory = adir / "inventory.ini"
        self.inventory.write_text("[all]\n" + "".join(
            f"{h.name} ansible_host=127.0.0.1 ansible_port={h.port} ansible_user=root "
            f"ansible_ssh_private_key_file={hosts.client_key}\n" for h in hosts.hosts))
        self.ansible_cfg = adir / "ansible.cfg"
        self.ansible_cfg.write_text(
            "[defaults]\n"
            f"forks = {n}\nhost_key_checking = True\ninterpreter_python = {REMOTE_PYTHON}\n"
            f"local_tmp = {adir}/local-tmp\nremote_tmp = {WORK}/ansible-remote-tmp\nnocolor = True\n"
            "retry_files_enabled = False\n"
            "[ssh_connection]\npipelining = True\n"
            # Ansible's own default ssh_args, plus our known_hosts.
            f"ssh_args = -C -o ControlMaster=auto -o ControlPersist=60s -o UserKnownHostsFile={hosts.known_hosts}\n")
        self.control_dir = adir / "cp"

    def env(self) -> dict:
        env = {k: v for k, v in os.environ.items()
               if k not in ("SWARM_REGISTRY_CONFIG", "REGISTRY_PASSWORD") and not k.startswith("ANSIBLE_")}
        env["SWARM_REGISTRY_CONFIG"] = str(self.settings)
        return env

    def command(self, variant: str) -> tuple[list[str], dict]:
        env = self.env()
        if variant == "inv":
            return [str(PROJECT_BIN / "inv"), "trust-cert"], env
        if variant == "fab":
            return [str(PROJECT_BIN / "fab"), "-H", "nodes", "trust-cert"], env
        if variant == "floor":
            return ["bash", str(BENCH / "floor.sh"), *self.common], env
        if variant == "minfab":
            return [str(PROJECT_BIN / "python"), str(BENCH / "minimal_fabric.py"), *self.common], env
        if variant == "ansible":
            self.reset_control_dir()
            env.update(ANSIBLE_CONFIG=str(self.ansible_cfg), ANSIBLE_HOME=str(WORK / "ansible-home"),
                       ANSIBLE_PYTHON_INTERPRETER=REMOTE_PYTHON, ANSIBLE_SSH_CONTROL_PATH_DIR=str(self.control_dir))
            return [str(ANSIBLE_BIN / "ansible-playbook"), "-i", str(self.inventory), str(BENCH / "playbook.yml"),
                    "-e", f"certs_dir={CERTS_DIR}", "-e", f"cert_src={self.cert}"], env
        raise ValueError(variant)

    def reset_control_dir(self) -> None:
        close_masters(self.control_dir)
        self.control_dir.mkdir()

    def remove_targets(self) -> None:
        for h in self.hs.hosts:
            shutil.rmtree(h.etc_docker / "certs.d", ignore_errors=True)

    def check_targets(self) -> list[str]:
        want = self.cert.read_bytes()
        problems = []
        for h in self.hs.hosts:
            d = h.etc_docker / "certs.d" / ENDPOINT
            f = d / "ca.crt"
            if not f.is_file():
                problems.append(f"{h.name}: {f} missing")
                continue
            if f.read_bytes() != want:
                problems.append(f"{h.name}: {f} content differs from the CA certificate")
            if f.stat().st_mode & 0o777 != 0o644:
                problems.append(f"{h.name}: {f} mode {oct(f.stat().st_mode & 0o777)}, want 0o644")
            if d.stat().st_mode & 0o777 != 0o755:
                problems.append(f"{h.name}: {d} mode {oct(d.stat().st_mode & 0o777)}, want 0o755")
            extra = sorted(p.name for p in d.iterdir() if p.name != "ca.crt")
            if extra:
                problems.append(f"{h.name}: stray files in {d}: {extra}")
        return problems


def close_masters(control_dir: Path) -> None:
    """Close Ansible's ControlPersist masters of the last run (so every run starts cold) and drop the dir."""
    if control_dir.exists():
        for sock in control_dir.iterdir():
            subprocess.run(["ssh", "-o", f"ControlPath={sock}", "-O", "exit", "bench"],
                           capture_output=True, timeout=10, check=False)
        shutil.rmtree(control_dir, ignore_errors=True)


def project_statuses(output: str) -> dict[str, str]:
    found = {}
    for line in output.splitlines():
        parts = line.split()
        if len(parts) >= 3 and parts[1] == "trust-cert":
            found[parts[0]] = parts[2]
    return found


def run_variant(setup: Setup, variant: str, case: str, tag: str, deadline: Deadline) -> tuple[float, int]:
    """One timed run; returns (wall seconds, peak RSS KiB). Raises BenchError if it failed or left bad files."""
    argv, env = setup.command(variant)
    logdir = WORK / "logs"
    logdir.mkdir(exist_ok=True)
    log = logdir / f"{tag}.log"
    rssfile = logdir / f"{tag}.rss"
    with open(log, "wb") as out:
        t0 = time.perf_counter()
        try:
            proc = subprocess.run([GNU_TIME, "-f", "%M", "-o", str(rssfile), *argv], cwd=ROOT, env=env,
                                  stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                  timeout=deadline.left(), start_new_session=True)
        except subprocess.TimeoutExpired:
            raise BenchError(f"{LABELS[variant]} ({tag}) did not finish in time; log: {log}") from None
        wall = time.perf_counter() - t0
    text = log.read_text(errors="replace")
    if variant == "ansible":
        setup.reset_control_dir()
    if proc.returncode != 0:
        tail = "\n".join(text.splitlines()[-15:])
        raise BenchError(f"{LABELS[variant]} ({tag}) exited {proc.returncode}; log {log}:\n{tail}")
    problems = setup.check_targets()
    if problems:
        raise BenchError(f"{LABELS[variant]} ({tag}) exited 0 but the targets are wrong:\n  " + "\n  ".join(problems))
    if variant in PROJECT:
        want = "changed" if case == "first" else "ok"
        got = project_statuses(text)
        if got != {h.name: want for h in setup.hs.hosts}:
            raise BenchError(f"{LABELS[variant]} ({tag}): expected every host '{want}', got {got}; log {log}")
    rss = int(rssfile.read_text().split()[-1])
    return wall, rss


# --- the lab (converged `inv setup` re-run) --------------------------------------------------------


def lab_section(deadline: Deadline) -> list[str]:
    head = ["## Lab: converged `inv setup` re-run", ""]
    tasks = sh([str(PROJECT_BIN / "inv"), "--list"], cwd=ROOT)
    if not re.search(r"^\s+setup\s", tasks, re.M):
        return head + ["**converged `inv setup` re-run: not measured (inv setup not built yet)** "
                       "(`inv --list` shows no `setup` task).", ""]
    lab = ROOT / "config" / "lab.yaml"
    if not lab.exists():
        return head + ["not measured: `config/lab.yaml` does not exist (`make lab-up`).", ""]
    import yaml
    hosts = (yaml.safe_load(lab.read_text()) or {}).get("hosts") or {}
    for name, h in hosts.items():
        try:
            with socket.create_connection((h["address"], int(h.get("port", 22))), timeout=3):
                pass
        except OSError as exc:
            return head + [f"not measured: lab host {name} does not answer ({exc}).", ""]
    env = {k: v for k, v in os.environ.items() if k != "SWARM_REGISTRY_CONFIG"}
    env["SWARM_REGISTRY_CONFIG"] = str(lab)
    walls, counts, first_note = [], {}, ""
    for i in range(6):  # 1 to converge (untimed, summarized), 5 timed
        t0 = time.perf_counter()
        r = subprocess.run([str(PROJECT_BIN / "inv"), "setup"], cwd=ROOT, env=env, capture_output=True, text=True,
                           timeout=deadline.left(600))
        wall = time.perf_counter() - t0
        if r.returncode != 0:
            return head + [f"not measured: `inv setup` on the lab exited {r.returncode}:", "```",
                           *r.stdout.splitlines()[-10:], *r.stderr.splitlines()[-5:], "```", ""]
        if i:
            walls.append(wall)
        else:
            changed = sum(int(row.split()[2]) for row in r.stdout.split("RECAP", 1)[-1].splitlines()
                          if len(row.split()) == 6 and row.split()[0] in hosts and row.split()[2].isdigit())
            first_note = (f"The untimed converging run before them took {wall:.2f} s and reported {changed} "
                          "changed step(s) in its recap.")
        recap = r.stdout.split("RECAP", 1)[-1].splitlines()
        for row in recap:
            parts = row.split()
            if len(parts) == 6 and parts[0] in hosts and parts[-1].isdigit():
                counts[parts[0]] = int(parts[-1])
    return head + [f"5 converged re-runs of `SWARM_REGISTRY_CONFIG=config/lab.yaml inv setup`: median "
                   f"{statistics.median(walls):.2f} s (min {min(walls):.2f}, max {max(walls):.2f}); commands per "
                   f"host (recap): {', '.join(f'{h} {c}' for h, c in sorted(counts.items()))}. {first_note}", ""]


# --- reporting -------------------------------------------------------------------------------------


def versions(ansible_note: str | None) -> dict[str, str]:
    py = str(PROJECT_BIN / "python")
    v = {"python (project venv)": sh([py, "-c", "import sys; print(sys.version.split()[0])"])}
    for dist in ("fabric", "invoke", "paramiko", "cryptography"):
        v[dist] = sh([py, "-c", f"import importlib.metadata as m; print(m.version('{dist}'))"])
    if ansible_note is None:
        v["ansible-core"] = sh([str(ANSIBLE_BIN / "python"), "-c",
                                "import importlib.metadata as m; print(m.version('ansible-core'))"])
        v["python (ansible venv)"] = sh([str(ANSIBLE_BIN / "python"), "-c",
                                         "import sys; print(sys.version.split()[0])"])
    else:
        v["ansible-core"] = f"not installed: {ansible_note}"
    v["OpenSSH"] = subprocess.run(["ssh", "-V"], capture_output=True, text=True).stderr.strip()
    v["remote python (Ansible)"] = sh([REMOTE_PYTHON, "-c", "import sys; print(sys.version.split()[0])"])
    return v


def machine() -> str:
    cores = sh(["nproc"])
    mem = next((line.split()[1] for line in Path("/proc/meminfo").read_text().splitlines()
                if line.startswith("MemTotal:")), "0")
    model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), "?")
    return f"{cores} cores ({model}), {int(mem) / 1048576:.1f} GiB RAM, kernel {os.uname().release}"


def summarize(data: dict, n: int, case: str, variants: list[str]) -> dict:
    """variant -> stats for one (N, case). data[(n, case, variant)] = list of (wall, rss) by counted round."""
    out = {}
    for v in variants:
        runs = data[(n, case, v)]
        walls = [w for w, _ in runs]
        rss = [r for _, r in runs]
        s = {"median": statistics.median(walls), "min": min(walls), "max": max(walls),
             "rss_med": statistics.median(rss) / 1024, "rss_max": max(rss) / 1024, "runs": len(runs)}
        for ref in ("floor", "minfab", "ansible"):
            if (n, case, ref) in data and ref in variants:
                pairs = [w / data[(n, case, ref)][i][0] for i, w in enumerate(walls)]
                s[f"vs_{ref}"] = statistics.median(pairs)
        out[v] = s
    return out


def table(stats: dict, sizes: list[int], variants: list[str], ansible_note: str | None) -> list[str]:
    rows = ["| N | case | variant | median s | min-max s | x floor | x min. Fabric | peak RSS MiB (median / max) |",
            "|---:|---|---|---:|---:|---:|---:|---:|"]
    for n in sizes:
        for case in ("first", "rerun"):
            for v in VARIANTS:
                if v not in variants:
                    if v == "ansible" and ansible_note:
                        rows.append(f"| {n} | {case} | {LABELS[v]} | not measured: {ansible_note} | | | | |")
                    continue
                s = stats[(n, case)][v]
                rows.append(f"| {n} | {case} | {LABELS[v]} | {s['median']:.3f} | {s['min']:.3f}-{s['max']:.3f} | "
                            f"{s.get('vs_floor', float('nan')):.2f} | {s.get('vs_minfab', float('nan')):.2f} | "
                            f"{s['rss_med']:.1f} / {s['rss_max']:.1f} |")
    return rows


def targets(stats: dict, sizes: list[int], variants: list[str]) -> list[str]:
    lines = ["| target | variant | N | case | measured | verdict |", "|---|---|---:|---|---:|---|"]

    def add(name, v, n, case, value, ok):
        lines.append(f"| {name} | {v} | {n} | {case} | {value} | {'met' if ok else '**not met**'} |")

    for v in PROJECT:
        for n in sizes:
            for case in ("first", "rerun"):
                s = stats[(n, case)][v]
                add("<= 1.3x minimal Fabric (paired median)", v, n, case, f"{s['vs_minfab']:.3f}x", s["vs_minfab"] <= 1.3)
                add("<= 1.0x OpenSSH floor (paired median)", v, n, case, f"{s['vs_floor']:.3f}x", s["vs_floor"] <= 1.0)
                if "ansible" in variants:
                    faster = 1 / s["vs_ansible"]
                    add(">= 10x faster than Ansible (paired median)", v, n, case, f"{faster:.1f}x", faster >= 10)
                else:
                    lines.append(f"| >= 10x faster than Ansible | {v} | {n} | {case} | Ansible not measured | n/a |")
        if 16 in sizes:
            for case in ("first", "rerun"):
                s = stats[(16, case)][v]
                add("peak RSS <= 64 MiB", v, 16, case, f"{s['rss_max']:.1f} MiB (max)", s["rss_max"] <= 64)
    return lines


def explain(stats: dict, sizes: list[int], variants: list[str]) -> list[str]:
    """Why the missed targets are missed, from the same measurements."""
    lines = ["## Why targets are missed", ""]
    if "ansible" in variants:
        floor_vs_ansible = [1 / stats[(n, c)]["floor"]["vs_ansible"] for n in sizes for c in ("first", "rerun")]
        if min(floor_vs_ansible) < 10:
            lines.append(
                f"- >= 10x faster than Ansible: even the OpenSSH floor is only {min(floor_vs_ansible):.1f}-"
                f"{max(floor_vs_ansible):.1f}x faster than Ansible here, so no SSH tool can reach 10x on this "
                "machine: each remote command pays root's login shell (~0.1 CPU-s of `pyenv init` in ~/.bashrc), "
                "and on 2 cores that, not the client, sets the floor. This project sends one command per host, "
                "as the floor does; Ansible sends several.")
    misses = [(v, n, c, stats[(n, c)][v]["vs_floor"]) for v in PROJECT for n in sizes for c in ("first", "rerun")
              if stats[(n, c)][v]["vs_floor"] > 1.0]
    if misses:
        cells = ", ".join(f"{v} N={n} {c} ({r:.3f}x)" for v, n, c, r in misses)
        lines.append(
            f"- <= 1.0x the OpenSSH floor: missed in {len(misses)} of {len(PROJECT) * len(sizes) * 2} cells: {cells}. "
            "This project already sends what the floor sends (one command per host); what it adds is one Python "
            "process's start-up (interpreter, invoke, fabric/paramiko, cryptography: ~0.2 CPU-s, see "
            "bench/profile_timeline.py), which weighs most where the remote side is cheapest (small N).")
    if len(lines) == 2:
        lines.append("- none: every target is met.")
    return lines + [""]


# --- main ------------------------------------------------------------------------------------------


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="8,16", help="host counts (default 8,16)")
    ap.add_argument("--rounds", type=int, default=5, help="counted rounds per (N, case) (default 5)")
    ap.add_argument("--warmup", type=int, default=1, help="warm-up rounds per (N, case) (default 1)")
    ap.add_argument("--deadline", type=float, default=900, help="overall deadline in seconds (default 900)")
    ap.add_argument("--variants", default=",".join(VARIANTS), help="comma-separated subset of " + ",".join(VARIANTS))
    ap.add_argument("--results", default=str(BENCH / "RESULTS.md"), help="where to write the markdown results")
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    variants = [v for v in VARIANTS if v in args.variants.split(",")]
    if "floor" not in variants or "minfab" not in variants:
        ap.error("the floor and minfab variants are the references; keep them")
    deadline = Deadline(args.deadline)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    WORK.mkdir(parents=True, exist_ok=True)
    started = dt.datetime.now().astimezone()
    load_start = Path("/proc/loadavg").read_text().split()[:3]

    ensure_gnu_time()
    for tool in ("/usr/sbin/sshd", "unshare", "ssh"):
        if not shutil.which(tool):
            raise BenchError(f"{tool} is missing (apt-get install openssh-server openssh-client util-linux)")
    ansible_note = None
    if "ansible" in variants:
        with open(WORK / "ansible-install.log", "w") as log:
            ansible_note = ensure_ansible(log)
        if ansible_note:
            print(f"Ansible: {ansible_note}; its rows will say so", flush=True)
            variants.remove("ansible")

    shutil.rmtree(WORK / "state", ignore_errors=True)  # a CA of this bench's key type, made once below
    data: dict = {}
    total = len(sizes) * 2 * (args.warmup + args.rounds) * len(variants)
    done = 0
    for n in sizes:
        hostdir = WORK / f"hosts-{n}"
        shutil.rmtree(hostdir, ignore_errors=True)
        hs = SshdHosts(n, hostdir)
        try:
            hs.__enter__()
            settings = hs.settings_file(
                "settings.yaml", registry={"host": REGISTRY_HOST, "port": REGISTRY_PORT},
                cert={"key_type": KEY_TYPE}, state_dir=str(WORK / "state"))
            setup = Setup(hs, settings, WORK / "state" / "ca.crt", n)
            r = subprocess.run([str(PROJECT_BIN / "inv"), "certs"], cwd=ROOT, env=setup.env(), capture_output=True,
                               text=True, timeout=deadline.left(120))
            if r.returncode != 0:
                raise BenchError(f"`inv certs` failed:\n{r.stdout}{r.stderr}")
            for case in ("first", "rerun"):
                if case == "rerun":  # in place before the first re-run (untimed)
                    setup.remove_targets()
                    run_variant(setup, "floor", "first", f"n{n}-prime", deadline)
                for rnd in range(args.warmup + args.rounds):
                    counted = rnd >= args.warmup
                    for v in variants:
                        if case == "first":
                            setup.remove_targets()
                        tag = f"n{n}-{case}-r{rnd}-{v}"
                        wall, rss = run_variant(setup, v, case, tag, deadline)
                        done += 1
                        print(f"[{done:3}/{total}] N={n:<2} {case:<5} {'round ' + str(rnd - args.warmup + 1) if counted else 'warm-up':<8} "
                              f"{v:<8} {wall:7.3f} s  {rss / 1024:6.1f} MiB", flush=True)
                        if counted:
                            data.setdefault((n, case, v), []).append((wall, rss))
        finally:
            try:
                close_masters(WORK / f"ansible-{n}" / "cp")
            except Exception as exc:  # never let this keep the sshd hosts running
                print(f"warning: closing Ansible's ssh masters: {exc}", file=sys.stderr)
            hs.__exit__(None, None, None)

    stats = {(n, case): summarize(data, n, case, variants) for n in sizes for case in ("first", "rerun")}
    lab = lab_section(deadline)
    ver = versions(ansible_note)
    tbl = table(stats, sizes, variants, ansible_note)
    tgt = targets(stats, sizes, variants)
    why = explain(stats, sizes, variants)
    elapsed = time.monotonic() - (deadline.end - deadline.seconds)
    load_end = Path("/proc/loadavg").read_text().split()[:3]
    containers = sh(["sh", "-c", "docker ps -q 2>/dev/null | wc -l"]) or "?"

    md = [
        "# trust-cert benchmark",
        "",
        f"Generated by `make bench` (bench/run_bench.py) on {started:%Y-%m-%d %H:%M %Z}; the whole bench took "
        f"{elapsed:.0f} s.",
        "",
        f"**Machine:** {machine()}.",
        "",
        f"**Load:** load average (1/5/15 min) {' '.join(load_start)} at the start, {' '.join(load_end)} at the "
        f"end; {containers} Docker containers running at the end (other work on this machine competes for the "
        "2 cores; the paired ratios are less exposed to it than the absolute times).",
        "",
        "**Versions:** " + "; ".join(f"{k} {v}" for k, v in ver.items()) + ".",
        "",
        "## Method",
        "",
        f"- Hosts: N plain sshd servers on 127.0.0.1 (devtools/sshd_hosts.py), each with a private "
        f"/etc/docker. Job: make `{CERTS_DIR}/ca.crt` (dir 0755, file 0644) hold the CA certificate.",
        "- **first**: every host's certs.d removed before each timed run; **rerun**: already in place "
        "(this project and Ansible then change nothing; the floor and minimal Fabric always rewrite).",
        f"- Variants alternate run by run ({', '.join(variants)}, repeat); {args.warmup} warm-up round, then "
        f"{args.rounds} counted rounds per (N, case). Wall time is measured around the whole process "
        "(interpreter start, imports, connections, exit).",
        "- **x floor / x min. Fabric**: the ratio of the paired runs of the same round, then the median of those "
        "ratios (not a ratio of medians).",
        "- **Peak RSS**: `/usr/bin/time -f %M`, i.e. ru_maxrss from wait4 = the largest single process of the "
        "variant's tree (for inv/fab/minimal Fabric: the Python process; for the floor: the largest ssh/bash; for "
        "Ansible: the largest ansible-playbook process, workers included) -- a max, not a sum.",
        "- Every run is checked afterwards (all N files present, same bytes as the CA, mode 0644, dir 0755, nothing "
        "else in the dir; this project's output must say `changed` on every host for first and `ok` for rerun); a "
        "failure aborts the bench.",
        f"- The settings use `registry.host: {REGISTRY_HOST}` so the script's TLS check (curl to "
        f"https://{ENDPOINT}/v2/) is refused at once on 127.0.0.1 and no DNS query leaves the machine; "
        f"`cert.key_type: {KEY_TYPE}` (the project's default); `ssh.parallel: N`. `inv certs` runs once, untimed.",
        "- Floor: `ssh -o BatchMode=yes -o UserKnownHostsFile=... -o StrictHostKeyChecking=yes -i KEY` per host, "
        "all started together (bench/floor.sh), cert on stdin of `install -d -m 0755 DIR && t=$(mktemp "
        "DIR/.ca.XXXXXX) && cat > $t && chmod 0644 $t && mv $t DIR/ca.crt`.",
        "- Minimal Fabric (bench/minimal_fabric.py): one ThreadingGroup.run of the floor's command; known_hosts "
        "loaded; the cert is handed to invoke as one read() per host, because invoke reads a plain file given as "
        "`in_stream` one byte per 10 ms loop (a 700-byte cert would take 7 s) and one shared file object would be "
        "consumed by whichever thread reads first.",
        "- Ansible: bench-only venv `bench/.work/ansible-venv`, `gather_facts: false`, file + copy modules "
        "(bench/playbook.yml), forks = N, pipelining on, host_key_checking on, Ansible's default ssh_args "
        "(ControlMaster=auto, ControlPersist=60s, -C) plus `-o UserKnownHostsFile=...`; "
        f"ANSIBLE_PYTHON_INTERPRETER={REMOTE_PYTHON}. Every run starts cold (new ControlPath dir; the masters of "
        "the previous run are closed, untimed).",
        "- Machine note: root's ~/.bashrc runs `pyenv init`, which costs about 0.1 CPU-s for every remote command "
        "run through root's bash on this host (sshd runs each command with the login shell, which reads "
        "~/.bashrc). It applies equally to every variant per remote command (Ansible runs several per host), "
        "and on 2 cores it dominates the floor at N=16.",
        "",
        "## Results",
        "",
        *tbl,
        "",
        "## Targets",
        "",
        *tgt,
        "",
        *why,
        *lab,
    ]
    Path(args.results).write_text("\n".join(md) + "\n")
    print()
    print("\n".join(tbl))
    print()
    print("\n".join(tgt))
    print()
    print("\n".join(lab))
    print(f"written: {args.results}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BenchError as exc:
        print(f"\nBENCH ABORTED: {exc}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        print("\nBENCH INTERRUPTED", file=sys.stderr)
        sys.exit(130)
