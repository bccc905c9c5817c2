"""The backup archive: one tar file, streamed both ways, optionally encrypted with age (pyrage).

Members, in order: `state/NAME` (every file of state_dir: CA, keys, htpasswd), `data/...` (the
registry's data_dir, re-packed member by member from the node's `tar c` stream: never held whole in
memory), then `MANIFEST.json`: format, what was backed up, and the size and sha256 of every file
member. `verify` reads an archive through and checks it against its manifest (a manifest missing or
not last: truncated; a size or sha256 differing: damaged or tampered) before a restore changes
anything. Only regular files and directories with relative names are accepted.

With recipients (age X25519 `age1...` keys, or SSH public keys), the tar stream goes through
`pyrage.encrypt_io` in the standard age format (`age -d -i KEY` decrypts it); age's own MAC then also
refuses a tampered, truncated or wrongly-keyed file. The file is written 0600 under a temp name and
renamed into place only when complete. No SSH here: jobs/backup.py streams the node's data through it.
"""
from __future__ import annotations

import datetime as dt
import fcntl
import hashlib
import io
import json
import os
import subprocess
import sys
import tarfile
import threading
from dataclasses import dataclass, field
from pathlib import Path

from . import tarstream
from .settings import SettingsError

FORMAT = "swarm-registry-backup/1"
MANIFEST = "MANIFEST.json"
STATE, DATA = "state/", "data/"
AGE_MAGIC = b"age-encryption.org/v1\n"
BUF = 1 << 20


class ArchiveError(SettingsError):
    """An archive that cannot be used (truncated, tampered, wrongly keyed, not ours): exit 2, nothing changed."""


# --- keys ---------------------------------------------------------------------------------------


class AgeKeys(list):
    """Parsed age keys (pyrage objects: a bad key is refused before anything remote), plus `args`: what
    the age process (`_age_process`) is given to read them again: recipient lines (public), or the
    identity file's path (never the secret key itself)."""

    def __init__(self, keys, args):
        super().__init__(keys)
        self.args = list(args)


def recipients(values: list[str]) -> AgeKeys:
    """age recipients from `--recipient` values: an `age1...` key, an SSH public key line, or a file
    holding such lines (e.g. ~/.ssh/id_ed25519.pub)."""
    import pyrage

    found, used = [], []
    for value in values:
        lines = [value]
        path = Path(value).expanduser()
        if not value.startswith(("age1", "ssh-")) and path.is_file():
            lines = [ln.strip() for ln in path.read_text(encoding="utf-8", errors="replace").splitlines()
                     if ln.strip() and not ln.startswith("#")]
        for line in lines:
            try:
                if line.startswith("age1"):
                    found.append(pyrage.x25519.Recipient.from_str(line))
                elif line.startswith(("ssh-ed25519 ", "ssh-rsa ")):
                    found.append(pyrage.ssh.Recipient.from_str(line))
                else:
                    raise ValueError("not an age1... key nor an ssh-ed25519/ssh-rsa public key")
                used.append(line)
            except (ValueError, pyrage.RecipientError) as exc:
                raise SettingsError([f"--recipient {value!r}: must be an age public key (age1...), an SSH public "
                                     f"key (ssh-ed25519/ssh-rsa) or a file of them: {exc}"]) from None
    return AgeKeys(found, used)


def identities(path: str) -> AgeKeys:
    """age identities from `--identity FILE`: age secret keys (AGE-SECRET-KEY-1...) or an unencrypted
    SSH private key (OpenSSH format)."""
    import pyrage

    p = Path(path).expanduser()
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise SettingsError([f"--identity {path!r}: cannot read it ({exc.strerror})"]) from None
    try:
        if b"PRIVATE KEY-----" in data:
            return AgeKeys([pyrage.ssh.Identity.from_buffer(data)], [str(p)])
        keys = [ln.strip() for ln in data.decode("utf-8", "replace").splitlines() if ln.startswith("AGE-SECRET-KEY-")]
        if keys:
            return AgeKeys([pyrage.x25519.Identity.from_str(k) for k in keys], [str(p)])
    except (ValueError, pyrage.IdentityError) as exc:
        raise SettingsError([f"--identity {path!r}: not a usable key ({exc}); a passphrase-protected SSH key is "
                             "not supported: use an age key or an unencrypted SSH key"]) from None
    raise SettingsError([f"--identity {path!r}: holds no age secret key (AGE-SECRET-KEY-1...) nor SSH private key"])


