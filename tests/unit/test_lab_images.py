"""The lab's node image: what _trim_rootfs leaves of a debootstrap tree (a small tree made here)."""
from __future__ import annotations

import os
from pathlib import Path

from devtools.lab.images import _trim_rootfs


def tree(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


def test_trim_rootfs_empties_docs_caches_and_kernel_dirs_and_removes_host_keys(tmp_path):
    root, outside = tmp_path / "rootfs", tmp_path / "outside"
    outside.mkdir()
    (outside / "keep").write_text("not in the image")
    files = ["usr/share/doc/bash/copyright", "usr/share/man/man1/ls.1.gz", "var/lib/apt/lists/partial/x",
             "var/lib/apt/lists/deb.debian.org_Packages", "var/lib/apt/lists/lock", "var/cache/apt/pkgcache.bin",
             "var/cache/apt/archives/partial/y", "var/log/dpkg.log", "dev/console", "proc/self", "sys/x/y",
             "etc/ssh/ssh_host_ed25519_key", "etc/ssh/ssh_host_ed25519_key.pub", "etc/ssh/sshd_config",
             "debootstrap/debootstrap.log", "usr/bin/sh", "var/cache/apt/srcpkgcache.bin.keep"]
    for rel in files:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(rel)
    os.symlink(outside, root / "usr/share/doc/link")  # a link in the rootfs is removed, never followed
    _trim_rootfs(str(root))
    assert tree(root) == {
        "usr", "usr/share", "usr/share/doc", "usr/share/man", "usr/bin", "usr/bin/sh",
        "var", "var/lib", "var/lib/apt", "var/lib/apt/lists", "var/lib/apt/lists/partial",
        "var/lib/apt/lists/partial/x", "var/lib/apt/lists/lock", "var/cache", "var/cache/apt",
        "var/cache/apt/archives", "var/cache/apt/archives/partial", "var/cache/apt/archives/partial/y",
        "var/cache/apt/srcpkgcache.bin.keep", "var/log", "dev", "proc", "sys", "etc", "etc/ssh",
        "etc/ssh/sshd_config"}
    assert (outside / "keep").read_text() == "not in the image"
