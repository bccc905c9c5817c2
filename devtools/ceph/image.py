"""Build the lab's Ceph image without any registry: debootstrap + apt-get + docker import.

``swarm-registry-lab/ceph:<h>``: Debian bookworm (minbase) with Debian's ceph-mon, ceph-osd
and radosgw (``--no-install-recommends``, no ceph-mgr) and ``entrypoint.sh`` beside this
file. ``<h>`` hashes the recipe, so the image is rebuilt only when that changes.

The debootstrap mirror, apt proxy, rootfs trimming, temp-dir handling and ``docker import``
are the node image's (devtools.lab.images).
"""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from devtools.lab import images as lab_images
from devtools.lab import settings as S
from devtools.lab.engine import Out, Step, docker, image_id
from devtools.lab.errors import LabError

# Bump when the build steps change in a way the hashed inputs do not show.
RECIPE_VERSION = "1"

IMAGE_REPO = "swarm-registry-lab/ceph"
SUITE = lab_images.SUITE
PACKAGES = ["ceph-mon", "ceph-osd", "radosgw"]
ENTRYPOINT_FILE = Path(__file__).resolve().parent / "entrypoint.sh"
ENTRYPOINT = "/usr/local/sbin/ceph-lab-entrypoint"

DEBOOTSTRAP_TIMEOUT = 900
APT_TIMEOUT = 900


def recipe_hash() -> str:
    return lab_images._sha([
        RECIPE_VERSION.encode(), SUITE.encode(), ",".join(PACKAGES).encode(),
        lab_images._read(ENTRYPOINT_FILE),
    ])


def image_tag() -> str:
    return f"{IMAGE_REPO}:{recipe_hash()[:12]}"


def ensure_image(out: Out) -> str:
    """The tag of the current recipe's image; built first if the engine lacks it."""
    tag = image_tag()
    if image_id(tag):
        return tag
    if os.geteuid() != 0:
        raise LabError("building the Ceph image needs root (debootstrap, chroot): run as root")
    for tool in ("debootstrap", "chroot", "mount", "umount"):
        if not shutil.which(tool):
            raise LabError(f"{tool} is not installed on the control machine (apt-get install debootstrap)")
    mirror = lab_images.debian_mirror()
    proxy = lab_images.apt_proxy()
    with Step(out, f"building Ceph image {tag} (debootstrap + {' '.join(PACKAGES)}, ~3 min)"):
        work = lab_images._tmpdir("swarm-registry-lab-ceph-")
        try:
            rootfs = os.path.join(work, "rootfs")
            log_path = os.path.join(work, "build.log")
            _debootstrap(rootfs, mirror, proxy, log_path)
            _install_packages(rootfs, proxy, log_path)
            lab_images._trim_rootfs(rootfs)
            _customise(rootfs)
            lab_images._import_tree(rootfs, tag, [
                f'ENTRYPOINT ["{ENTRYPOINT}"]',
                'CMD []',
                'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
                'VOLUME ["/var/lib/ceph"]',
                'EXPOSE 7480',
                f'LABEL {S.LABEL}=1 {S.LABEL_RECIPE}={recipe_hash()}',
            ], "Ceph image")
        finally:
            lab_images._remove_tree(work)
    _remove_stale_images(tag, out)
    return tag


def _env(proxy: str | None) -> dict:
    env = dict(os.environ)
    env.update(DEBIAN_FRONTEND="noninteractive", LC_ALL="C.UTF-8", LANG="C.UTF-8")
    if proxy:
        env["http_proxy"] = proxy
    return env


