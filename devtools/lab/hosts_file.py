"""The tagged lines of the labs in the control machine's /etc/hosts: one line per lab (one per
registry node for a lab whose registry runs as replicas on several nodes).

The default lab's line ends with ``# swarm-registry-lab``; a named lab X's with
``# swarm-registry-lab:X`` (so code that only knows the default tag leaves it alone).
"""
from __future__ import annotations

import errno
import os
import tempfile
from pathlib import Path

from . import settings as S
from .errors import LabError


def _is_tagged(line: str, tag: str = S.HOSTS_TAG) -> bool:
    return line.rstrip().endswith(tag)


def hosts_line(ip: str, name: str, tag: str = S.HOSTS_TAG) -> str:
    return f"{ip} {name}  {tag}"


def current(path: Path = S.HOSTS_FILE, tag: str = S.HOSTS_TAG) -> str | None:
    """The line tagged `tag` now in the hosts file, or None."""
    try:
        lines = path.read_text().splitlines()
    except FileNotFoundError:
        return None
    tagged = [ln for ln in lines if _is_tagged(ln, tag)]
    return tagged[0] if tagged else None


def tagged_lines(path: Path = S.HOSTS_FILE, tag: str = S.HOSTS_TAG) -> list[str]:
    """Every line tagged `tag` now in the hosts file (several for a lab with registry replicas)."""
    try:
        return [ln for ln in path.read_text().splitlines() if _is_tagged(ln, tag)]
    except FileNotFoundError:
        return []


def _rewrite(path: Path, new_lines: list[str]) -> None:
    text = "".join(ln + "\n" for ln in new_lines)
    try:
        st = path.stat()
        mode = st.st_mode & 0o7777
    except FileNotFoundError:
        mode = 0o644
    try:
        fd, tmp = tempfile.mkstemp(prefix=".hosts.swarm-registry-lab.", dir=str(path.parent))
    except OSError as exc:
        raise LabError(f"cannot write {path}: {exc.strerror} (run as root)") from None
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
        os.chmod(tmp, mode)
        try:
            os.replace(tmp, path)
            return
        except OSError as exc:
            # /etc/hosts bind-mounted into a container: rename over it fails (EBUSY/EXDEV)
            if exc.errno not in (errno.EBUSY, errno.EXDEV, errno.EPERM, errno.EACCES):
                raise
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    try:
        with open(path, "r+") as fh:
            fh.seek(0)
            fh.write(text)
            fh.truncate()
    except OSError as exc:
        raise LabError(f"cannot write {path}: {exc.strerror} (run as root)") from None


def ensure(ip: str | list[str], name: str, path: Path = S.HOSTS_FILE, tag: str = S.HOSTS_TAG) -> bool:
    """Make the line tagged `tag` exactly `ip name  <tag>` (a list of addresses: one such line
    each, in that order); True if the file changed.

    Lines of other tags (other labs) are left as they are."""
    want = [hosts_line(a, name, tag) for a in ([ip] if isinstance(ip, str) else ip)]
    try:
        lines = path.read_text().splitlines()
    except FileNotFoundError:
        lines = []
    tagged = [ln for ln in lines if _is_tagged(ln, tag)]
    if tagged == want:
        return False
    new, placed = [], False
    for ln in lines:
        if _is_tagged(ln, tag):
            if not placed:
                new.extend(want)
                placed = True
            continue
        new.append(ln)
    if not placed:
        new.extend(want)
    _rewrite(path, new)
    return True


def remove(path: Path = S.HOSTS_FILE, tag: str = S.HOSTS_TAG) -> bool:
    """Drop the line(s) tagged `tag`; True if the file changed."""
    try:
        lines = path.read_text().splitlines()
    except FileNotFoundError:
        return False
    new = [ln for ln in lines if not _is_tagged(ln, tag)]
    if new == lines:
        return False
    _rewrite(path, new)
    return True