# --- age in its own process ----------------------------------------------------------------------


def _age_child() -> None:
    """The age process: `encrypt RECIPIENT...` or `decrypt IDENTITY_FILE`, stdin to stdout. pyrage holds
    the GIL while it encrypts, so in the control process it stalled the SSH reader (0.55x of the floor,
    bench/backup-results.md); here it has its own. A refusal is one line on stderr, exit 3."""
    import signal

    import pyrage

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles ^C and closes our pipes
    how, args = sys.argv[1], sys.argv[2:]
    src, dst = open(0, "rb", buffering=BUF, closefd=False), open(1, "wb", buffering=BUF, closefd=False)
    try:
        if how == "encrypt":
            pyrage.encrypt_io(src, dst, recipients(args))
        else:
            pyrage.decrypt_io(src, dst, identities(args[0]))
        dst.flush()
    except (pyrage.DecryptError, pyrage.EncryptError, OSError, SettingsError) as exc:
        sys.stderr.write(f"{exc}\n")
        sys.exit(3)


def _age_process(how: str, keys: AgeKeys, stdin, stdout) -> subprocess.Popen:
    """This interpreter running `_age_child` (the same package, found through PYTHONPATH)."""
    root = str(Path(__file__).resolve().parent.parent)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))}
    proc = subprocess.Popen([sys.executable, "-c", "from swarm_registry.backup import _age_child; _age_child()",
                             how, *keys.args], stdin=stdin, stdout=stdout, stderr=subprocess.PIPE, env=env)
    for end in (proc.stdin, proc.stdout):
        if end is not None:
            _big_pipe(end.fileno())
    return proc


def _age_error(proc: subprocess.Popen) -> str:
    """The age process's one-line reason (its last stderr line)."""
    lines = proc.stderr.read().decode("utf-8", "replace").strip().splitlines()
    return lines[-1] if lines else f"exit {proc.returncode}"


class _AgeWriter:
    """Encrypts what is written into `out` (a file) through the age process; `close` waits for it."""

    def __init__(self, keys: AgeKeys, out):
        out.flush()
        self.proc = _age_process("encrypt", keys, subprocess.PIPE, out.fileno())
        self._in = self.proc.stdin

    def write(self, data) -> int:
        return self._in.write(data)

    def close(self) -> None:
        try:
            self._in.close()
        finally:
            if self.proc.wait() != 0:
                raise ArchiveError([f"age encryption failed: {_age_error(self.proc)}"])

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait()


class _AgeReader:
    """The plaintext of an age file (the age process decrypting it): ArchiveError at once for a wrong
    key, at the end for a tampered or truncated file."""

    def __init__(self, path: Path, keys: AgeKeys):
        self.path = path
        with open(path, "rb") as fh:
            self.proc = _age_process("decrypt", keys, fh, subprocess.PIPE)

    def read(self, n: int = -1) -> bytes:
        data = self.proc.stdout.read(n if n and n > 0 else BUF)
        if not data and self.proc.wait() != 0:
            raise ArchiveError([f"{self.path}: cannot decrypt ({_age_error(self.proc)}): wrong key, or the file "
                                "is damaged, tampered or truncated; nothing was changed"])
        return data

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        self.proc.stdout.close()
        self.proc.stderr.close()


# --- a thread between a pipe and a producer ----------------------------------------------------------


def _big_pipe(fd: int) -> None:
    try:  # a 1 MiB pipe: fewer hand-overs between the two ends (Linux; else the default 64 KiB)
        fcntl.fcntl(fd, getattr(fcntl, "F_SETPIPE_SZ", 1031), BUF)
    except OSError:
        pass


