"""Command builders: argv in, argv out; hostile values quoted (proved with the local sh); secrets only
on stdin and redacted; scripts named by file and variables in display(). The scripts themselves run
for real in test_scripts.py."""
import shlex
import subprocess

import pytest

from swarm_registry import commands as c
from swarm_registry import facts
from swarm_registry.settings import PROJECT_ROOT
from swarm_registry.steps import login as login_step
from swarm_registry.steps import trust as trust_step

SCRIPTS = PROJECT_ROOT / "files" / "scripts"

TABLE = [
    (c.make_dirs(["/var/lib/registry", "/srv/a b/auth"], 0o700),
     ("install", "-d", "-m", "700", "--", "/var/lib/registry", "/srv/a b/auth")),
    (c.remove_paths(["/var/lib/registry", "/srv/x"]), ("rm", "-rf", "--", "/var/lib/registry", "/srv/x")),
    (c.secret_remove(["a", "b"]), ("docker", "secret", "rm", "a", "b")),
    (c.node_label_add("kawaii", "registry"), ("docker", "node", "update", "--label-add", "registry=true", "kawaii")),
    (c.node_label_remove("kawaii", "registry"), ("docker", "node", "update", "--label-rm", "registry", "kawaii")),
    (c.image_tag("registry:2", "r:5000/x:1"), ("docker", "tag", "registry:2", "r:5000/x:1")),
    (c.image_remove(["a:1", "b:2"]), ("docker", "rmi", "--force", "a:1", "b:2")),
    (c.image_build("r:5000/smoke:1", b"TAR"), ("docker", "build", "-q", "-t", "r:5000/smoke:1", "-")),
]


@pytest.mark.parametrize("cmd,argv", TABLE, ids=["-".join(t[1][:3]) for t in TABLE])
def test_argv_table(cmd, argv):
    assert cmd.argv == argv
    assert shlex.split(cmd.shell()) == list(argv)
    assert not cmd.secret


def test_make_dirs_refuses_a_mode_out_of_range():
    with pytest.raises(ValueError, match="out of range"):
        c.make_dirs(["/x"], 0o10000)
    with pytest.raises(ValueError, match="out of range"):
        c.converge_file("/x", b"", -1)


# --- the deploy command: files/scripts/deploy.sh ---------------------------------------------------

STACK_FILE = b"# Rendered\nversion: '3.7'\nservices:\n  registry:\n    image: registry:2\n"


def test_stack_deploy_is_the_deploy_script_with_the_stack_file_on_stdin():
    cmd = c.stack_deploy("onsen-registry", "onsen-registry_registry", STACK_FILE, "always")
    assert cmd.argv[:2] == ("sh", "-c")
    assert cmd.argv[3:] == ("deploy", "onsen-registry", "onsen-registry_registry", "always")
    text = cmd.argv[2]
    assert text.splitlines()[0] == 'stack="${1}" service="${2}" resolve_image="${3}"'
    assert text.endswith((SCRIPTS / "deploy.sh").read_text())
    assert (SCRIPTS / "lib.sh").read_text() in text
    assert "--compose-file -" in text  # the stack file is read from stdin, never written on the manager
    assert cmd.stdin == STACK_FILE and not cmd.secret and cmd.timeout == 300
    assert cmd.display() == ("<files/scripts/deploy.sh> stack=onsen-registry service=onsen-registry_registry "
                             f"resolve_image=always  < [{len(STACK_FILE)} bytes on stdin]")
    assert "image: registry:2" not in cmd.display()  # stdin is never shown, secret or not


def test_script_text_is_header_lib_every_fact_then_the_script():
    cmd = c.script("converge-file", {"path": "/p", "mode": "600", "sha": "ab"})
    text = cmd.argv[2]
    parts = [text.index((SCRIPTS / "lib.sh").read_text())]
    for snippet in sorted((SCRIPTS / "facts").glob("*.sh")):
        parts.append(text.index(snippet.read_text()))
    parts.append(text.rindex((SCRIPTS / "converge-file.sh").read_text()))
    assert parts == sorted(parts) and len(parts) >= 9  # lib, 7 facts, script: in that order
    assert cmd.argv[3:] == ("converge-file", "/p", "600", "ab")


@pytest.mark.parametrize("bad", ["PATH", "a-b", "1x", "x y", "", "x;rm"])
def test_script_refuses_a_variable_name_that_is_not_a_lower_case_identifier(bad):
    with pytest.raises(ValueError, match="script variable"):
        c.script("converge-file", {bad: "v"})


