"""tarstream: the tar reader/writer backup and restore stream through, against GNU tar and tarfile."""
import hashlib
import io
import os
import subprocess
import tarfile

import pytest

from swarm_registry import tarstream

LONG = "docker/registry/v2/blobs/sha256/4f/" + "4f" * 32 + "/data"  # > 100 characters: a long-name header


def _tree(root):
    (root / os.path.dirname(LONG)).mkdir(parents=True)
    (root / LONG).write_bytes(os.urandom(3 * tarstream.CHUNK + 17))  # several chunks, not block-aligned
    (root / "empty").write_bytes(b"")
    (root / "small").write_bytes(b"x" * 511)


def _read(stream: bytes) -> dict:
    out = {}
    for info, content in tarstream.members(io.BytesIO(stream)):
        out[info.name] = None if content is None else tarstream.read_all(content, 1 << 30)
    return out


def test_reads_what_gnu_tar_writes_long_names_included(tmp_path):
    _tree(tmp_path)
    stream = subprocess.run(["tar", "-C", str(tmp_path), "-c", "."], capture_output=True, check=True).stdout
    got = _read(stream)
    assert got["./" + LONG] == (tmp_path / LONG).read_bytes()
    assert got["./empty"] == b"" and got["./small"] == b"x" * 511
    assert got["./docker"] is None  # a directory


def test_writes_what_gnu_tar_and_tarfile_read_and_reads_it_back(tmp_path):
    out = io.BytesIO()
    w = tarstream.Writer(out.write)
    data = os.urandom(tarstream.CHUNK + 5)
    d = tarfile.TarInfo("data")
    d.type = tarfile.DIRTYPE
    w.add(d)
    info = tarfile.TarInfo("data/" + LONG)  # PAX header for the long name
    info.size, info.mtime, info.uid = len(data), 1700000000, 1234
    assert w.add(info, io.BytesIO(data)) == (len(data), hashlib.sha256(data).hexdigest())
    w.close()
    raw = out.getvalue()
    assert len(raw) % tarstream.RECORD == 0
    (tmp_path / "a.tar").write_bytes(raw)
    listed = subprocess.run(["tar", "-tf", str(tmp_path / "a.tar")], capture_output=True, text=True, check=True)
    assert listed.stdout.split() == ["data/", "data/" + LONG]
    with tarfile.open(tmp_path / "a.tar") as t:
        assert t.extractfile("data/" + LONG).read() == data and t.getmember("data/" + LONG).uid == 1234
    got = list(tarstream.members(io.BytesIO(raw)))
    assert [i.name for i, _ in got] == ["data", "data/" + LONG] and got[1][0].mtime == 1700000000


@pytest.mark.parametrize("cut", [100, 512 + 1000, -1024 * 10 - 600])
def test_a_stream_cut_short_is_refused(tmp_path, cut):
    _tree(tmp_path)
    stream = subprocess.run(["tar", "-C", str(tmp_path), "-c", "."], capture_output=True, check=True).stdout
    with pytest.raises(tarstream.TarFormatError, match="truncated"):
        _read(stream[:cut])


def test_only_files_and_directories(tmp_path):
    (tmp_path / "f").write_bytes(b"1")
    (tmp_path / "link").symlink_to("f")
    stream = subprocess.run(["tar", "-C", str(tmp_path), "-c", "link"], capture_output=True, check=True).stdout
    with pytest.raises(tarstream.TarFormatError, match="only regular files and directories"):
        _read(stream)


def test_a_member_shorter_than_announced_is_refused():
    w = tarstream.Writer(io.BytesIO().write)
    info = tarfile.TarInfo("f")
    info.size = 10
    with pytest.raises(tarstream.TarFormatError, match="3 bytes read, 10 announced"):
        w.add(info, io.BytesIO(b"abc"))
