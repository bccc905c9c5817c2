#!/usr/bin/env python3
"""Backup and restore throughput against the `ssh node tar c` floor, gc time and bytes reclaimed, and a
paramiko channel-window experiment, on one named lab in one run (issue 12's "Measure" line).

    .venv/bin/python bench/backup_bench.py [--name bbench] [--rounds 3] [--keep-lab] [--window-only]

1. `inv lab.up --name NAME` (3 nodes; skipped when config/lab-NAME.yaml exists), a variant of its settings
   with registry.delete_enabled: true (bench/.work/lab-NAME-delete.yaml), `inv users.add lenain`, `inv setup`.
2. Fill: on node1, images FROM scratch with random (incompressible) layers of 16-64 MiB, pushed to the
   registry; plus one image `gc-victim` to delete later. The data size is `du -sb` of /var/lib/registry.
3. Floor, per round: `ssh -i KEY -o UserKnownHostsFile=KH -p PORT root@ADDR tar -C /var/lib/registry -cf - .
   > FILE` with OpenSSH's default cipher, with aes128-gcm, and with aes128-ctr + hmac-sha2-256 (what paramiko
   negotiates); the inverse for restore: `ssh ... tar -C /root/bbench-x -xf - < FILE`.
4. Product, per round: `inv backup --to FILE` and `inv backup --to FILE --recipient AGE_PUB`, each timed whole,
   and its stream phase alone (from the `tar -C` command appearing in SWARM_REGISTRY_TRACE to the next command,
   i.e. without the read-only switch around it). Restore: `inv teardown`, `inv restore --from FILE [--identity
   KEY] --force`, `inv setup`, timed apart (restore's data phase again from the trace).
5. (after the window experiment, 6) gc: `inv images.rm gc-victim:v1 --yes`, `inv gc` timed; the bytes it reports reclaimed.
6. Window experiment: a paramiko Transport to node1 (same key/known_hosts), `head -c N /dev/zero` and the tar of
   /var/lib/registry read through `open_session()` with the defaults and with bigger windows/packets,
   `chan.recv(1 << 20)` discarded; MB/s (MB = 10^6 bytes) median of the rounds.
Prints a Markdown table; raw figures as JSON (--json). The lab is taken down at the end unless --keep-lab.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
USER = "lenain"
PASSWORD = "bbench-lab-pass-42"
DATA = "/var/lib/registry"
WORK = ROOT / "bench" / ".work"
MB = 1e6
IMAGES = {"bb-a:v1": [64, 32], "bb-b:v1": [48, 16], "bb-c:v1": [32, 32], "bb-d:v1": [40]}  # MiB per layer
VICTIM = {"gc-victim:v1": [32, 16]}


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def sh(*argv, timeout=1800, check=True, env=None, stdin=None, stdout=None, cwd=ROOT):
    r = subprocess.run([str(a) for a in argv], stdout=stdout or subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=timeout, env=env, stdin=stdin, cwd=cwd, text=stdout is None)
    if check and r.returncode != 0:
        out = r.stdout if isinstance(r.stdout, str) else ""
        raise RuntimeError(f"{' '.join(map(str, argv))[:200]} exited {r.returncode}:\n{out[-3000:]}\n{r.stderr[-2000:]}")
    return r


def uptime() -> str:
    return sh("uptime").stdout.strip()


def med(xs):
    return statistics.median(xs) if xs else float("nan")


class Lab:
    def __init__(self, name: str):
        self.name = name
        self.config = ROOT / "config" / f"lab-{name}.yaml"
        self.delete_cfg = WORK / f"lab-{name}-delete.yaml"

    def container(self, i: int) -> str:
        return f"swarm-registry-lab-{self.name}-node{i}"

    def node(self, i: int, script: str, timeout=1800, check=True):
        return sh("docker", "exec", "-i", self.container(i), "sh", "-c", script, timeout=timeout, check=check)

    def settings(self) -> dict:
        return yaml.safe_load(self.config.read_text())

    def inv(self, *args, cfg=None, timeout=1800, trace: Path | None = None, check=True):
        env = {k: v for k, v in os.environ.items() if not k.startswith("SWARM_REGISTRY_")}
        env.update(REGISTRY_PASSWORD=PASSWORD, SWARM_REGISTRY_CONFIG=str(cfg or self.delete_cfg))
        if trace is not None:
            env["SWARM_REGISTRY_TRACE"] = str(trace)
        return sh(BIN / "inv", *args, env=env, timeout=timeout, check=check)

    def data_bytes(self) -> int:
        return int(self.node(1, f"du -sb {DATA} | cut -f1").stdout.split()[0])


class TraceWatch:
    """Time from the first traced command matching `start` to the next traced command (or the end)."""

    def __init__(self, path: Path, start: str):
        self.path, self.start = path, start
        self.t_start = self.t_end = None
        self._stop = threading.Event()
        self._th = threading.Thread(target=self._run, daemon=True)

    def __enter__(self):
        self.path.unlink(missing_ok=True)
        self._th.start()
        return self

    def _run(self):
        seen = 0
        while not self._stop.is_set():
            try:
                lines = self.path.read_text().splitlines()
            except FileNotFoundError:
                lines = []
            now = time.monotonic()
            for idx in range(seen, len(lines)):
                if self.t_start is None and self.start in lines[idx]:
                    self.t_start, started_at = now, idx
                elif self.t_start is not None and self.t_end is None and idx > started_at:
                    self.t_end = now
            seen = len(lines)
            time.sleep(0.05)

    def __exit__(self, *exc):
        end = time.monotonic()
        self._stop.set()
        self._th.join()
        if self.t_start is not None and self.t_end is None:
            self.t_end = end

    @property
    def seconds(self):
        return None if self.t_start is None else self.t_end - self.t_start


def ssh_argv(lab: Lab, *opts: str) -> list[str]:
    s = lab.settings()
    h = s["hosts"]["node1"]
    return ["ssh", "-i", s["ssh"]["identity_file"], "-o", f"UserKnownHostsFile={s['ssh']['known_hosts']}",
            "-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes", "-p", str(h["port"]), *opts,
            f"{h['user']}@{h['address']}"]


FLOORS = {"default": [], "aes128-gcm": ["-o", "Ciphers=aes128-gcm@openssh.com"],
          "aes128-ctr+hmac-sha2-256": ["-o", "Ciphers=aes128-ctr", "-o", "MACs=hmac-sha2-256"]}


def fill(lab: Lab) -> None:
    endpoint = f"{lab.settings()['registry']['host']}:{lab.settings()['registry']['port']}"
    for ref, sizes in {**IMAGES, **VICTIM}.items():
        copies = "".join(f"COPY f{k} /f{k}\\n" for k in range(len(sizes)))
        mk = "; ".join(f"head -c {mb * 2**20} /dev/urandom > f{k}" for k, mb in enumerate(sizes))
        t0 = time.monotonic()
        lab.node(1, f"set -e; d=$(mktemp -d); cd $d; {mk}; printf 'FROM scratch\\n{copies}' > Dockerfile; "
                    f"docker build -q -t {endpoint}/{ref} . >/dev/null; docker push -q {endpoint}/{ref} >/dev/null; "
                    f"docker rmi -f {endpoint}/{ref} >/dev/null; docker builder prune -af >/dev/null 2>&1; cd /; rm -rf $d")
        log(f"pushed {ref} {sizes} MiB ({time.monotonic() - t0:.1f} s)")


def floor_round(lab: Lab, out: Path, res: dict) -> None:
    for name, opts in FLOORS.items():
        out.unlink(missing_ok=True)
        t0 = time.monotonic()
        with out.open("wb") as fh:
            sh(*ssh_argv(lab, *opts), f"tar -C {DATA} -cf - .", stdout=fh)
        dt = time.monotonic() - t0
        res.setdefault(f"floor tar c ({name})", []).append(dt)
        log(f"floor tar c {name}: {dt:.2f} s, {out.stat().st_size / MB:.1f} MB")
    # the inverse, for restore: unpack into a scratch directory on node1
    for name in ("default", "aes128-ctr+hmac-sha2-256"):
        lab.node(1, "rm -rf /root/bbench-x && mkdir /root/bbench-x")
        t0 = time.monotonic()
        with out.open("rb") as fh:
            sh(*ssh_argv(lab, *FLOORS[name]), "tar -C /root/bbench-x -xf -", stdin=fh)
        dt = time.monotonic() - t0
        res.setdefault(f"floor tar x ({name})", []).append(dt)
        log(f"floor tar x {name}: {dt:.2f} s")
    lab.node(1, "rm -rf /root/bbench-x")
    out.unlink(missing_ok=True)


def backup_round(lab: Lab, tmp: Path, pub: str, res: dict, keep: dict) -> None:
    for kind, extra in (("plain", []), ("age", ["--recipient", pub])):
        f = tmp / f"b-{kind}.{'age' if extra else 'tar'}"
        f.unlink(missing_ok=True)
        t0 = time.monotonic()
        with TraceWatch(tmp / "trace", "tar -C") as w:
            r = lab.inv("backup", "--to", f, *extra, trace=tmp / "trace")
        dt = time.monotonic() - t0
        res.setdefault(f"backup {kind} (whole command)", []).append(dt)
        if w.seconds is not None:
            res.setdefault(f"backup {kind} (stream phase)", []).append(w.seconds)
        keep[kind] = f
        log(f"backup {kind}: {dt:.2f} s (stream {w.seconds and round(w.seconds, 2)} s), {f.stat().st_size / MB:.1f} MB")
        if r.stdout.count("\n") < 40:
            res.setdefault("_last_output", {})[f"backup {kind}"] = r.stdout


def restore_once(lab: Lab, tmp: Path, kind: str, f: Path, idf: Path, res: dict) -> None:
    t0 = time.monotonic()
    lab.inv("teardown")
    res.setdefault("teardown", []).append(time.monotonic() - t0)
    extra = ["--identity", idf] if kind == "age" else []
    t0 = time.monotonic()
    with TraceWatch(tmp / "trace", "restore-data") as w:
        r = lab.inv("restore", "--from", f, *extra, "--force", trace=tmp / "trace")
    dt = time.monotonic() - t0
    res.setdefault(f"restore {kind} (whole command)", []).append(dt)
    if w.seconds is not None:
        res.setdefault(f"restore {kind} (data phase)", []).append(w.seconds)
    res.setdefault("_last_output", {})[f"restore {kind}"] = r.stdout
    t0 = time.monotonic()
    lab.inv("setup")
    res.setdefault("setup after restore", []).append(time.monotonic() - t0)
    log(f"restore {kind}: {dt:.2f} s (data {w.seconds and round(w.seconds, 2)} s)")
    # restore --force keeps the old data aside on node1: remove those copies so the disk does not fill
    lab.node(1, f"ls -d {DATA}.* {DATA}-* 2>/dev/null | xargs -r rm -rf", check=False)


def gc(lab: Lab, res: dict) -> None:
    before = lab.data_bytes()
    t0 = time.monotonic()
    lab.inv("images.rm", *VICTIM, "--yes")
    res["images.rm"] = [time.monotonic() - t0]
    t0 = time.monotonic()
    r = lab.inv("gc")
    res["gc"] = [time.monotonic() - t0]
    m = re.search(r"reclaimed .* \((\d+) bytes: (\d+) -> (\d+) on disk\)", r.stdout)
    res["_gc"] = {"reported_reclaimed": int(m.group(1)) if m else None, "du_before": before,
                  "du_after": lab.data_bytes(), "output": r.stdout[-3000:]}
    log(f"gc: {res['gc'][0]:.2f} s, {res['_gc']}")


def window_experiment(lab: Lab, rounds: int, zero_mb: int) -> dict:
    import paramiko

    s = lab.settings()
    h = s["hosts"]["node1"]

    def connect():
        client = paramiko.SSHClient()
        client.load_host_keys(s["ssh"]["known_hosts"])
        client.set_missing_host_key_policy(paramiko.RejectPolicy())
        client.connect(h["address"], port=h["port"], username=h["user"], key_filename=s["ssh"]["identity_file"],
                       allow_agent=False, look_for_keys=False)
        return client, client.get_transport()

    client, t = connect()
    out = {"cipher": f"{t.local_cipher} / {t.remote_cipher}", "mac": f"{t.local_mac} / {t.remote_mac}",
           "kex": getattr(t, "kex_engine", None).__class__.__name__ if getattr(t, "kex_engine", None) else None}
    variants = {"default (2 MiB window, 32 KiB packet)": {},
                "16 MiB window, 256 KiB packet": {"window_size": 16 * 2**20, "max_packet_size": 256 * 2**10},
                "64 MiB window, 256 KiB packet": {"window_size": 64 * 2**20, "max_packet_size": 256 * 2**10}}
    cmds = {"zero": f"head -c {zero_mb * 10**6} /dev/zero", "tar": f"tar -C {DATA} -cf - ."}
    figures = {}
    for r in range(rounds):
        for cname, cmd in cmds.items():
            for vname, kw in variants.items():
                try:
                    chan = t.open_session(**kw)
                except paramiko.SSHException as exc:  # seen once: a rekey (every 512 MiB) that never completed
                    log(f"window {cname} {vname}: open_session failed after {t.packetizer._Packetizer__sent_bytes} "
                        f"bytes sent since the last rekey: {exc}; reconnecting")
                    figures.setdefault("_failures", []).append(f"{cname} {vname} round {r + 1}: {exc}")
                    client.close()
                    client, t = connect()
                    chan = t.open_session(**kw)
                t0 = time.monotonic()
                chan.exec_command(cmd)
                n = 0
                while True:
                    b = chan.recv(1 << 20)
                    if not b:
                        break
                    n += len(b)
                dt = time.monotonic() - t0
                rc = chan.recv_exit_status()
                chan.close()
                figures.setdefault(cname, {}).setdefault(vname, []).append({"s": dt, "bytes": n, "rc": rc})
                log(f"window {cname} {vname}: {n / MB / dt:.1f} MB/s ({n / MB:.0f} MB, {dt:.2f} s, rc {rc})")
    client.close()
    out["figures"] = figures
    return out


def table(res: dict, size: int, win: dict | None) -> str:
    lines = [f"Data: {size} bytes ({size / MB:.1f} MB) in {DATA} on node1. MB = 10^6 bytes; MB/s = data size / seconds.",
             "", "| what | n | seconds, median (min-max) | MB/s | ratio to the floor (default ssh, same direction) |",
             "|---|---:|---:|---:|---:|"]
    fc, fx = med(res.get("floor tar c (default)", [])), med(res.get("floor tar x (default)", []))
    for k, xs in res.items():
        if k.startswith("_") or not isinstance(xs, list) or not xs:
            continue
        m = med(xs)
        moves = k.startswith(("floor", "backup", "restore"))
        floor = fx if (k.startswith("restore") or "tar x" in k) else fc
        rate = f"{size / MB / m:.1f}" if moves else ""
        ratio = f"{floor / m:.2f}x" if moves else ""
        lines.append(f"| {k} | {len(xs)} | {m:.2f} ({min(xs):.2f}-{max(xs):.2f}) | {rate} | {ratio} |")
    if win:
        lines += ["", f"Window experiment (paramiko {win.get('paramiko')}, cipher {win['cipher']}, mac {win['mac']}):", "",
                  "| stream | open_session | n | MB/s median (min-max) |", "|---|---|---:|---:|"]
        for cname, vs in win["figures"].items():
            if cname.startswith("_"):
                lines.append(f"| failures | {vs} | | |")
                continue
            for vname, runs in vs.items():
                rates = [r["bytes"] / MB / r["s"] for r in runs]
                lines.append(f"| {cname} | {vname} | {len(rates)} | {med(rates):.1f} ({min(rates):.1f}-{max(rates):.1f}) |")
    return "\n".join(lines)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--name", default="bbench")
    p.add_argument("--rounds", type=int, default=3, help="rounds of floor + backups (and of the window experiment)")
    p.add_argument("--restore-rounds", type=int, default=1, help="restores of each kind (plain, age)")
    p.add_argument("--window-rounds", type=int, default=3, help="rounds of the window experiment")
    p.add_argument("--zero-mb", type=int, default=300, help="MB of /dev/zero in the window experiment")
    p.add_argument("--keep-lab", action="store_true", help="leave the lab up at the end")
    p.add_argument("--no-fill", action="store_true", help="the registry already holds the images")
    p.add_argument("--window-only", action="store_true", help="only the paramiko window experiment (lab up)")
    p.add_argument("--skip-gc", action="store_true")
    p.add_argument("--json", type=Path, default=WORK / "backup-bench.json")
    a = p.parse_args()
    import paramiko

    WORK.mkdir(parents=True, exist_ok=True)
    lab = Lab(a.name)
    res: dict = {"_uptime_start": uptime()}
    log(res["_uptime_start"])
    try:
        if a.window_only:
            win = window_experiment(lab, a.window_rounds, a.zero_mb)
            win["paramiko"] = paramiko.__version__
            print(table({}, lab.data_bytes(), win))
            return 0
        if not lab.config.exists():
            t0 = time.monotonic()
            sh(BIN / "inv", "lab.up", "--name", a.name)
            res["_lab_up"] = time.monotonic() - t0
        base = lab.settings()
        base["registry"]["delete_enabled"] = True
        lab.delete_cfg.write_text(yaml.safe_dump(base))
        lab.inv("users.add", USER)
        t0 = time.monotonic()
        lab.inv("setup")
        res["_first_setup"] = time.monotonic() - t0
        if not a.no_fill:
            fill(lab)
        size = lab.data_bytes()
        res["_data_bytes"] = size
        tmp = WORK / f"{a.name}-files"
        tmp.mkdir(exist_ok=True)
        sh("age-keygen", "-o", tmp / "age.key") if not (tmp / "age.key").exists() else None
        pub = next(ln.split()[-1] for ln in (tmp / "age.key").read_text().splitlines() if "public key" in ln)
        keep: dict = {}
        for r in range(a.rounds):
            log(f"round {r + 1}/{a.rounds}")
            floor_round(lab, tmp / "floor.tar", res)
            backup_round(lab, tmp, pub, res, keep)
        res["_archive_bytes"] = {k: f.stat().st_size for k, f in keep.items()}
        win = window_experiment(lab, a.window_rounds, a.zero_mb)
        win["paramiko"] = paramiko.__version__
        res["_window"] = win
        for r in range(a.restore_rounds):
            for kind in ("plain", "age"):
                restore_once(lab, tmp, kind, keep[kind], tmp / "age.key", res)
        if lab.data_bytes() != size:
            log(f"data size after restore differs: {lab.data_bytes()} != {size}")
        if not a.skip_gc:
            gc(lab, res)
        for f in keep.values():
            f.unlink(missing_ok=True)
        res["_uptime_end"] = uptime()
        log(res["_uptime_end"])
        print(table(res, size, win))
    finally:
        a.json.parent.mkdir(parents=True, exist_ok=True)
        a.json.write_text(json.dumps(res, indent=1, default=str))
        if not a.keep_lab:
            sh(BIN / "inv", "lab.down", "--name", a.name, check=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
