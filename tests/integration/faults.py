"""Fault injection on lab nodes: hold a remote command while it runs, so a test can act on it.

A shim installed as /usr/local/bin/{docker,install,sha256sum,gpg} (first on PATH for SSH
sessions) runs the real tool from /usr/bin, except when its own argv or its parent's command
line contains the armed pattern: at its Nth such call (default the first) it marks /run/fault/hit
and sleeps first. The test sees
the mark on the node (the command is running there), interrupts or kills, and removes the shim.
"""
import contextlib
import subprocess
import time

from devtools.lab import settings as S

TOOLS = ("docker", "install", "sha256sum", "gpg")
SHIM = r"""#!/bin/sh
name=$(basename "$0")
if [ -s /run/fault/pattern ]; then
  pat=$(cat /run/fault/pattern)
  parent=$(tr '\0' ' ' < /proc/$PPID/cmdline 2>/dev/null)
  case "$name $* | $parent" in
    *"$pat"*)
      n=$(( $(cat /run/fault/seen 2>/dev/null || echo 0) + 1 )); echo "$n" > /run/fault/seen
      if [ "$n" -ge "$(cat /run/fault/nth 2>/dev/null || echo 1)" ]; then
        : > /run/fault/pattern; touch /run/fault/hit; sh -c "sleep 8"
      fi ;;
  esac
fi
exec "/usr/bin/$name" "$@"
"""


def _exec(node: int, script: str, input: str | None = None, lab: S.Lab = S.DEFAULT_LAB) -> subprocess.CompletedProcess:
    return subprocess.run(["docker", "exec", "-i", lab.container_name(node), "sh", "-c", script], input=input,
                          capture_output=True, text=True, timeout=60)


@contextlib.contextmanager
def holding(node: int, pattern: str, *, nth: int = 1, lab: S.Lab = S.DEFAULT_LAB):
    """Arm the shim on `node` for the `nth` command matching `pattern` (held once, 8 s)."""
    links = " ".join(f"ln -sf /usr/local/bin/fault-shim /usr/local/bin/{t};" for t in TOOLS)
    r = subprocess.run(["docker", "exec", "-i", lab.container_name(node), "sh", "-c",
                        "mkdir -p /run/fault && rm -f /run/fault/hit /run/fault/seen && cat > /usr/local/bin/fault-shim && "
                        f"chmod 755 /usr/local/bin/fault-shim && {links} printf '%s' \"$1\" > /run/fault/pattern && "
                        "printf '%s' \"$2\" > /run/fault/nth",
                        "arm", pattern, str(nth)], input=SHIM, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    try:
        yield
    finally:
        rm = " ".join(f"/usr/local/bin/{t}" for t in TOOLS)
        _exec(node, f"rm -f {rm} /usr/local/bin/fault-shim; rm -rf /run/fault", lab=lab)


def wait_until_held(node: int, proc: subprocess.Popen, timeout: float = 240, lab: S.Lab = S.DEFAULT_LAB) -> None:
    """Poll the node until the armed command is running there (bounded; fails if the run ends first)."""
    deadline = time.monotonic() + timeout
    while _exec(node, "test -e /run/fault/hit", lab=lab).returncode != 0:
        assert proc.poll() is None, f"the run ended before the command was held: {proc.stdout.read()}"
        assert time.monotonic() < deadline, "the armed command never ran"
        time.sleep(0.2)
