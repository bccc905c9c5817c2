"""`inv --list` in recipe order (the tags match README's table) and shell completion (no SSH)."""
import re
import subprocess

from tests.conftest import require
from tests.integration.clirun import BIN, ROOT, run

README = ROOT / "README.md"


def listed_tags() -> dict[str, str]:
    """task name -> the tag its description starts with, from `inv --list`."""
    r = run("inv", "--list")
    assert r.returncode == 0, r.stderr
    found = {}
    for line in r.stdout.splitlines():
        m = re.match(r"  (\S+)\s+(\[[^\]]+\])?", line)
        if m and not line.startswith("   "):
            found[m.group(1)] = m.group(2) or ""
    return found


def readme_table() -> list[tuple[str, str]]:
    """(tag, task) rows of README's 'Tasks in recipe order' table, in order."""
    text = README.read_text().split("### Tasks in recipe order", 1)[1].split("\n###", 1)[0]
    return re.findall(r"^\| (\[[^\]]+\]) \| `inv ([^`]+)` \|", text, re.M)


def test_every_task_is_tagged_and_in_the_readme_table_in_recipe_order():
    tags, rows = listed_tags(), readme_table()
    assert tags and all(tags.values()), {k: v for k, v in tags.items() if not v}  # every task has its tag
    assert dict((task, tag) for tag, task in rows) == tags  # the table names every task, with the same tag
    steps = [tag for tag, _ in rows if re.fullmatch(r"\[\d+[a-z]?\]", tag)]
    assert steps == sorted(steps, key=lambda t: (int(re.sub(r"\D", "", t)), t)) and steps[0] == "[1]"
    kinds = [("step" if re.fullmatch(r"\[\d+[a-z]?\]", t) else t) for t, _ in rows]
    assert kinds == sorted(kinds, key=["step", "[day 2]", "[storage]", "[lab]"].index)  # recipe, day 2, storage, lab
    assert {t for t, task in rows if task in ("setup", "trust-cert", "smoke-test", "catalog", "status")} == {
        "[5]", "[5a]", "[6]", "[7]", "[day 2]"}


def complete(program: str, words: list[str]) -> list[str]:
    """What bash offers for the last word, with `PROGRAM --print-completion-script bash` sourced."""
    bash = require("bash")
    script = run(program, "--print-completion-script", "bash")
    assert script.returncode == 0 and "complete -F" in script.stdout, script.stderr
    line = " ".join(words)
    probe = (f'{script.stdout}\nCOMP_WORDS=({line}); COMP_CWORD={len(words) - 1}\n'
             f'_complete_{"invoke" if program == "inv" else program} {program} "{words[-1]}"\n'
             'printf "%s\\n" "${COMPREPLY[@]}"\n')
    env = {"PATH": f"{BIN}:/usr/bin:/bin", "HOME": "/nonexistent"}
    r = subprocess.run([bash, "--norc", "-c", probe], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return r.stdout.split()


def test_bash_completion_of_inv_and_fab_tasks_and_flags():
    assert {"trust-cert"} <= set(complete("inv", ["inv", "tru"]))
    assert set(complete("inv", ["inv", "users."])) >= {"users.add", "users.list", "users.passwd", "users.remove"}
    assert "--json" in complete("inv", ["inv", "status", "--j"])
    assert "--check" in complete("inv", ["inv", "setup", "--ch"])
    assert "install-credential-helper" in complete("fab", ["fab", "-H", "nodes", "inst"])
    assert "--json" in complete("fab", ["fab", "-H", "nodes", "trust-cert", "--j"])


def test_every_task_readme_says_takes_json_does():
    text = " ".join(README.read_text().split("**`--json`** (", 1)[1].split(")", 1)[0].split())
    named = [t.strip() for t in text.split(";")[0].split(",")]
    assert len(named) >= 13 and "the fab tasks too" in text
    for task in named:
        helped = run("inv", "--help", task)
        assert helped.returncode == 0 and "--json" in helped.stdout, task
    fab = run("fab", "--list").stdout.split()
    for task in ("trust-cert", "install-credential-helper", "login", "logout", "setup-node"):
        assert task in fab and "--json" in run("fab", "--help", task).stdout, task


def test_refused_before_any_connection_json_is_still_one_document(tmp_path):
    import json

    import yaml

    from tests.conftest import BASE_HOSTS

    cfg = tmp_path / "cluster.yaml"
    cfg.write_text(yaml.safe_dump({"hosts": BASE_HOSTS, "state_dir": str(tmp_path / "state")}))
    r = run("inv", "images.rm", "smoke:1", "--yes", "--json", config=cfg, env={"REGISTRY_PASSWORD": "x" * 12})
    doc = json.loads(r.stdout)
    assert r.returncode == 2 and doc["task"] == "images.rm" and doc["exit_status"] == 2, r.stdout + r.stderr
    assert any("delete_enabled" in e for e in doc["errors"]) and "delete_enabled" in r.stderr