class _Pipe:
    """A reader of a pipe whose writing end is served by a thread (a producer); the thread's exception is
    kept and raised at EOF (or by `close()`)."""

    def __init__(self, target):
        r, w = os.pipe()
        _big_pipe(w)
        self._mine, theirs = os.fdopen(r, "rb", buffering=BUF), os.fdopen(w, "wb", buffering=BUF)
        self.error: BaseException | None = None

        def run():
            try:
                target(theirs)
            except BaseException as exc:  # noqa: BLE001 - kept and raised in the caller's thread
                self.error = exc
            finally:
                try:
                    theirs.close()
                except OSError:
                    pass

        self._thread = threading.Thread(target=run, daemon=True)
        self._thread.start()

    def read(self, n: int = -1) -> bytes:
        data = self._mine.read(n if n and n > 0 else BUF)
        if not data:
            self._thread.join()
            if self.error is not None:
                raise self.error
        return data

    def close(self) -> None:
        try:
            self._mine.close()
        except OSError:
            pass
        self._thread.join()
        if self.error is not None:
            raise self.error


def open_plain(path: Path, idents: AgeKeys | None):
    """The archive's tar stream: the file itself, or its age decryption (a reader; raises ArchiveError at
    the end of a tampered or truncated one, at once for a wrong key)."""
    if not is_encrypted(path):
        return open(path, "rb", buffering=BUF)
    if not idents:
        raise ArchiveError([f"{path}: encrypted with age: give --identity KEYFILE (an age key or the SSH private "
                            "key matching a recipient)"])
    return _AgeReader(path, idents)


# --- writing ------------------------------------------------------------------------------------


class _Hashing:
    """A reader that hashes and counts what passes through it."""

    def __init__(self, src):
        self.src, self.sha, self.size = src, hashlib.sha256(), 0

    def read(self, n: int = -1) -> bytes:
        data = self.src.read(n)
        self.sha.update(data)
        self.size += len(data)
        return data


@dataclass
class Member:
    name: str
    size: int
    sha256: str


@dataclass
class Manifest:
    meta: dict
    members: list[Member] = field(default_factory=list)

    @property
    def data_files(self) -> int:
        return sum(m.name.startswith(DATA) for m in self.members)

    @property
    def data_bytes(self) -> int:
        return sum(m.size for m in self.members if m.name.startswith(DATA))

    @property
    def state_files(self) -> list[str]:
        return [m.name[len(STATE):] for m in self.members if m.name.startswith(STATE)]

    def to_json(self) -> bytes:
        return json.dumps({**self.meta, "format": FORMAT,
                           "members": [{"name": m.name, "size": m.size, "sha256": m.sha256} for m in self.members]},
                          indent=1, sort_keys=True).encode()


def _safe_name(name: str) -> str:
    name = name[2:] if name.startswith("./") else name
    name = name.rstrip("/")
    parts = name.split("/") if name not in ("", ".") else []
    if name.startswith("/") or any(p in ("..", "") for p in parts):
        raise ArchiveError([f"archive member {name!r}: not a plain relative path"])
    return "/".join(parts)


