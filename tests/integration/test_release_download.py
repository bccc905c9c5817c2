"""source: release on the control machine: download from a local HTTP server, verify, cache, extract."""
import hashlib
import http.server
import io
import os
import re
import tarfile
import threading

import pytest

from swarm_registry import release
from swarm_registry import settings as S

BINARY = b"\x7fELF fake docker-credential-pass\n" + bytes(range(256)) * 64


def tarball(members: dict[str, bytes], links: dict[str, str] | None = None) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o755
            tar.addfile(info, io.BytesIO(data))
        for name, target in (links or {}).items():
            info = tarfile.TarInfo(name)
            info.type, info.linkname = tarfile.SYMTYPE, target
            tar.addfile(info)
    return buf.getvalue()


@pytest.fixture
def server():
    """An HTTP server on 127.0.0.1 (random port) serving `files` by path; counts the requests."""
    files: dict[str, bytes] = {}
    hits: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            hits.append(self.path)
            data = files.get(self.path)
            if data is None:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.timeout = 5
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", files, hits
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)
        assert not thread.is_alive()


def settings_for(base_settings, url: str, sha: str):
    return S.from_mapping({**base_settings, "credential_helper": {
        "source": "release", "version": "v0.6.0", "url": url, "sha256": sha}})


def test_fetch_verifies_extracts_and_caches(server, base_settings):
    base, files, hits = server
    data = tarball({"docker-credential-pass": BINARY})
    files["/releases/v0.6.0/docker-credential-pass-v0.6.0-amd64.tar.gz"] = data
    sha = hashlib.sha256(data).hexdigest()
    settings = settings_for(base_settings, base + "/releases/{version}/docker-credential-pass-{version}-amd64.tar.gz",
                            sha)
    assert release.fetch_binary(settings) == BINARY
    cached = settings.state_dir / release.cache_name(sha)
    assert cached.read_bytes() == data and oct(cached.stat().st_mode & 0o777) == "0o600"
    assert oct(settings.state_dir.stat().st_mode & 0o777) == "0o700"
    assert release.fetch_binary(settings) == BINARY
    assert hits == ["/releases/v0.6.0/docker-credential-pass-v0.6.0-amd64.tar.gz"]  # the re-run used the cache
    cached.write_bytes(b"damaged")  # a damaged cache entry is fetched again
    assert release.fetch_binary(settings) == BINARY and len(hits) == 2


def test_wrong_sha256_fails_with_one_clear_line_and_caches_nothing(server, base_settings):
    base, files, hits = server
    data = tarball({"docker-credential-pass": BINARY})
    files["/t.tar.gz"] = data
    wrong = "0" * 64
    settings = settings_for(base_settings, base + "/t.tar.gz", wrong)
    with pytest.raises(release.ReleaseError) as err:
        release.fetch_binary(settings)
    message = str(err.value)
    assert "\n" not in message and err.value.exit_code == 2
    assert f"expected {wrong}, got {hashlib.sha256(data).hexdigest()}" in message and "nothing was installed" in message
    assert not settings.state_dir.exists() or not any(settings.state_dir.iterdir())


@pytest.mark.parametrize("members,links,words", [
    ({"../docker-credential-pass": BINARY}, None, "unsafe paths in the archive: ../docker-credential-pass"),
    ({"/usr/local/bin/docker-credential-pass": BINARY}, None, "unsafe paths"),
    ({"docker-credential-pass": BINARY, "x": b""}, {"y": "../../etc/passwd"}, "unsafe paths in the archive: y"),
    ({"docker-credential-secretservice": BINARY}, None, "docker-credential-pass not found in the archive (no such file)"),
    ({}, {"docker-credential-pass": "elsewhere"}, "not found in the archive (only as a link"),
])
def test_unsafe_or_incomplete_tarballs_are_refused(server, base_settings, members, links, words):
    base, files, _ = server
    data = tarball(members, links)
    files["/t.tar.gz"] = data
    settings = settings_for(base_settings, base + "/t.tar.gz", hashlib.sha256(data).hexdigest())
    with pytest.raises(release.ReleaseError, match=re.escape(words)):
        release.fetch_binary(settings)


def test_nested_member_and_bare_binary_are_accepted():
    assert release.extract_binary(tarball({"bin/docker-credential-pass": BINARY})) == BINARY
    assert release.extract_binary(BINARY) == BINARY  # releases after v0.6 publish the bare executable
    with pytest.raises(release.ReleaseError, match="not a tar archive"):
        release.extract_binary(b"<html>not found</html>")


def test_http_errors_and_unreachable_servers_are_one_line(server, base_settings):
    base, _, _ = server
    settings = settings_for(base_settings, base + "/missing.tar.gz", "a" * 64)
    with pytest.raises(release.ReleaseError, match=r"missing.tar.gz: HTTP 404"):
        release.fetch_binary(settings)
    closed = settings_for(base_settings, "http://127.0.0.1:9/x.tar.gz", "a" * 64)  # discard port: refused
    with pytest.raises(release.ReleaseError, match="download failed: ConnectionError") as err:
        release.fetch_binary(closed)
    assert "\n" not in str(err.value)


def test_loose_state_dir_is_refused_before_downloading(server, base_settings):
    base, files, hits = server
    settings = settings_for(base_settings, base + "/t.tar.gz", "a" * 64)
    settings.state_dir.mkdir(mode=0o755)
    os.chmod(settings.state_dir, 0o755)
    with pytest.raises(S.SettingsError, match="must be 0700"):
        release.fetch_binary(settings)
    assert hits == []