def test_display_names_script_values_quoted():
    cmd = c.converge_file("/srv/a b/htpasswd", b"data", 0o600)
    assert cmd.display() == (f"<files/scripts/converge-file.sh> path='/srv/a b/htpasswd' mode=600 "
                             f"sha={c.sha256(b'data')}  < [4 bytes on stdin]")


# --- hostile values: Command.shell() through the local sh -------------------------------------------

HOSTILE = [
    "$(touch {mark})", "`touch {mark}`", "x'; touch {mark}; echo '", "; rm -f {victim}", "&& rm -f {victim} ||",
    "a\"b\\\"c'd", "line1\nline2\n", "*", "~", "$HOME ${IFS} $0", "-n", "", " lead and trail ", "tab\there",
    "back\\slash\\", "é ü 日本", "!!", "a\x01b\x7f", "'", "''", "\\", "#comment", "|cat", ">{mark}",
]


def hostile_values(tmp_path):
    mark, victim = tmp_path / "executed", tmp_path / "victim"
    victim.write_text("still here")
    return [v.replace("{mark}", str(mark)).replace("{victim}", str(victim)) for v in HOSTILE], mark, victim


def run_sh(cmd: c.Command) -> subprocess.CompletedProcess:
    """What a remote login shell does with the string the session sends: `sh -c SHELL`."""
    return subprocess.run(["sh", "-c", cmd.shell()], input=cmd.stdin, capture_output=True, timeout=10)


def test_shell_quotes_every_hostile_value_byte_for_byte(tmp_path):
    values, mark, victim = hostile_values(tmp_path)
    for value in values:
        out = run_sh(c.Command(("printf", "%s\\n", value)))
        assert out.returncode == 0 and out.stdout == value.encode() + b"\n", value
    assert not mark.exists() and victim.read_text() == "still here"


def echo_argv(cmd: c.Command) -> c.Command:
    """`printf '%s\\0' ARGV...`: the shell prints the argv it received, NUL-separated."""
    return c.Command(("printf", "%s\\0", *cmd.argv))


BUILDERS = {
    "make_dirs": lambda v: c.make_dirs([v, v]),
    "remove_paths": lambda v: c.remove_paths([v]),
    "node_label_add": lambda v: c.node_label_add(v, v),
    "secret_create": lambda v: c.secret_create(v, b"x", v),
    "secret_remove": lambda v: c.secret_remove([v]),
    "image_tag": lambda v: c.image_tag(v, v),
    "image_pull": c.image_pull,
    "image_push": c.image_push,
    "stack_deploy": lambda v: c.stack_deploy(v, v, b"x", v),
    "converge_file": lambda v: c.converge_file(v, b"x"),
    "login": lambda v: login_step.command(v, v, "login", "pw"),
    "trust": lambda v: trust_step.command(v, b"x"),
    "script": lambda v: c.script("facts", {"facts": v, "endpoint": v}),
    "sudo": lambda v: c.as_run(c.converge_file(v, b"x"), True),
    "sudo_password": lambda v: c.as_run(c.node_label_add(v, v), True, "pw"),
}


@pytest.mark.parametrize("name", BUILDERS)
def test_builders_argv_reaches_the_shell_unchanged(name, tmp_path):
    values, mark, victim = hostile_values(tmp_path)
    for value in values:
        cmd = BUILDERS[name](value)
        out = run_sh(echo_argv(cmd))
        assert out.returncode == 0, out.stderr
        assert out.stdout.split(b"\0")[:-1] == [a.encode() for a in cmd.argv], value
    assert not mark.exists() and victim.read_text() == "still here"


# --- secrets: stdin only, redacted, kept through sudo ---------------------------------------------------

KEY = b"-----BEGIN PRIVATE KEY-----\nMIIEsecretkeybytes\n"


def test_secret_create_sends_content_on_stdin_only():
    cmd = c.secret_create("registry.onsen.lan.key-abcd1234", KEY, "onsen-registry")
    assert cmd.argv[-1] == "-" and cmd.stdin == KEY and cmd.secret
    assert f"io.swarm-registry.sha256={c.sha256(KEY)}" in cmd.argv
    assert "io.swarm-registry.stack=onsen-registry" in cmd.argv
    assert "secretkeybytes" not in cmd.shell() and "secretkeybytes" not in cmd.display()
    assert cmd.display().endswith(f"< [{len(KEY)} bytes on stdin, secret, redacted]")