class Writer:
    """Writes the archive to `path` (0600, temp name, renamed by `commit`; `abort` removes it)."""

    def __init__(self, path: Path, recips: AgeKeys | None = None):
        self.path = Path(path)
        self.tmp = self.path.with_name(f".{self.path.name}.partial-{os.getpid()}")
        fd = os.open(self.tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        os.fchmod(fd, 0o600)
        self._file = os.fdopen(fd, "wb", buffering=BUF)
        self._sink = self._file
        if recips:
            self._sink = _AgeWriter(recips, self._file)
        self.tar = tarstream.Writer(self._sink.write)
        self.manifest = Manifest({})
        self._names: set[str] = set()

    def _add(self, info: tarfile.TarInfo, src=None) -> None:
        if info.name in self._names:
            raise ArchiveError([f"archive member {info.name!r} twice"])
        self._names.add(info.name)
        if src is None:
            self.tar.add(info)
            return
        try:
            size, sha = self.tar.add(info, src)
        except tarstream.TarFormatError as exc:
            raise ArchiveError([str(exc)]) from None
        self.manifest.members.append(Member(info.name, size, sha))

    def add_bytes(self, name: str, data: bytes, mode: int = 0o600) -> None:
        info = tarfile.TarInfo(name)
        info.size, info.mode, info.mtime = len(data), mode, int(dt.datetime.now().timestamp())
        self._add(info, io.BytesIO(data))

    def add_state(self, state_dir: Path) -> list[str]:
        """Every regular file of state_dir (flat) as state/NAME."""
        names = []
        for f in sorted(Path(state_dir).iterdir()):
            if f.is_file() and not f.name.startswith("."):
                self.add_bytes(STATE + f.name, f.read_bytes(), 0o600)
                names.append(f.name)
        return names

    def add_data_tar(self, reader) -> tuple[int, int]:
        """Re-pack a tar stream (the node's `tar -C data_dir -c .`) as data/...; (files, bytes)."""
        files = size = 0
        try:
            for m, content in tarstream.members(reader):
                rel = _safe_name(m.name)
                info = tarfile.TarInfo(DATA + rel if rel else DATA.rstrip("/"))
                info.mode, info.mtime, info.uid, info.gid = m.mode, int(m.mtime), m.uid, m.gid
                if m.isdir():
                    info.type = tarfile.DIRTYPE
                    self._add(info)
                else:
                    info.size = m.size
                    self._add(info, content)
                    files, size = files + 1, size + m.size
        except tarstream.TarFormatError as exc:
            raise ArchiveError([f"the data stream from the node is not a complete tar ({exc})"]) from None
        return files, size

    def commit(self, meta: dict) -> Manifest:
        self.manifest.meta = {**meta, "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")}
        body = self.manifest.to_json()
        info = tarfile.TarInfo(MANIFEST)
        info.size, info.mode, info.mtime = len(body), 0o600, int(dt.datetime.now().timestamp())
        self.tar.add(info, io.BytesIO(body))
        self.tar.close()
        if self._sink is not self._file:
            self._sink.close()
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()
        os.replace(self.tmp, self.path)
        return self.manifest

    def abort(self) -> None:
        for closing in (getattr(self._sink, "kill", None), self._file.close):
            try:
                if closing:
                    closing()
            except BaseException:  # noqa: BLE001 - best effort: the temp file goes anyway
                pass
        self.tmp.unlink(missing_ok=True)



# --- reading ------------------------------------------------------------------------------------


class _Verifying:
    """A member's reader that refuses (before handing over its last bytes) content whose sha256 differs.
    It reads through the walk's `_Hashing` of the member from its first byte, and checks that hash
    rather than computing its own."""

    def __init__(self, src: _Hashing, member: Member):
        self.src, self.member, self.left = src, member, member.size

    def read(self, n: int = -1) -> bytes:
        data = self.src.read(self.left if n is None or n < 0 else min(n, self.left))
        self.left -= len(data)
        if self.left == 0 and self.src.sha.hexdigest() != self.member.sha256:
            raise ArchiveError([f"{self.member.name}: content differs from the archive's manifest"])
        return data


