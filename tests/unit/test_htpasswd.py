"""htpasswd with libpass bcrypt, every written line checked by Apache's own `htpasswd -vb`."""
import subprocess

import pytest

from swarm_registry import htpasswd
from swarm_registry.jobs import local as jobs
from swarm_registry import settings as s
from swarm_registry.settings import SettingsError
from tests.conftest import require


def apache_verify(path, user, password):
    return subprocess.run([require("htpasswd"), "-vb", str(path), user, password], capture_output=True).returncode


def test_written_lines_verify_with_apache_htpasswd(base_settings):
    cfg = s.from_mapping(base_settings)
    lines = []
    assert jobs.user_set(cfg, "lenain", "s3cret pass", lines.append) is True
    assert jobs.user_set(cfg, "alice", "ünïcode-pw", lines.append) is True
    path = cfg.state_dir / "htpasswd"
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    assert apache_verify(path, "lenain", "s3cret pass") == 0
    assert apache_verify(path, "alice", "ünïcode-pw") == 0
    assert apache_verify(path, "lenain", "wrong") != 0
    assert path.read_text().startswith("lenain:$2y$12$")


def test_same_password_again_changes_nothing(base_settings):
    cfg = s.from_mapping(base_settings)
    jobs.user_set(cfg, "lenain", "pw-one", print)
    before = (cfg.state_dir / "htpasswd").read_bytes()
    assert jobs.user_set(cfg, "lenain", "pw-one", print) is False
    assert (cfg.state_dir / "htpasswd").read_bytes() == before
    assert jobs.user_set(cfg, "lenain", "pw-two", print) is True
    assert jobs.user_remove(cfg, "lenain", print) is True
    assert jobs.user_remove(cfg, "lenain", print) is False
    assert (cfg.state_dir / "htpasswd").read_bytes() == b""


@pytest.mark.parametrize("user,password,fragment", [
    ("a:b", "pw", "no ':'"),
    ("two words", "pw", "no ':' or spaces"),
    ("", "pw", "user name"),
    ("lenain", "", "non-empty"),
    ("lenain", "x" * 73, "at most 72 bytes"),
    ("lenain", "é" * 37, "at most 72 bytes"),  # 74 bytes in UTF-8
    ("lenain", "line\nbreak", "without newlines"),
])
def test_bad_users_and_passwords_are_refused(base_settings, user, password, fragment):
    cfg = s.from_mapping(base_settings)
    with pytest.raises(SettingsError) as exc:
        jobs.user_set(cfg, user, password, print)
    assert fragment in str(exc.value) and len(exc.value.problems) == 1
    assert not (cfg.state_dir / "htpasswd").exists()


def test_72_byte_password_is_accepted():
    entries, changed = htpasswd.set_password({}, "u", "x" * 72)
    assert changed and htpasswd.verify(entries, "u", "x" * 72)


def test_parse_refuses_non_bcrypt_lines():
    with pytest.raises(htpasswd.HtpasswdError, match="not a bcrypt hash"):
        htpasswd.parse(b"bob:{SHA}abc\n")
    assert htpasswd.parse(b"\nbob:$2y$12$abc\n") == {"bob": "$2y$12$abc"}
