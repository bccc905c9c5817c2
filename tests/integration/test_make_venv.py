"""`make venv` (files/host/make-venv.sh): the venv is made by the interpreter asked for (the Makefile asks for
Debian's /usr/bin/python3), left alone when it already is, and made again when that interpreter or the
requirements change. Real `python -m venv` and pip, a requirements file with nothing to fetch."""
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "files" / "host" / "make-venv.sh"
PYTHON = sys._base_executable  # the interpreter the project venv was made from


def make_venv(python, venv: Path, req: Path) -> str:
    r = subprocess.run(["bash", str(SCRIPT), str(python), str(venv), str(req)], capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stderr
    return r.stdout


def base_of(venv: Path) -> str:
    return subprocess.run([str(venv / "bin" / "python"), "-c", "import sys; print(sys._base_executable)"],
                          capture_output=True, text=True, check=True).stdout.strip()


def test_made_by_the_interpreter_asked_for_and_made_again_only_when_it_or_the_requirements_change(tmp_path):
    venv, req = tmp_path / "venv", tmp_path / "requirements.txt"
    req.write_text("# nothing to fetch\n")
    assert f"venv: {venv} from" in make_venv(PYTHON, venv, req)
    assert Path(base_of(venv)).resolve() == Path(PYTHON).resolve()
    (venv / "marker").write_text("kept while nothing changed")
    assert make_venv(PYTHON, venv, req) == ""  # already as asked: nothing done
    assert (venv / "marker").exists()

    req.write_text("# nothing to fetch, other bytes\n")
    assert "venv:" in make_venv(PYTHON, venv, req)  # requirements changed: made again (--clear)
    assert not (venv / "marker").exists()

    other = tmp_path / "python3-other"  # another interpreter path (here the same binary under another name)
    other.symlink_to(PYTHON)
    (venv / "marker").write_text("x")
    assert f"from {other}" in make_venv(other, venv, req)
    assert not (venv / "marker").exists() and make_venv(other, venv, req) == ""


def test_the_makefile_asks_for_debians_python3():
    env = {k: v for k, v in os.environ.items() if k != "PYTHON"}  # PYTHON in the environment would choose
    r = subprocess.run(["make", "-s", "-n", "venv"], cwd=ROOT, env=env, capture_output=True, text=True, check=True)
    want = "/usr/bin/python3" if Path("/usr/bin/python3").exists() else "python3"
    assert f"make-venv.sh {want} .venv requirements.txt" in r.stdout, r.stdout
