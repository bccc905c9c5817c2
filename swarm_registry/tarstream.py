"""Tar streams read and written member by member, payloads passed through in large chunks.

The backup archive and the node's `tar c` stream go through here instead of `tarfile`'s stream
mode, which re-buffers every byte a few times on the way in and out (most of backup's time on the
control machine, measured: bench/backup-results.md). Headers are still `tarfile`'s own (`TarInfo.frombuf`
reads one, `TarInfo.tobuf` writes one in PAX format); what is read: ustar/GNU headers with GNU long
names ('L') and PAX extended headers ('x': path, size, mtime, uid, gid). Only what the product
streams is accepted: regular files and directories (anything else raises `TarFormatError`).
Pure: bytes in, bytes out, no SSH.
"""
from __future__ import annotations

import hashlib
import tarfile
from typing import Callable, Iterator

BLOCK = tarfile.BLOCKSIZE      # 512
RECORD = tarfile.RECORDSIZE    # 10240: the end of an archive is padded to it, as tarfile and GNU tar do
CHUNK = 1 << 20


class TarFormatError(Exception):
    """A stream that is not a complete tar of files and directories (truncated, damaged, other types)."""


class _Source:
    """A reader (`read(n)` -> bytes, b"" at the end) read exactly or in chunks, without joining chunks."""

    def __init__(self, reader):
        self.reader, self.pending = reader, memoryview(b"")

    def some(self, n: int) -> memoryview:
        """Up to n bytes (at least 1, unless the stream ended)."""
        if not self.pending:
            self.pending = memoryview(self.reader.read(max(n, CHUNK)))
        out, self.pending = self.pending[:n], self.pending[n:]
        return out

    def exact(self, n: int) -> bytes:
        parts, left = [], n
        while left:
            part = self.some(left)
            if not part:
                raise TarFormatError(f"the stream ended {left} bytes short (truncated)")
            parts.append(part)
            left -= len(part)
        return b"".join(parts)


class Payload:
    """One member's content: `read(n)` gives at most n bytes (bytes-like: a memoryview of what was read,
    never past the member), empty at its end."""

    def __init__(self, src: _Source, size: int):
        self._src, self.left = src, size

    def read(self, n: int = -1) -> bytes:
        if self.left == 0:
            return b""
        part = self._src.some(self.left if n is None or n < 0 else min(n, self.left))
        if not part:
            raise TarFormatError(f"the stream ended inside a member, {self.left} bytes short (truncated)")
        self.left -= len(part)
        return part

    def drain(self) -> None:
        while self.read(CHUNK):
            pass


def read_all(reader, limit: int) -> bytes:
    """Everything `reader` gives (a member's content), refused past `limit` bytes."""
    parts, size = [], 0
    while data := reader.read(CHUNK):
        size += len(data)
        if size > limit:
            raise TarFormatError(f"a member larger than {limit} bytes where a small one was expected")
        parts.append(bytes(data))
    return b"".join(parts)


def _padding(size: int) -> int:
    return -size % BLOCK


_PAX_KEYS = {b"path": ("name", str), b"size": ("size", int), b"mtime": ("mtime", float),
             b"uid": ("uid", int), b"gid": ("gid", int)}  # the rest (uname, atime, ...) is not needed


def _pax(data: bytes, found: dict) -> None:
    """A PAX extended header's records ("LEN key=value\\n"), for the next member, into `found`."""
    pos = 0
    while pos < len(data):
        length, _, rest = data[pos:pos + 32].partition(b" ")
        if not length.isdigit() or int(length) <= 0:
            raise TarFormatError("a PAX header record is damaged")
        record = data[pos:pos + int(length)]
        key, _, value = record[len(length) + 1:-1].partition(b"=")
        if key in _PAX_KEYS:
            attr, kind = _PAX_KEYS[key]
            try:
                found[attr] = kind(value.decode("utf-8", "surrogateescape"))
            except ValueError:
                raise TarFormatError(f"a PAX header record {key.decode()!r} is damaged") from None
        pos += int(length)


def members(reader) -> Iterator[tuple[tarfile.TarInfo, Payload | None]]:
    """(header, content reader or None for a directory) per member, in stream order; the content must be
    read (or is skipped) before the next member comes. Ends at the end-of-archive block or the stream's
    end on a block boundary; anything cut short raises TarFormatError."""
    src = _Source(reader)
    pending: dict = {}  # from a PAX or GNU long-name header, for the next member
    while True:
        first = src.some(BLOCK)
        if not first:
            return  # the stream ended between members (tar's end blocks absent): the caller decides
        block = first.tobytes() + (src.exact(BLOCK - len(first)) if len(first) < BLOCK else b"")
        if block == bytes(BLOCK):
            return
        try:
            info = tarfile.TarInfo.frombuf(block, "utf-8", "surrogateescape")
        except tarfile.HeaderError as exc:
            raise TarFormatError(f"a damaged tar header ({exc})") from None
        if info.type in (tarfile.GNUTYPE_LONGNAME, tarfile.XHDTYPE, tarfile.XGLTYPE):
            data = src.exact(info.size + _padding(info.size))[:info.size]
            if info.type == tarfile.GNUTYPE_LONGNAME:
                pending["name"] = data.rstrip(b"\0").decode("utf-8", "surrogateescape")
            elif info.type == tarfile.XHDTYPE:
                _pax(data, pending)
            continue
        for attr, value in pending.items():
            setattr(info, attr, value)
        pending = {}
        if info.isdir():
            yield info, None
        elif info.isreg():
            payload = Payload(src, info.size)
            yield info, payload
            payload.drain()
            src.exact(_padding(info.size))
        else:
            raise TarFormatError(f"member {info.name!r}: only regular files and directories are accepted")


class Writer:
    """A tar stream written to `write` (PAX headers, as tarfile writes them); `add` streams a member's
    content in large chunks and returns its size and sha256 ("" with digest=False: a caller that
    hashes the content on its own way in)."""

    def __init__(self, write: Callable[[bytes], object]):
        self._write, self.written = write, 0

    def _out(self, data) -> None:
        self._write(data)
        self.written += len(data)

    def add(self, info: tarfile.TarInfo, src=None, *, digest: bool = True) -> tuple[int, str]:
        self._out(info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape"))
        if src is None:
            return 0, ""
        sha, size = hashlib.sha256() if digest else None, 0
        while size < info.size and (data := src.read(min(CHUNK, info.size - size))):
            if sha is not None:
                sha.update(data)
            self._out(data)
            size += len(data)
        if size != info.size:
            raise TarFormatError(f"{info.name}: {size} bytes read, {info.size} announced")
        self._out(bytes(_padding(size)))
        return size, sha.hexdigest() if sha is not None else ""

    def close(self) -> None:
        """The end-of-archive blocks, padded to a whole record."""
        end = 2 * BLOCK
        self._out(bytes(end + -(self.written + end) % RECORD))
