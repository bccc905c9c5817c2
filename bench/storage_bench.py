#!/usr/bin/env python3
"""Push and pull through the filesystem driver and through Ceph RGW (S3), same lab, same run (issue 13).

    .venv/bin/python bench/storage_bench.py [--rounds 5] [--keep-lab] [--name sbench]

What it does, on the named lab NAME (default sbench; one lab, taken down at the end unless --keep-lab):

1. `inv lab.up --name NAME --storage s3` (3 nodes + the lab's Ceph container), timed; writes a
   filesystem variant of the settings beside it (storage and registry.nodes removed, registry.node:
   node1, same state_dir: the same CA and users), as tests/integration/test_s3_lab.py's fscfg does.
2. `inv users.add lenain`, then per round both storages, the order alternating round by round
   (fs, s3 / s3, fs / ...): `inv setup` with that storage's settings (redeploys the registry: one
   task on node1 with /var/lib/registry, or 3 replicas over the bucket), then on node1 builds a fresh
   set of test images (untimed; new random bytes / a new salt each round and storage, so no layer
   already exists in the registry and docker never mounts one from another repository), then for
   each image: `docker push` from node1, `docker pull` on node2; each timed with the wall clock
   around the `docker exec` (nothing subtracted; the `docker exec node1 true` overhead is measured
   apart). The push and pull outputs are checked: every layer pushed ("Pushed"), none "exists" or
   "Mounted", every layer pulled ("Pull complete"). Images are removed from both nodes afterwards.
3. The Ceph container's costs: RSS of its processes (docker top) idle after lab up and after each
   s3 round, cgroup memory (docker stats), its volume's disk use (du allocated and apparent), the
   bucket's size (radosgw-admin), the filesystem registry's /var/lib/registry on node1; warm
   restarts (docker stop, then `python -m devtools.ceph up` until HEALTH_OK and S3 answer) and
   the time until every s3 replica serves again; cold starts (devtools.ceph down + up: a fresh volume;
   skipped with --keep-lab, which would leave the lab's stored S3 keys stale).
4. Prints a Markdown table (median of the rounds, min-max, s3/filesystem ratios) and the costs,
   writes the raw figures as JSON (--json, default bench/.work/storage-bench.json).
"""
from __future__ import annotations

import argparse
import json
import os
import secrets
import statistics
import subprocess
import re
import sys
import time
from pathlib import Path

import requests
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
BIN = Path(sys.executable).parent
USER = "lenain"
MiB = 1024 * 1024
MANIFEST_V2 = "application/vnd.docker.distribution.manifest.v2+json"
WORK = "/root/sbench"  # on node1: build contexts


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def sh(*argv: str, timeout: float = 900, check: bool = True, env: dict | None = None,
       input: str | None = None) -> subprocess.CompletedProcess:
    r = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout, env=env, input=input, cwd=ROOT)
    if check and r.returncode != 0:
        raise RuntimeError(f"{' '.join(argv[:6])}... exited {r.returncode}:\n{r.stdout[-2000:]}\n{r.stderr[-2000:]}")
    return r


def timed(*argv: str, **kw) -> tuple[float, subprocess.CompletedProcess]:
    t0 = time.monotonic()
    r = sh(*argv, **kw)
    return time.monotonic() - t0, r


def uptime() -> str:
    return sh("uptime").stdout.strip()


class Lab:
    def __init__(self, name: str, password: str):
        self.name = name
        self.password = password
        self.prefix = f"swarm-registry-lab-{name}"
        self.ceph = f"{self.prefix}-ceph"
        self.volume = f"{self.prefix}-ceph-data"
        self.s3cfg = ROOT / "config" / f"lab-{name}.yaml"
        self.fscfg = ROOT / "config" / f"lab-{name}-fs.yaml"

    def node(self, i: int) -> str:
        return f"{self.prefix}-node{i}"

    def exec(self, i: int, *argv: str, **kw) -> subprocess.CompletedProcess:
        return sh("docker", "exec", self.node(i), *argv, **kw)

    def inv(self, *args: str, cfg: Path, timeout: float = 900) -> tuple[float, subprocess.CompletedProcess]:
        env = {k: v for k, v in os.environ.items() if k not in ("SWARM_REGISTRY_CONFIG", "REGISTRY_PASSWORD")}
        env.update(SWARM_REGISTRY_CONFIG=str(cfg), REGISTRY_PASSWORD=self.password)
        return timed(str(BIN / "inv"), *args, env=env, timeout=timeout)

    def write_fscfg(self) -> None:
        doc = yaml.safe_load(self.s3cfg.read_text())
        doc.pop("storage")
        doc["registry"].pop("nodes")
        doc["registry"]["node"] = "node1"
        self.fscfg.write_text(yaml.safe_dump(doc))

    def settings(self) -> dict:
        return yaml.safe_load(self.s3cfg.read_text())

    @property
    def endpoint(self) -> str:
        r = self.settings()["registry"]
        return f"{r['host']}:{r['port']}"


