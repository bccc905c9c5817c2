"""Build the two lab images without any registry: debootstrap + docker import.

* node image ``swarm-registry-lab/node:<h>``: Debian bookworm (minbase) with sshd, sudo and
  Debian's docker.io (a lab's bastion runs it too, sshd only); ``<h>`` hashes the recipe so it is rebuilt only when that changes.
* registry image ``swarm-registry-lab/registry:2``: Debian's docker-registry binary, its
  libraries and a config.yml equivalent to the upstream registry:2 image.
"""
from __future__ import annotations

import glob
import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from . import settings as S
from .engine import Out, Step, docker, docker_bin, image_id, image_label, run
from .errors import LabError

# Bump when the build steps change in a way the hashed inputs do not show.
NODE_RECIPE_VERSION = "1"
REGISTRY_RECIPE_VERSION = "1"

SUITE = "bookworm"
NODE_PACKAGES = [
    "openssh-server", "docker.io", "iproute2", "ca-certificates", "gnupg", "curl", "procps",
    "sudo",  # the user="deploy" shapes of lab.up
]
NODE_ENTRYPOINT = "/usr/local/sbin/lab-node-entrypoint"

# ---------------------------------------------------------------------------------------
# recipe hashes and tags


def _sha(parts: list[bytes]) -> str:
    h = hashlib.sha256()
    for p in parts:
        h.update(len(p).to_bytes(8, "big"))
        h.update(p)
    return h.hexdigest()


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise LabError(f"lab file missing: {path} ({exc.strerror})") from None


def node_recipe_hash() -> str:
    return _sha([
        NODE_RECIPE_VERSION.encode(), SUITE.encode(), ",".join(NODE_PACKAGES).encode(),
        _read(S.ENTRYPOINT_FILE), _read(S.SSHD_CONF_FILE),
    ])


def node_image_tag() -> str:
    return f"{S.NODE_IMAGE_REPO}:{node_recipe_hash()[:12]}"


def registry_recipe_hash() -> str:
    return _sha([REGISTRY_RECIPE_VERSION.encode(), _read(S.REGISTRY_CONFIG_FILE)])


# ---------------------------------------------------------------------------------------
# apt sources / proxy of the control machine


def debian_mirror() -> str:
    """The Debian mirror URL the control machine's apt uses for the main suite."""
    candidates: list[tuple[int, str]] = []
    for path in sorted(glob.glob("/etc/apt/sources.list.d/*.sources")):
        try:
            text = Path(path).read_text()
        except OSError:
            continue
        for stanza in re.split(r"\n\s*\n", text):
            fields: dict[str, str] = {}
            for line in stanza.splitlines():
                if line.lstrip().startswith("#") or ":" not in line:
                    continue
                key, _, value = line.partition(":")
                fields[key.strip().lower()] = value.strip()
            if fields.get("enabled", "yes").lower() == "no":
                continue
            if "deb" not in fields.get("types", "").split():
                continue
            suites = fields.get("suites", "").split()
            for uri in fields.get("uris", "").split():
                candidates.append((0 if SUITE in suites else 1, uri))
    lists = ["/etc/apt/sources.list"] + sorted(glob.glob("/etc/apt/sources.list.d/*.list"))
    for path in lists:
        try:
            lines = Path(path).read_text().splitlines()
        except OSError:
            continue
        for line in lines:
            line = re.sub(r"\[[^\]]*\]", " ", line.split("#", 1)[0]).split()
            if len(line) >= 3 and line[0] == "deb":
                candidates.append((0 if line[2] == SUITE else 1, line[1]))
    good = [(rank, uri) for rank, uri in candidates
            if uri.startswith(("http://", "https://")) and "security" not in uri]
    if not good:
        raise LabError("no Debian mirror found in the control machine's apt sources "
                       "(/etc/apt/sources.list.d/*.sources URIs: or /etc/apt/sources.list deb lines)")
    good.sort(key=lambda t: t[0])
    return good[0][1]


