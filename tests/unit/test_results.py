"""Results, the recap and --json's document, as pure data (no SSH)."""
import json
import re

from swarm_registry.results import CHANGED, FAILED, OK, CommandRun, Report, Run, StepResult, show


def test_colour_only_when_asked_and_columns_keep_their_width():
    r = StepResult("node1", "trust-cert", CHANGED, "trust installed")
    plain, coloured = r.line(), r.line(colour=True)
    assert "\x1b[" not in plain and "\x1b[33mchanged\x1b[0m" in coloured
    assert re.sub(r"\x1b\[\d*m", "", coloured) == plain
    assert "\x1b[33mwould change\x1b[0m" in r.line(check=True, colour=True)
    assert "\x1b[31mfailed\x1b[0m" in StepResult("n", "s", FAILED, "x").line(colour=True)
    assert "\x1b[32mok\x1b[0m" in StepResult("n", "s", OK, "x").line(colour=True)


def test_run_to_json_per_host_and_step_with_commands_times_and_recap():
    run = Run(hosts=["a", "b"])
    run.add(StepResult("a", "facts", OK, "read", 0.2, (CommandRun("<files/scripts/facts.sh> facts=trust", 0, 0.15),)))
    run.add(StepResult("b", "facts", FAILED, "unreachable: x", 0.01))
    run.count_command("a")
    doc = run.to_json()
    assert doc["hosts"]["a"]["steps"] == [{"step": "facts", "status": "ok", "message": "read", "seconds": 0.2,
                                           "commands": [{"command": "<files/scripts/facts.sh> facts=trust",
                                                         "exit_status": 0, "seconds": 0.15}]}]
    assert doc["recap"] == {"a": {"ok": 1, "changed": 0, "failed": 0, "skipped": 0, "commands": 1},
                            "b": {"ok": 0, "changed": 0, "failed": 1, "skipped": 0, "commands": 0}}
    assert doc["failed"] == {"b": "facts: unreachable: x"} and "planned" not in doc


def test_report_json_lines_to_stderr_one_document_once():
    stdout, stderr = [], []
    rep = Report("trust-cert", as_json=True, colour=True, stdout=stdout.append, stderr=stderr.append)
    rep("a progress line")
    run = Run(hosts=["a"])
    rep.attach(run)
    run.add(StepResult("a", "facts", OK, "read"))
    show(rep, StepResult("control", "api", OK, "200"))  # decided here, no Executor: kept too
    rep.add(attention=["x"])
    assert rep.finish(1) == 1 and rep.finish(1) == 1  # printed once
    assert stderr[0] == "a progress line" and "\x1b[" not in "".join(stderr)  # no colour when it is JSON
    assert len(stdout) == 1
    doc = json.loads(stdout[0])
    assert doc["task"] == "trust-cert" and doc["exit_status"] == 1 and doc["attention"] == ["x"]
    assert list(doc["hosts"]) == ["a", "control"] and doc["recap"]["control"]["ok"] == 1  # two runs, one shape


def test_report_without_json_prints_lines_on_stdout_and_no_document():
    stdout, stderr = [], []
    rep = Report("status", stdout=stdout.append, stderr=stderr.append)
    rep("line")
    assert rep.finish(0) == 0 and stdout == ["line"] and stderr == []


def test_a_run_indexes_each_hosts_results_and_first_error_however_they_came():
    """has_failed and the recap read a per-host index kept by add(): results given to the constructor and
    results merged from other runs go through it too, so no failure is missed and the first error stays first."""
    from swarm_registry.results import merged

    first = Run(hosts=["a", "b"], results=[StepResult("a", "facts", OK, "read"),
                                          StepResult("b", "facts", FAILED, "unreachable: b")])
    second = Run(hosts=["a", "c"])
    second.add(StepResult("a", "trust", FAILED, "exit 1"))
    second.add(StepResult("c", "trust", CHANGED, "trust installed"))
    second.add(StepResult("a", "verify", FAILED, "later error"))
    assert first.has_failed("b") and not first.has_failed("a") and not first.has_failed("zz")
    assert [r.step for r in second.of("a")] == ["trust", "verify"] and second.of("zz") == []
    one = merged([first, second])
    assert one.hosts == ["a", "b", "c"] and len(one.results) == 5
    assert one.failed_hosts() == {"b": "facts: unreachable: b", "a": "trust: exit 1"}  # order of failing
    assert one.has_failed("a") and one.has_failed("b") and not one.has_failed("c")
    assert one.counts("a") == {"ok": 1, "changed": 0, "failed": 2, "skipped": 0, "commands": 0}
    assert [ln.split()[:5] for ln in one.recap().splitlines()[2:5]] == [
        ["a", "1", "0", "2", "0"], ["b", "0", "0", "1", "0"], ["c", "0", "1", "0", "0"]]
    assert one.exit_code() != 0 and Run(hosts=["a"], results=[StepResult("a", "s", OK, "")]).exit_code() == 0