# --------------------------------------------------------------------------------------------
# test images, built on node1 from scratch


def image_specs(sizes_mib: list[int], layers: int) -> list[dict]:
    specs = [{"name": f"rand-{n}m", "desc": f"1 layer, {n} MiB random", "files": [n]} for n in sizes_mib]
    if layers:
        specs.append({"name": f"rand-{layers}x1m", "desc": f"{layers} layers, 1 MiB random each",
                      "files": [1] * layers})
    specs.append({"name": "registry-fs", "desc": "the lab registry image's files (1 layer, ~22 MiB of "
                                                 "binaries, compressible) + a salt", "rootfs": True})
    return specs


def prepare_node1(lab: Lab) -> None:
    """The registry image's root filesystem as a tar on node1, once (the source of the realistic image)."""
    lab.exec(1, "sh", "-c", f"rm -rf {WORK} && mkdir -p {WORK} && "
                            f"c=$(docker create swarm-registry-lab/registry:2) && docker export $c > {WORK}/rootfs.tar "
                            f"&& docker rm $c >/dev/null")


def build(lab: Lab, spec: dict, ref: str) -> None:
    ctx = f"{WORK}/ctx-{spec['name']}"
    salt = secrets.token_hex(16)
    if spec.get("rootfs"):
        script = (f"rm -rf {ctx} && mkdir -p {ctx}/rootfs && tar -C {ctx}/rootfs -xf {WORK}/rootfs.tar && "
                  f"echo {salt} > {ctx}/rootfs/.sbench-salt && "
                  f"printf 'FROM scratch\\nCOPY rootfs/ /\\n' > {ctx}/Dockerfile")
    else:
        steps = [f"rm -rf {ctx} && mkdir -p {ctx}"]
        lines = ["FROM scratch"]
        for k, n in enumerate(spec["files"]):
            steps.append(f"head -c {n * MiB} /dev/urandom > {ctx}/l{k}")
            lines.append(f"COPY l{k} /l{k}")
        steps.append("printf '%s\\n' " + " ".join(f"'{x}'" for x in lines) + f" > {ctx}/Dockerfile")
        script = " && ".join(steps)
    lab.exec(1, "sh", "-c", script)
    lab.exec(1, "docker", "build", "-q", "-t", ref, ctx)
    lab.exec(1, "rm", "-rf", ctx)


def push(lab: Lab, ref: str) -> float:
    t, r = timed("docker", "exec", lab.node(1), "docker", "push", ref)
    out = r.stdout
    if "already exists" in out or "Mounted from" in out or "Pushed" not in out:
        raise RuntimeError(f"push of {ref} did not upload every layer:\n{out}")
    return t


def pull(lab: Lab, ref: str, nlayers: int) -> float:
    lab.exec(2, "docker", "rmi", "-f", ref, check=False)
    t, r = timed("docker", "exec", lab.node(2), "docker", "pull", ref)
    if r.stdout.count("Pull complete") != nlayers or "Already exists" in r.stdout:
        raise RuntimeError(f"pull of {ref}: expected {nlayers} layers pulled:\n{r.stdout}")
    return t


def manifest_sizes(lab: Lab, repo: str) -> tuple[int, int]:
    """(number of layers, their compressed bytes) from the registry's manifest."""
    s = lab.settings()
    url = f"https://{lab.endpoint}/v2/{repo}/manifests/1"
    m = requests.get(url, auth=(USER, lab.password), headers={"Accept": MANIFEST_V2}, timeout=30,
                     verify=str(Path(s["state_dir"]) / "ca.crt")).json()
    return len(m["layers"]), sum(x["size"] for x in m["layers"])