def test_secret_converge_file_display_redacts_the_content():
    cmd = c.converge_file("/srv/auth/htpasswd", KEY, 0o600, secret=True)
    shown = cmd.display()
    assert cmd.secret and cmd.stdin == KEY
    assert "secretkeybytes" not in shown and "PRIVATE" not in shown and "secret, redacted" in shown
    assert "secretkeybytes" not in cmd.shell()


def test_login_password_never_in_argv_or_display():
    cmd = login_step.command("registry.onsen.lan:5000", "lenain", "login", "hunter2-pw")
    assert cmd.stdin == b"hunter2-pw" and cmd.secret
    assert "--password-stdin" in cmd.argv[2]
    assert "hunter2" not in cmd.shell() and "hunter2" not in cmd.display() and "redacted" in cmd.display()
    logout = login_step.command("registry.onsen.lan:5000", "lenain", "logout")
    assert logout.stdin is None and not logout.secret


def test_sudo_without_password_keeps_stdin_and_the_secret_flag():
    inner = c.converge_file("/srv/auth/htpasswd", KEY, 0o600, secret=True)
    cmd = c.as_run(inner, True)
    assert cmd.argv == ("sudo", "-n", "--", *inner.argv)
    assert (cmd.stdin, cmd.secret, cmd.timeout) == (KEY, True, inner.timeout)
    assert "secretkeybytes" not in cmd.display() and "secret, redacted" in cmd.display()
    assert c.as_run(inner, False) is inner


def test_sudo_password_is_never_in_the_command_or_its_stdin():
    """With a sudo password, sudo prompts with our unique prompt and a wrapper signals when the command
    starts: the execution layer types the password at the prompt only (remote/session.py)."""
    inner = c.stack_deploy("s", "s_registry", STACK_FILE, "never")  # not secret by itself
    cmd = c.as_run(inner, True, "sudo-pw")
    assert cmd.argv[:5] == ("sudo", "-S", "-p", c.SUDO_PROMPT, "--") and cmd.argv[-len(inner.argv):] == inner.argv
    assert cmd.stdin == STACK_FILE and not cmd.secret
    assert "sudo-pw" not in cmd.shell() and "sudo-pw" not in cmd.display()
    assert cmd.display().startswith(f"sudo -S -p '{c.SUDO_PROMPT}' -- sh -c")
    assert "<files/scripts/deploy.sh> stack=s" in cmd.display()
    wrapper = subprocess.run(["sh", "-c", cmd.argv[7], "sudo-ready", "printf", "%s", "ran"], capture_output=True)
    assert wrapper.stdout == b"ran" and c.SUDO_READY.encode() in wrapper.stderr


def test_as_run_wraps_only_when_asked_and_keeps_secret():
    inner = c.converge_file("/p", KEY, 0o600, secret=True)
    assert c.as_run(inner, False) is inner
    assert c.as_run(inner, True).argv[:3] == ("sudo", "-n", "--") and c.as_run(inner, True).secret
    with_pw = c.as_run(inner, True, "pw")
    assert with_pw.argv[:2] == ("sudo", "-S") and with_pw.secret and with_pw.stdin == KEY


def test_display_of_a_script_under_sudo_names_the_script_not_its_text():
    shown = c.as_run(c.converge_file("/srv/auth/htpasswd", KEY, 0o600, secret=True), True).display()
    assert shown.startswith("sudo -n -- <files/scripts/converge-file.sh> path=/srv/auth/htpasswd mode=600")
    assert "verified_write()" not in shown and "fact_docker" not in shown
    as_user = c.Command(("runuser", "-u", "alice", "--", *c.converge_file("/home/alice/x", b"{}").argv), b"{}")
    assert as_user.display().startswith("runuser -u alice -- <files/scripts/converge-file.sh> path=/home/alice/x ")


def test_display_of_an_inline_sh_command_shows_its_arguments():
    shown = c.image_pull_if_missing("registry:2").display()
    assert "registry:2" in shown and "files/scripts/pull-if-missing.sh" not in shown


def test_facts_command_names_its_facts_and_has_no_stdin(base_settings):
    from swarm_registry import settings as S
    cmd = facts.command(S.from_mapping(base_settings), ["docker", "trust"])
    assert cmd.argv[3] == "facts" and cmd.argv[4] == "docker trust" and cmd.stdin is None
    assert cmd.display().startswith("<files/scripts/facts.sh> facts='docker trust' endpoint=registry.onsen.lan:5000")