def _walk(stream, path: Path, on_member) -> Manifest:
    """Read the whole tar stream; `on_member(info, reader)` per member before MANIFEST.json; check
    every member against the manifest at the end."""
    seen: dict[str, tuple[int, str]] = {}
    manifest = None
    try:
        for m, content in tarstream.members(stream):
            if manifest is not None:
                raise ArchiveError([f"{path}: member {m.name!r} after {MANIFEST}: not an archive of ours"])
            if m.name == MANIFEST and m.isreg():
                try:
                    doc = json.loads(tarstream.read_all(content, 16 << 20))
                    members = [Member(x["name"], int(x["size"]), x["sha256"]) for x in doc.pop("members")]
                except (ValueError, KeyError, TypeError):
                    raise ArchiveError([f"{path}: {MANIFEST} cannot be read: damaged"]) from None
                if doc.get("format") != FORMAT:
                    raise ArchiveError([f"{path}: format {doc.get('format')!r}, expected {FORMAT}"])
                manifest = Manifest(doc, members)
                continue
            name = _safe_name(m.name)
            if not (name.startswith((STATE, DATA)) or name == DATA.rstrip("/")) or not (m.isreg() or m.isdir()):
                raise ArchiveError([f"{path}: unexpected member {m.name!r}: not an archive of ours"])
            if m.isreg():
                hashing = _Hashing(content)
                on_member(m, hashing)
                while hashing.read(BUF):
                    pass
                seen[name] = (hashing.size, hashing.sha.hexdigest())
            else:
                on_member(m, None)
        while stream.read(BUF):  # to the end: age checks its last chunk there
            pass
    except tarstream.TarFormatError as exc:
        raise ArchiveError([f"{path}: not a complete archive ({exc}): truncated or damaged; nothing was changed"]) \
            from None
    if manifest is None:
        raise ArchiveError([f"{path}: no {MANIFEST} at the end: truncated (or not an archive of ours); "
                            "nothing was changed"])
    want = {m.name: (m.size, m.sha256) for m in manifest.members}
    if seen != want:
        bad = sorted(n for n in set(seen) | set(want) if seen.get(n) != want.get(n))
        raise ArchiveError([f"{path}: {len(bad)} member(s) differ from the manifest (first: {bad[0]}): damaged or "
                            "tampered; nothing was changed"])
    return manifest


def verify(path: Path, idents: AgeKeys | None = None) -> tuple[Manifest, dict[str, bytes]]:
    """Read the whole archive (decrypting it) and check it against its manifest: (its manifest, the
    state/ files: small, CA, keys, htpasswd), or ArchiveError. No data member is kept in memory."""
    path = Path(path)
    if not path.is_file():
        raise ArchiveError([f"--from {str(path)!r}: no such file"])
    state: dict[str, bytes] = {}

    def keep(info, reader):
        if reader is not None and info.name.startswith(STATE) and "/" not in info.name[len(STATE):]:
            state[info.name[len(STATE):]] = tarstream.read_all(reader, 1 << 20)

    stream = open_plain(path, idents)
    try:
        return _walk(stream, path, keep), state
    finally:
        try:
            stream.close()
        except BaseException:  # noqa: BLE001 - the walk's own error is the one to report
            pass


class DataTar:
    """A reader of a tar of the archive's data/ members (names relative to data_dir), made by a thread
    that reads the archive again and refuses content differing from the manifest before its last bytes
    are handed over (so the node's tar sees a truncated member and fails). `error` holds why it stopped."""

    def __init__(self, path: Path, idents: AgeKeys | None, manifest: Manifest):
        self.error: BaseException | None = None
        by_name = {m.name: m for m in manifest.members}

        def produce(out):
            stream = open_plain(Path(path), idents)
            try:
                tar_out = tarstream.Writer(out.write)

                def send(info, reader):
                    name = _safe_name(info.name)
                    if not (name.startswith(DATA) or name == DATA.rstrip("/")):
                        return
                    rel = name[len(DATA):] if name.startswith(DATA) else "."
                    new = tarfile.TarInfo(rel or ".")
                    new.mode, new.mtime, new.uid, new.gid, new.type = info.mode, info.mtime, info.uid, info.gid, info.type
                    if reader is None:
                        tar_out.add(new)
                        return
                    new.size = info.size
                    tar_out.add(new, _Verifying(reader, by_name.get(name) or Member(name, -1, "")), digest=False)

                _walk(stream, Path(path), send)
                tar_out.close()
            except BaseException as exc:
                self.error = exc
                raise
            finally:
                stream.close()

        self._pipe = _Pipe(produce)

    def read(self, n: int = -1) -> bytes:
        try:
            return self._pipe.read(n)
        except BaseException as exc:  # noqa: BLE001 - reported by the step's verdict; the node's tar fails
            self.error = self.error or exc
            return b""

    def close(self) -> None:
        try:
            self._pipe.close()
        except BaseException as exc:  # noqa: BLE001
            self.error = self.error or exc


def is_encrypted(path: Path) -> bool:
    with open(path, "rb") as fh:
        return fh.read(len(AGE_MAGIC)) == AGE_MAGIC
