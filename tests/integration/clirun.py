"""Run the real `inv` and `fab` programs from the project's virtualenv."""
import os
import signal
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def _env(config: Path | None, env: dict | None) -> dict:
    """This process's environment without its settings file and registry password, then `config`, `env`."""
    full_env = {k: v for k, v in os.environ.items() if k not in ("SWARM_REGISTRY_CONFIG", "REGISTRY_PASSWORD")}
    if config is not None:
        full_env["SWARM_REGISTRY_CONFIG"] = str(config)
    full_env.update(env or {})
    return full_env


def interruptible(tool: str, *args: str, config: Path, env: dict) -> subprocess.Popen:
    """Start `tool` for a test that sends it SIGINT (Ctrl-C), its output on stdout. The child gets SIGINT's
    default action back first: a test run started in the background by a non-interactive shell
    (`cmd &`) inherits SIGINT ignored, Python then installs no KeyboardInterrupt handler, and the
    test's Ctrl-C would be lost."""
    return subprocess.Popen([str(BIN / tool), *args], cwd=ROOT, env=_env(config, env), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


def run(tool: str, *args: str, config: Path | None = None, env: dict | None = None, input: str | None = None,
        timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / tool), *args], cwd=ROOT, env=_env(config, env), input=input,
                          capture_output=True, text=True, timeout=timeout)


def statuses(stdout: str, step: str) -> dict[str, str]:
    """host -> status from the per-step result lines ('HOST STEP STATUS message') of a run."""
    found = {}
    for line in stdout.splitlines():
        parts = line.split()
        if len(parts) >= 3 and parts[1] == step:
            found[parts[0]] = "would change" if parts[2:4] == ["would", "change"] else parts[2]
    return found
