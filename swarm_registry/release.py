"""credential_helper.source: release, on the control machine: the docker-credential-pass binary.

The release tarball is downloaded once (or taken from `state_dir`, where it is cached under its
sha256), checked against the pinned `credential_helper.sha256` before anything else happens,
and the `docker-credential-pass` executable is extracted in memory. Local I/O only: what the
nodes receive is decided here, and nothing is sent when a check fails.
"""
from __future__ import annotations

import hashlib
import io
import tarfile
from pathlib import PurePosixPath

from .settings import Settings, SettingsError
from .state import StateDir

BINARY_NAME = "docker-credential-pass"
MAX_DOWNLOAD = 64 << 20  # the v0.6.0 tarball is ~1.5 MB; anything this large is not it
READ_TIMEOUT = 60


class ReleaseError(SettingsError):
    """The release cannot be used (download failed, digest differs, no binary inside): one line,
    exit status 2, and nothing was installed anywhere."""

    def __init__(self, message: str):
        super().__init__([message])


def release_url(settings: Settings) -> str:
    helper = settings.credential_helper
    return helper.url.replace("{version}", helper.version)


def cache_name(sha256: str) -> str:
    return f"docker-credential-helpers-{sha256.lower()}.tar.gz"


def fetch_binary(settings: Settings) -> bytes:
    """The docker-credential-pass executable of the pinned release (downloaded or cached)."""
    helper = settings.credential_helper
    expected = helper.sha256.lower()
    url = release_url(settings)
    if not expected:
        raise ReleaseError("credential_helper.sha256 is empty: pin the release tarball's sha256 to use source: release")
    state = StateDir(settings.state_dir)
    state.check()
    name = cache_name(expected)
    data = state.read(name)
    if data is None or hashlib.sha256(data).hexdigest() != expected:
        if data is not None:
            state.remove(name)  # a damaged cache entry: fetch again
        data = _download(url, settings.ssh.connect_timeout)
        actual = hashlib.sha256(data).hexdigest()
        if actual != expected:
            raise ReleaseError(f"credential helper release {url}: sha256 mismatch: expected {expected}, got {actual}; "
                               "nothing was installed")
        state.write(name, data)
    return extract_binary(data, url)


def _download(url: str, connect_timeout: int) -> bytes:
    import requests

    try:
        with requests.get(url, stream=True, timeout=(connect_timeout, READ_TIMEOUT)) as resp:
            if resp.status_code != 200:
                raise ReleaseError(f"credential helper release {url}: HTTP {resp.status_code} {resp.reason}")
            buf = bytearray()
            for chunk in resp.iter_content(1 << 16):
                buf += chunk
                if len(buf) > MAX_DOWNLOAD:
                    raise ReleaseError(f"credential helper release {url}: larger than {MAX_DOWNLOAD >> 20} MiB")
            return bytes(buf)
    except requests.RequestException as exc:
        raise ReleaseError(f"credential helper release {url}: download failed: {type(exc).__name__}: "
                           f"{str(exc).splitlines()[0] if str(exc) else 'no detail'}") from None


def _unsafe(name: str) -> bool:
    path = PurePosixPath(name)
    return path.is_absolute() or ".." in path.parts or name.startswith("\\")


def extract_binary(data: bytes, origin: str = "the release") -> bytes:
    """The `docker-credential-pass` regular file from a (gzip) tarball, refusing unsafe member paths.
    A bare ELF executable (how releases after v0.6 are published) is returned as it is."""
    if data[:4] == b"\x7fELF":
        return data
    try:
        tar = tarfile.open(fileobj=io.BytesIO(data), mode="r:*")
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise ReleaseError(f"credential helper release {origin}: not a tar archive ({exc})") from None
    with tar:
        try:
            members = tar.getmembers()
        except (tarfile.TarError, EOFError, OSError) as exc:
            raise ReleaseError(f"credential helper release {origin}: damaged tar archive ({exc})") from None
        bad = [m.name for m in members if _unsafe(m.name) or ((m.issym() or m.islnk()) and _unsafe(m.linkname))]
        if bad:
            raise ReleaseError(f"credential helper release {origin}: refused, unsafe paths in the archive: "
                               f"{', '.join(bad[:3])}")
        found = [m for m in members if PurePosixPath(m.name).name == BINARY_NAME]
        regular = [m for m in found if m.isreg()]
        if not regular:
            what = "only as a link or directory" if found else "no such file"
            raise ReleaseError(f"credential helper release {origin}: {BINARY_NAME} not found in the archive ({what})")
        fh = tar.extractfile(regular[0])
        assert fh is not None
        binary = fh.read()
    if not binary:
        raise ReleaseError(f"credential helper release {origin}: {BINARY_NAME} in the archive is empty")
    return binary


def helper_binary(settings: Settings) -> bytes | None:
    """With credential_helper.source: release, the verified binary (downloaded once, cached); else None."""
    return fetch_binary(settings) if settings.credential_helper.source == "release" else None