def apt_proxy() -> str | None:
    """Acquire::http::Proxy of the control machine's apt configuration, if any."""
    if shutil.which("apt-config"):
        proc = subprocess.run(["apt-config", "dump", "Acquire::http::Proxy"],
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        for line in proc.stdout.splitlines():
            m = re.match(r'\s*Acquire::http::Proxy\s+"([^"]*)";', line, re.I)
            if m and m.group(1) and m.group(1).upper() != "DIRECT":
                return m.group(1)
        return None
    files = ["/etc/apt/apt.conf"] + sorted(glob.glob("/etc/apt/apt.conf.d/*"))
    for path in files:
        try:
            text = Path(path).read_text(errors="replace")
        except OSError:
            continue
        m = re.search(r'Acquire::http::Proxy\s+"([^"]+)"\s*;', text, re.I)
        if m and m.group(1).upper() != "DIRECT":
            return m.group(1)
    return None


# ---------------------------------------------------------------------------------------
# temp dirs that may hold mounts (debootstrap mounts /proc, /sys inside its target)


def _mounts_under(path: str) -> list[str]:
    found = []
    try:
        with open("/proc/self/mountinfo") as fh:
            for line in fh:
                mnt = line.split()[4].replace("\\040", " ")
                if mnt == path or mnt.startswith(path.rstrip("/") + "/"):
                    found.append(mnt)
    except OSError:
        pass
    return found


def _remove_tree(path: str) -> None:
    for mnt in sorted(_mounts_under(path), key=len, reverse=True):
        subprocess.run(["umount", "-l", mnt], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    if _mounts_under(path):  # never recurse into a live mount
        raise LabError(f"cannot clean {path}: something is still mounted under it")
    shutil.rmtree(path, ignore_errors=True)


def _tmpdir(prefix: str) -> str:
    base = "/var/tmp" if os.path.isdir("/var/tmp") else None
    return tempfile.mkdtemp(prefix=prefix, dir=base)


def _import_tree(rootfs: str, tag: str, changes: list[str], what: str) -> None:
    """tar -C rootfs -c . | docker import --change ... - tag"""
    tar = subprocess.Popen(
        ["tar", "--numeric-owner", "-C", rootfs, "-c", "."],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    argv = [docker_bin(), "import"]
    for c in changes:
        argv += ["--change", c]
    argv += ["-", tag]
    imp = subprocess.run(argv, stdin=tar.stdout, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    tar.stdout.close()
    tar_err = tar.stderr.read().decode(errors="replace")
    tar.wait()
    if tar.returncode != 0:
        raise LabError(f"{what}: tar of the root filesystem failed: {tar_err.strip().splitlines()[-1:] or '?'}")
    if imp.returncode != 0:
        raise LabError(f"{what}: docker import failed: {imp.stderr.decode(errors='replace').strip()}")


# ---------------------------------------------------------------------------------------
# node image


def ensure_node_image(out: Out) -> str:
    tag = node_image_tag()
    if image_id(tag):
        return tag
    if os.geteuid() != 0:
        raise LabError("building the node image needs root (debootstrap): run as root")
    if not shutil.which("debootstrap"):
        raise LabError("debootstrap is not installed on the control machine: apt-get install debootstrap")
    mirror = debian_mirror()
    proxy = apt_proxy()
    with Step(out, f"building node image {tag} (debootstrap, ~2 min)"):
        work = _tmpdir("swarm-registry-lab-node-")
        try:
            rootfs = os.path.join(work, "rootfs")
            env = dict(os.environ)
            env["DEBIAN_FRONTEND"] = "noninteractive"
            if proxy:
                env["http_proxy"] = proxy
            argv = ["debootstrap", "--variant=minbase",
                    "--include=" + ",".join(NODE_PACKAGES), SUITE, rootfs, mirror]
            log_path = os.path.join(work, "debootstrap.log")
            with open(log_path, "wb") as log:
                proc = subprocess.run(argv, stdout=log, stderr=subprocess.STDOUT, env=env)
            if proc.returncode != 0:
                tail = Path(log_path).read_text(errors="replace").strip().splitlines()[-3:]
                if os.path.exists(os.path.join(rootfs, "debootstrap", "debootstrap.log")):
                    tail = Path(rootfs, "debootstrap", "debootstrap.log").read_text(
                        errors="replace").strip().splitlines()[-3:] or tail
                raise LabError(f"debootstrap of the node image failed (exit {proc.returncode}): {' | '.join(tail)}")
            _trim_rootfs(rootfs)
            _customise_node(rootfs, proxy)
            _import_tree(rootfs, tag, [
                f'ENTRYPOINT ["{NODE_ENTRYPOINT}"]',
                'CMD []',
                'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
                f'LABEL {S.LABEL}=1 {S.LABEL_RECIPE}={node_recipe_hash()}',
            ], "node image")
        finally:
            _remove_tree(work)
    _remove_stale_node_images(tag, out)
    return tag


def _remove_stale_node_images(keep: str, out: Out) -> None:
    """Drop node images of older recipes that no container uses (docker refuses if one does)."""
    for old in sorted(lab_images()):
        if old.startswith(S.NODE_IMAGE_REPO + ":") and old != keep:
            if docker("image", "rm", old, check=False).returncode == 0:
                out(f"[lab] removed outdated node image {old}")


def _remove(path: Path, *, strict: bool = False) -> None:
    """A file, link or directory tree out of the image's rootfs (a link is removed, never followed);
    `strict`: a file that cannot be removed is an error (the host keys must not ship in the image)."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
        return
    try:
        path.unlink()
    except OSError:
        if strict:
            raise


def _trim_rootfs(rootfs: str) -> None:
    """Empty what a node never reads (docs, apt's lists and caches, logs; proc, sys and dev, which docker
    provides), keeping apt's partial/ and lock; remove the host keys debootstrap made, and its own dir."""
    root = Path(rootfs)
    for rel in ["usr/share/doc", "usr/share/man", "usr/share/info", "usr/share/locale",
                "usr/share/lintian", "usr/share/linda", "var/lib/apt/lists",
                "var/cache/apt/archives", "var/cache/debconf", "var/log", "proc", "sys", "dev"]:
        d = root / rel
        if d.is_dir() and not d.is_symlink():
            for child in d.iterdir():
                if child.name not in ("partial", "lock"):
                    _remove(child)
    for pattern in ["var/cache/apt/*.bin", "etc/ssh/ssh_host_*", "debootstrap"]:
        for p in root.glob(pattern):
            _remove(p, strict=True)


def _customise_node(rootfs: str, proxy: str | None) -> None:
    root = Path(rootfs)
    dst = root / NODE_ENTRYPOINT.lstrip("/")
    dst.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(S.ENTRYPOINT_FILE, dst)
    dst.chmod(0o755)
    conf = root / "etc/ssh/sshd_config.d/swarm-registry-lab.conf"
    conf.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(S.SSHD_CONF_FILE, conf)
    conf.chmod(0o644)
    (root / "etc/machine-id").write_text("")
    ssh_dir = root / "root/.ssh"
    ssh_dir.mkdir(mode=0o700, exist_ok=True)
    ssh_dir.chmod(0o700)
    (root / "var/log").mkdir(parents=True, exist_ok=True)
    if proxy:
        p = root / "etc/apt/apt.conf.d/01swarm-registry-lab-proxy"
        p.write_text(f'Acquire::http::Proxy "{proxy}";\n')
    # Keep services from trying to start when packages are installed later over SSH.
    prc = root / "usr/sbin/policy-rc.d"
    prc.write_text("#!/bin/sh\nexit 101\n")
    prc.chmod(0o755)


# ---------------------------------------------------------------------------------------
# registry image


def ensure_registry_image(out: Out) -> str:
    tag = S.REGISTRY_IMAGE
    want = registry_recipe_hash()
    if image_id(tag) and image_label(tag, S.LABEL_RECIPE) == want:
        return tag
    with Step(out, f"building registry image {tag} (docker-registry from Debian)"):
        work = _tmpdir("swarm-registry-lab-registry-")
        try:
            binary = _registry_binary(work)
            rootfs = Path(work, "rootfs")
            rootfs.mkdir()
            dst = rootfs / "usr/bin/docker-registry"
            dst.parent.mkdir(parents=True)
            shutil.copyfile(binary, dst)
            dst.chmod(0o755)
            for lib in _shared_libs(binary):
                target = rootfs / lib.lstrip("/")
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(os.path.realpath(lib), target)  # dereference symlinks
                target.chmod(0o755)
            cfg = rootfs / "etc/docker/registry/config.yml"
            cfg.parent.mkdir(parents=True)
            shutil.copyfile(S.REGISTRY_CONFIG_FILE, cfg)
            cfg.chmod(0o644)
            (rootfs / "etc/passwd").write_text(
                "root:x:0:0:root:/root:/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\n")
            (rootfs / "etc/group").write_text("root:x:0:\nnogroup:x:65534:\n")
            (rootfs / "etc/nsswitch.conf").write_text("hosts: files dns\n")
            for d in ["tmp", "var/lib/registry", "root", "run/secrets"]:
                (rootfs / d).mkdir(parents=True, exist_ok=True)
            os.chmod(rootfs / "tmp", 0o1777)
            _import_tree(str(rootfs), tag, [
                'ENTRYPOINT ["/usr/bin/docker-registry"]',
                'CMD ["serve", "/etc/docker/registry/config.yml"]',
                'VOLUME ["/var/lib/registry"]',
                'EXPOSE 5000',
                f'LABEL {S.LABEL}=1 {S.LABEL_RECIPE}={want}',
            ], "registry image")
        finally:
            _remove_tree(work)
    return tag


def _registry_binary(work: str) -> str:
    installed = "/usr/bin/docker-registry"
    if os.path.isfile(installed) and os.access(installed, os.X_OK):
        return installed
    dl = Path(work, "deb")
    dl.mkdir()
    proc = subprocess.run(["apt-get", "download", "docker-registry"], cwd=dl,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    debs = sorted(dl.glob("docker-registry_*.deb"))
    if proc.returncode != 0 or not debs:
        raise LabError("cannot get Debian's docker-registry package (apt-get download docker-registry failed: "
                       f"{(proc.stderr.strip().splitlines() or ['?'])[-1]}); try apt-get update")
    x = Path(work, "x")
    run(["dpkg-deb", "-x", str(debs[0]), str(x)], what="dpkg-deb -x docker-registry")
    binary = x / "usr/bin/docker-registry"
    if not binary.is_file():
        raise LabError("the docker-registry package holds no /usr/bin/docker-registry")
    return str(binary)


def _shared_libs(binary: str) -> list[str]:
    proc = subprocess.run(["ldd", binary], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if proc.returncode != 0:
        if "not a dynamic executable" in proc.stdout or "statically linked" in proc.stdout:
            return []
        raise LabError(f"ldd {binary} failed: {proc.stdout.strip()}")
    libs = []
    for line in proc.stdout.splitlines():
        line = line.strip()
        m = re.search(r"=>\s*(/\S+)", line) or re.match(r"(/\S+)", line)
        if m:
            libs.append(m.group(1))
    return libs


# ---------------------------------------------------------------------------------------
# removal and status


def lab_images() -> dict[str, str]:
    """Every swarm-registry-lab image on the host engine: 'repo:tag' -> id."""
    proc = docker("image", "ls", "--format", "{{json .}}", check=False)
    found = {}
    for line in proc.stdout.splitlines():
        try:
            obj = json.loads(line)
        except json.JSONDecodeError:
            continue
        repo = obj.get("Repository", "")
        if repo in (S.NODE_IMAGE_REPO, S.REGISTRY_IMAGE.split(":")[0]):
            found[f"{repo}:{obj.get('Tag')}"] = obj.get("ID", "")
    return found


def remove_images(out: Out) -> int:
    tags = sorted(lab_images())
    if not tags:
        return 0
    docker("image", "rm", "--force", *tags, what="docker image rm (lab images)")
    for t in tags:
        out(f"[lab] removed image {t}")
    return len(tags)


def image_tags() -> dict[str, str]:
    return {"node": node_image_tag(), "registry": S.REGISTRY_IMAGE}