_UNITS = {"ns": 1e-9, "µs": 1e-6, "us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def go_duration(text: str) -> float:
    """Seconds of a Go duration string such as 1.2s, 300.5ms, 850µs, 1m2.5s."""
    total = 0.0
    for num, unit in re.findall(r"([0-9.]+)(ns|µs|us|ms|s|m|h)", text):
        total += float(num) * _UNITS[unit]
    return total


def request_kind(method: str, uri: str) -> str | None:
    path = uri.split("?", 1)[0]
    if path == "/v2/" or path == "/v2":
        return "GET /v2/ (auth only)"
    if "/blobs/uploads/" in path:
        return {"POST": "blob upload: POST (start)", "PATCH": "blob upload: PATCH (data)",
                "PUT": "blob upload: PUT (commit)"}.get(method)
    if "/blobs/" in path:
        return {"HEAD": "blob HEAD", "GET": "blob GET (pull)"}.get(method)
    if "/manifests/" in path:
        return {"PUT": "manifest PUT", "GET": "manifest GET", "HEAD": "manifest HEAD"}.get(method)
    return None


def registry_requests(lab: Lab, since: float, repo_prefix: str) -> list[dict]:
    """The registry's own request log lines (every replica) since `since`: kind, seconds, node."""
    got = []
    for i in (1, 2, 3):
        ids = lab.exec(i, "docker", "ps", "-q", "--filter", "label=com.docker.swarm.task.id", check=False).stdout.split()
        for cid in ids:
            r = lab.exec(i, "docker", "logs", "--since", f"{since:.0f}", cid, check=False)
            for line in (r.stdout + r.stderr).splitlines():
                if 'msg="response completed"' not in line:
                    continue
                method = re.search(r"http\.request\.method=(\S+)", line)
                uri = re.search(r'http\.request\.uri="?([^" ]+)', line)
                dur = re.search(r"http\.response\.duration=(\S+)", line)
                if not (method and uri and dur):
                    continue
                path = uri.group(1)
                if path.split("?")[0] not in ("/v2/", "/v2") and not path.startswith(f"/v2/{repo_prefix}"):
                    continue
                kind = request_kind(method.group(1), path)
                if kind:
                    got.append({"kind": kind, "s": round(go_duration(dur.group(1)), 4), "node": i})
    return got


# --------------------------------------------------------------------------------------------
# Ceph costs


def ceph_rss(lab: Lab) -> dict[str, float]:
    r = sh("docker", "top", lab.ceph, "-eo", "pid,rss,comm")
    got: dict[str, float] = {}
    for line in r.stdout.splitlines()[1:]:
        _pid, rss, comm = line.split(None, 2)
        got[comm] = got.get(comm, 0) + int(rss) / 1024
    got["total"] = sum(got.values())
    return {k: round(v, 1) for k, v in got.items()}


def docker_stats(*containers: str) -> dict[str, str]:
    r = sh("docker", "stats", "--no-stream", "--format", "{{.Name}}\t{{.MemUsage}}\t{{.CPUPerc}}", *containers)
    return {line.split("\t")[0]: " ".join(line.split("\t")[1:]) for line in r.stdout.splitlines()}


def ceph_disk(lab: Lab) -> dict:
    mp = sh("docker", "volume", "inspect", "-f", "{{.Mountpoint}}", lab.volume).stdout.strip()
    alloc = int(sh("du", "-sk", mp).stdout.split()[0]) / 1024
    apparent = int(sh("du", "-sk", "--apparent-size", mp).stdout.split()[0]) / 1024
    subdirs = {}
    for line in sh("sh", "-c", f"du -sk {mp}/*").stdout.splitlines():
        kb, path = line.split(None, 1)
        subdirs[os.path.basename(path)] = round(int(kb) / 1024, 1)
    return {"allocated_mib": round(alloc, 1), "apparent_mib": round(apparent, 1), "allocated_by_dir_mib": subdirs}


def bucket_stats(lab: Lab) -> dict:
    r = sh("docker", "exec", lab.ceph, "radosgw-admin", "bucket", "stats", "--bucket", "registry", check=False)
    if r.returncode != 0:
        return {"error": (r.stderr or r.stdout).strip()[:200]}
    usage = json.loads(r.stdout).get("usage", {}).get("rgw.main", {})
    return {"objects": usage.get("num_objects"), "size_mib": round(usage.get("size", 0) / MiB, 1),
            "size_actual_mib": round(usage.get("size_actual", 0) / MiB, 1)}


def fs_registry_disk(lab: Lab) -> float:
    r = lab.exec(1, "sh", "-c", "du -sk /var/lib/registry 2>/dev/null || echo 0", check=False)
    return round(int(r.stdout.split()[0]) / 1024, 1)


def replicas_serve(lab: Lab) -> bool:
    """Every s3 replica answers /v2/ by its node's address (publish mode host), the registry's name for TLS."""
    from swarm_registry.registry_http import _NamedHostAdapter

    s = lab.settings()
    host, port = s["registry"]["host"], s["registry"]["port"]
    for h in s["hosts"].values():
        base = f"https://{h['address']}:{port}"
        session = requests.Session()
        session.mount(base, _NamedHostAdapter(host))
        try:
            r = session.get(f"{base}/v2/", auth=(USER, lab.password), headers={"Host": f"{host}:{port}"}, timeout=5,
                            verify=str(Path(s["state_dir"]) / "ca.crt"))
        except requests.RequestException:
            return False
        if r.status_code != 200:
            return False
    return True


def ceph_up(lab: Lab) -> float:
    t, _ = timed(str(BIN / "python"), "-m", "devtools.ceph", "up", "--name", lab.name, timeout=600)
    return t


def warm_restart(lab: Lab) -> dict:
    t_stop, _ = timed("docker", "stop", "-t", "30", lab.ceph, timeout=120)
    t_up = ceph_up(lab)
    t0 = time.monotonic()
    while not replicas_serve(lab):
        if time.monotonic() - t0 > 300:
            raise RuntimeError("the s3 replicas did not serve again within 300 s of Ceph's restart")
        time.sleep(1)
    return {"stop_s": round(t_stop, 2), "up_s": round(t_up, 2),
            "replicas_serve_after_up_s": round(time.monotonic() - t0, 2)}


def cold_start(lab: Lab) -> dict:
    t_down, _ = timed(str(BIN / "python"), "-m", "devtools.ceph", "down", "--name", lab.name, timeout=300)
    t_up = ceph_up(lab)
    return {"down_s": round(t_down, 2), "up_s": round(t_up, 2)}


# --------------------------------------------------------------------------------------------


def med(xs: list[float]) -> str:
    return f"{statistics.median(xs):.2f} ({min(xs):.2f}-{max(xs):.2f})"


def table(results: dict, specs: list[dict], sizes: dict) -> str:
    rows = ["| image | layers, MiB pushed (gzip) | push fs | push s3 | push s3/fs | pull fs | pull s3 | "
            "pull s3/fs |", "|---|---|---:|---:|---:|---:|---:|---:|"]
    for spec in specs:
        n = spec["name"]
        cells = [f"{n}: {spec['desc']}", f"{sizes[n][0]}, {sizes[n][1] / MiB:.1f}"]
        for op in ("push", "pull"):
            fs, s3 = results["fs"][n][op], results["s3"][n][op]
            paired = statistics.median(b / a for a, b in zip(fs, s3))
            cells += [med(fs), med(s3), f"{statistics.median(s3) / statistics.median(fs):.2f} "
                                        f"(paired {paired:.2f})"]
        rows.append("| " + " | ".join(cells) + " |")
    return "\n".join(rows)


def request_table(reqs: dict[str, list[dict]]) -> str:
    """Per request kind: count and median duration the registry logged itself, per storage."""
    kinds = sorted({x["kind"] for st in reqs for x in reqs[st]})
    rows = ["| request (registry's own log) | fs: n, median ms | s3: n, median ms | s3 served by node 1/2/3 |",
            "|---|---:|---:|---|"]
    for k in kinds:
        cells = [k]
        for st in ("fs", "s3"):
            xs = [x["s"] for x in reqs[st] if x["kind"] == k]
            cells.append(f"{len(xs)}, {statistics.median(xs) * 1000:.0f}" if xs else "-")
        by = [sum(1 for x in reqs["s3"] if x["kind"] == k and x["node"] == i) for i in (1, 2, 3)]
        cells.append("/".join(map(str, by)))
        rows.append("| " + " | ".join(cells) + " |")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--rounds", type=int, default=5, help="rounds per storage (median of these)")
    p.add_argument("--keep-lab", action="store_true", help="leave the lab up at the end (no Ceph cold start)")
    p.add_argument("--name", default="sbench", help="the named lab to use")
    p.add_argument("--sizes", default="1,16,64", help="MiB of the single random layer of each synthetic image")
    p.add_argument("--layers", type=int, default=8, help="also an image of this many 1 MiB random layers (0: none)")
    p.add_argument("--ceph-restarts", type=int, default=3, help="warm Ceph restarts measured at the end")
    p.add_argument("--ceph-cold", type=int, default=2, help="cold Ceph starts (fresh volume) measured at the end")
    p.add_argument("--json", default=str(ROOT / "bench" / ".work" / "storage-bench.json"), help="raw figures")
    args = p.parse_args(argv)

    lab = Lab(args.name, "sbench-" + secrets.token_hex(8))
    specs = image_specs([int(x) for x in args.sizes.split(",") if x], args.layers)
    raw: dict = {"uptime_start": uptime(), "rounds": args.rounds, "specs": specs}
    log(raw["uptime_start"])
    try:
        t, r = timed(str(BIN / "inv"), "lab.up", "--name", lab.name, "--storage", "s3", timeout=900)
        raw["lab_up_s"] = round(t, 1)
        raw["lab_up_line"] = next((line for line in r.stdout.splitlines() if " is up: " in line), "")
        log(f"lab up {t:.1f} s")
        lab.write_fscfg()
        raw["ceph_idle"] = {"rss_mib": ceph_rss(lab), "disk": ceph_disk(lab)}
        _, r = lab.inv("users.add", USER, cfg=lab.s3cfg)
        if r.returncode:
            raise RuntimeError(f"users.add failed: {r.stdout}{r.stderr}")
        overhead = [timed("docker", "exec", lab.node(1), "true")[0] for _ in range(11)]
        prepare_node1(lab)
        cfgs = {"fs": lab.fscfg, "s3": lab.s3cfg}
        results = {st: {s["name"]: {"push": [], "pull": []} for s in specs} for st in cfgs}
        setups: dict[str, list[float]] = {"fs": [], "s3": []}
        sizes: dict[str, tuple[int, int]] = {}
        raw["ceph_after_s3_round"] = []
        requests_log: dict[str, list[dict]] = {"fs": [], "s3": []}
        for rnd in range(1, args.rounds + 1):
            order = ("fs", "s3") if rnd % 2 else ("s3", "fs")
            for st in order:
                t, r = lab.inv("setup", cfg=cfgs[st])
                if r.returncode:
                    raise RuntimeError(f"setup ({st}) failed:\n{r.stdout[-3000:]}\n{r.stderr[-2000:]}")
                setups[st].append(round(t, 1))
                log(f"round {rnd} {st}: setup {t:.1f} s; warm-up push/pull, building images")
                warm = f"{lab.endpoint}/sbench-warmup-{st}-r{rnd}:1"
                build(lab, {"name": "warmup", "files": [1]}, warm)
                push(lab, warm)
                pull(lab, warm, 1)
                lab.exec(2, "docker", "rmi", "-f", warm, check=False)
                lab.exec(1, "docker", "rmi", "-f", warm, check=False)
                refs = {}
                for spec in specs:
                    repo = f"sbench-{st}-r{rnd}-{spec['name']}"
                    refs[spec["name"]] = (repo, f"{lab.endpoint}/{repo}:1")
                    build(lab, spec, refs[spec["name"]][1])
                lab.exec(1, "sync")
                time.sleep(2)
                since = time.time() - 1
                for spec in specs:
                    repo, ref = refs[spec["name"]]
                    tp = push(lab, ref)
                    if spec["name"] not in sizes:
                        sizes[spec["name"]] = manifest_sizes(lab, repo)
                    tl = pull(lab, ref, sizes[spec["name"]][0])
                    results[st][spec["name"]]["push"].append(round(tp, 3))
                    results[st][spec["name"]]["pull"].append(round(tl, 3))
                    log(f"round {rnd} {st} {spec['name']}: push {tp:.2f} s, pull {tl:.2f} s")
                    lab.exec(2, "docker", "rmi", "-f", ref, check=False)
                    lab.exec(1, "docker", "rmi", "-f", ref, check=False)
                requests_log[st] += registry_requests(lab, since, f"sbench-{st}-r{rnd}-")
                if st == "s3":
                    raw["ceph_after_s3_round"].append(ceph_rss(lab))
        overhead += [timed("docker", "exec", lab.node(1), "true")[0] for _ in range(11)]
        raw.update(results=results, setup_s=setups, exec_overhead_s=[round(x, 3) for x in overhead],
                   sizes={k: list(v) for k, v in sizes.items()}, registry_requests=requests_log)
        # the registry is the s3 one at this point (the last round ends on s3 when rounds is odd)
        raw["ceph_after_traffic"] = {"rss_mib": ceph_rss(lab), "disk": ceph_disk(lab), "bucket": bucket_stats(lab),
                                     "docker_stats": docker_stats(lab.ceph),
                                     "fs_registry_var_lib_registry_mib": fs_registry_disk(lab)}
        last = order[-1]
        if last != "s3":
            lab.inv("setup", cfg=lab.s3cfg)
        raw["ceph_warm"] = []
        for _ in range(args.ceph_restarts):
            raw["ceph_warm"].append(warm_restart(lab))
            log(f"ceph warm restart: {raw['ceph_warm'][-1]}")
        if args.ceph_restarts:
            time.sleep(5)
            raw["ceph_after_warm"] = {"rss_mib": ceph_rss(lab), "disk": ceph_disk(lab)}
        raw["ceph_cold"] = []
        if not args.keep_lab:
            for _ in range(args.ceph_cold):
                raw["ceph_cold"].append(cold_start(lab))
                log(f"ceph cold start: {raw['ceph_cold'][-1]}")
            if args.ceph_cold:
                time.sleep(5)
                raw["ceph_after_cold"] = {"rss_mib": ceph_rss(lab), "disk": ceph_disk(lab),
                                          "docker_stats": docker_stats(lab.ceph)}
        raw["uptime_end"] = uptime()
    finally:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(raw, indent=2))
        if not args.keep_lab:
            t, _ = timed(str(BIN / "inv"), "lab.down", "--name", lab.name, timeout=600, check=False)
            raw["lab_down_s"] = round(t, 1)
            lab.fscfg.unlink(missing_ok=True)
            Path(args.json).write_text(json.dumps(raw, indent=2))
    print(report(raw, specs))
    return 0