def _run_logged(argv: list[str], log_path: str, env: dict, timeout: float, what: str) -> None:
    with open(log_path, "ab") as log:
        log.write(f"\n$ {' '.join(argv)}\n".encode())
        log.flush()
        try:
            proc = subprocess.run(argv, stdout=log, stderr=subprocess.STDOUT, env=env, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise LabError(f"{what}: timed out after {timeout:.0f} s") from None
    if proc.returncode != 0:
        tail = Path(log_path).read_text(errors="replace").strip().splitlines()[-3:]
        raise LabError(f"{what} failed (exit {proc.returncode}): {' | '.join(tail)}")


def _debootstrap(rootfs: str, mirror: str, proxy: str | None, log_path: str) -> None:
    # Same call as the node image's (devtools.lab.images.ensure_node_image, where it is
    # inline), without --include: the Ceph packages go in with apt-get below, which resolves
    # alternatives and skips Recommends properly.
    try:
        _run_logged(["debootstrap", "--variant=minbase", SUITE, rootfs, mirror], log_path,
                    _env(proxy), DEBOOTSTRAP_TIMEOUT, "debootstrap of the Ceph image")
    except LabError as exc:
        inner = Path(rootfs, "debootstrap", "debootstrap.log")
        if inner.exists():
            tail = inner.read_text(errors="replace").strip().splitlines()[-3:]
            raise LabError(f"{exc} | {' | '.join(tail)}") from None
        raise


def _install_packages(rootfs: str, proxy: str | None, log_path: str) -> None:
    root = Path(rootfs)
    prc = root / "usr/sbin/policy-rc.d"  # no service starts in the chroot
    prc.write_text("#!/bin/sh\nexit 101\n")
    prc.chmod(0o755)
    apt_conf = root / "etc/apt/apt.conf.d/99swarm-registry-lab-ceph"
    apt_conf.write_text('APT::Install-Recommends "false";\nAPT::Install-Suggests "false";\n'
                        + (f'Acquire::http::Proxy "{proxy}";\n' if proxy else ""))
    resolv = root / "etc/resolv.conf"
    if resolv.is_symlink() or resolv.exists():
        resolv.unlink()
    shutil.copyfile("/etc/resolv.conf", resolv)
    mounts = []
    try:
        for fstype, src, target in [("proc", "proc", "proc")]:
            dst = root / target
            dst.mkdir(exist_ok=True)
            subprocess.run(["mount", "-t", fstype, src, str(dst)], check=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            mounts.append(str(dst))
        if not (root / "dev/null").exists():  # debootstrap normally makes the device nodes
            (root / "dev").mkdir(exist_ok=True)
            subprocess.run(["mount", "--bind", "/dev", str(root / "dev")], check=True)
            mounts.append(str(root / "dev"))
        env = _env(proxy)
        _run_logged(["chroot", rootfs, "apt-get", "update"], log_path, env, APT_TIMEOUT,
                    "apt-get update in the Ceph image")
        _run_logged(["chroot", rootfs, "apt-get", "install", "-y", "--no-install-recommends", *PACKAGES],
                    log_path, env, APT_TIMEOUT, f"apt-get install {' '.join(PACKAGES)} in the Ceph image")
        _run_logged(["chroot", rootfs, "apt-get", "clean"], log_path, env, 120, "apt-get clean")
    finally:
        for m in reversed(mounts):
            subprocess.run(["umount", m], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        apt_conf.unlink(missing_ok=True)
    if lab_images._mounts_under(rootfs):  # _trim_rootfs empties dev/ and proc/: never with a mount there
        raise LabError(f"cannot finish the Ceph image: something is still mounted under {rootfs}")
    resolv.write_text("")  # docker provides it at run time
    (root / "etc/machine-id").write_text("")


def _customise(rootfs: str) -> None:
    root = Path(rootfs)
    dst = root / ENTRYPOINT.lstrip("/")
    dst.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(ENTRYPOINT_FILE, dst)
    dst.chmod(0o755)
    for d in ["var/log/ceph", "var/lib/ceph", "etc/ceph", "run"]:
        (root / d).mkdir(parents=True, exist_ok=True)


# ---------------------------------------------------------------------------------------
# listing and removal


def ceph_images() -> list[str]:
    """Every swarm-registry-lab/ceph image on the host engine ('repo:tag')."""
    proc = docker("image", "ls", "--format", "{{.Repository}}:{{.Tag}}", IMAGE_REPO, check=False)
    return sorted(t for t in proc.stdout.split() if t.startswith(IMAGE_REPO + ":"))


def _remove_stale_images(keep: str, out: Out) -> None:
    """Drop images of older recipes that no container uses (docker refuses if one does)."""
    for old in ceph_images():
        if old != keep and docker("image", "rm", old, check=False).returncode == 0:
            out(f"[ceph] removed outdated image {old}")


def remove_images(out: Out) -> int:
    tags = ceph_images()
    if tags:
        docker("image", "rm", "--force", *tags, what="docker image rm (Ceph images)")
        for t in tags:
            out(f"[ceph] removed image {t}")
    return len(tags)
