"""The control machine's state directory (`state_dir`): certificates, keys and htpasswd.

The directory is 0700 and every file 0600; files are written to a temporary name and
renamed into place. Looser permissions found on existing state are refused (exit 2),
since they mean a private key may already have been readable by others.
"""
from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path

from .settings import SettingsError


class StateError(SettingsError):
    """Local state that cannot be used as it is (exit status 2)."""


class StateDir:
    def __init__(self, path: Path):
        self.path = Path(path)

    def check(self) -> None:
        """Refuse a state_dir, or a file in it, that others can read or write."""
        problems = []
        if self.path.exists():
            mode = stat.S_IMODE(self.path.stat().st_mode)
            if mode & 0o077:
                problems.append(f"state_dir {str(self.path)!r} has mode {mode:04o}: it must be 0700 "
                                f"(run: chmod 700 {self.path})")
            for f in sorted(self.path.iterdir()):
                if f.is_file() and stat.S_IMODE(f.stat().st_mode) & 0o077:
                    problems.append(f"state file {str(f)!r} has mode {stat.S_IMODE(f.stat().st_mode):04o}: "
                                    f"it must be 0600 (run: chmod 600 {f})")
        if problems:
            raise StateError(problems)

    def file(self, name: str) -> Path:
        return self.path / name

    def read(self, name: str) -> bytes | None:
        try:
            return self.file(name).read_bytes()
        except FileNotFoundError:
            return None

    def write(self, name: str, data: bytes) -> bool:
        """Write atomically with mode 0600; return False (and write nothing) when unchanged."""
        if self.read(name) == data:
            return False
        self.path.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(self.path, 0o700)
        fd, tmp = tempfile.mkstemp(dir=self.path, prefix=f".{name}.")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.chmod(tmp, 0o600)
            os.replace(tmp, self.file(name))
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return True

    def remove(self, name: str) -> bool:
        try:
            self.file(name).unlink()
            return True
        except FileNotFoundError:
            return False