def report(raw: dict, specs: list[dict]) -> str:
    ov = raw["exec_overhead_s"]
    lines = [f"Load at start: {raw['uptime_start']}", f"Load at end: {raw['uptime_end']}", "",
             f"Seconds, median of {raw['rounds']} (min-max); s3/fs: ratio of the medians (median of the "
             f"per-round ratios). `docker exec node1 true`: median {statistics.median(ov):.3f} s "
             f"({min(ov):.3f}-{max(ov):.3f}, {len(ov)} runs).", "",
             table(raw["results"], specs, {k: tuple(v) for k, v in raw["sizes"].items()}), "",
             request_table(raw["registry_requests"]), "",
             f"inv setup, switching storage: fs {raw['setup_s']['fs']} s, s3 {raw['setup_s']['s3']} s", "",
             f"lab up (3 nodes + Ceph): {raw['lab_up_s']} s; lab down: {raw.get('lab_down_s', '-')} s", "",
             "Ceph:", f"- idle after lab up: RSS {raw['ceph_idle']['rss_mib']}; disk {raw['ceph_idle']['disk']}",
             f"- RSS after each s3 round: {raw['ceph_after_s3_round']}",
             f"- after all traffic: {raw['ceph_after_traffic']}",
             f"- warm restarts: {raw['ceph_warm']}",
             f"- after the warm restarts: {raw.get('ceph_after_warm')}",
             f"- cold starts: {raw['ceph_cold']}",
             f"- after the cold starts: {raw.get('ceph_after_cold')}"]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
