"""trust-cert against plain sshd hosts on loopback: real SSH, real files, real host keys.

Each host's /etc/docker is its own directory (see devtools/sshd_hosts.py).
"""
import pytest

from tests.conftest import require
from tests.integration.clirun import run, statuses
from tests.integration.sshdutil import installed

pytestmark = pytest.mark.sshd


def test_first_run_changes_every_host_and_rerun_changes_none(hosts):
    cfg = hosts.settings_file()
    first = run("inv", "trust-cert", config=cfg)
    assert first.returncode == 0, first.stdout + first.stderr
    ca = (hosts.workdir / "state" / "ca.crt").read_bytes()
    for h in hosts.hosts:
        assert installed(h).read_bytes() == ca
        assert oct(installed(h).stat().st_mode & 0o777) == "0o644"
    assert statuses(first.stdout, "trust-cert") == {h.name: "changed" for h in hosts.hosts}
    second = run("inv", "trust-cert", config=cfg)
    assert second.returncode == 0
    assert statuses(second.stdout, "trust-cert") == {h.name: "ok" for h in hosts.hosts}
    assert second.stdout.count("already trusted") == 4
    recap = second.stdout.split("RECAP", 1)[1]
    for h in hosts.hosts:  # one remote command per host on a converged re-run
        assert f"{h.name:<14}    2        0       0        0         1" in recap  # facts ok, trust ok: 1 command


def test_a_changed_host_costs_one_session_its_facts_shell_running_the_trust_script(hosts):
    """The facts command's shell is held (commands.holding): the trust script goes through it, so a first
    run opens one session per host (sshd's log) for its two commands (the recap and the trace)."""
    cfg = hosts.settings_file()
    trace = hosts.workdir / "trace.log"
    before = [h.commands_started() for h in hosts.hosts]
    first = run("inv", "trust-cert", config=cfg, env={"SWARM_REGISTRY_TRACE": str(trace)})
    assert first.returncode == 0, first.stdout + first.stderr
    assert statuses(first.stdout, "trust-cert") == {h.name: "changed" for h in hosts.hosts}
    assert "TLS to" in first.stdout or "not reachable yet" in first.stdout  # the TLS check from each node came back
    assert [h.commands_started() - b for h, b in zip(hosts.hosts, before)] == [1, 1, 1, 1]
    assert [h.sessions_opened() for h in hosts.hosts] == [1, 1, 1, 1]  # one connection each
    recap = first.stdout.split("RECAP", 1)[1]
    for h in hosts.hosts:  # facts ok, trust changed: 2 commands
        assert f"{h.name:<14}    1        1       0        0         2" in recap, recap
    sent = trace.read_text().splitlines()
    assert len(sent) == 8 and sum("<files/scripts/trust-cert.sh>" in line for line in sent) == 4  # as --dry shows
    ca = (hosts.workdir / "state" / "ca.crt").read_bytes()
    assert all(installed(h).read_bytes() == ca for h in hosts.hosts)
    before = [h.commands_started() for h in hosts.hosts]
    again = run("inv", "trust-cert", config=cfg)
    assert again.returncode == 0 and set(statuses(again.stdout, "trust-cert").values()) == {"ok"}
    assert [h.commands_started() - b for h, b in zip(hosts.hosts, before)] == [1, 1, 1, 1]


def test_a_down_host_is_reported_and_the_others_finish(hosts):
    cfg = hosts.settings_file()
    hosts.hosts[2].stop()
    r = run("inv", "trust-cert", config=cfg)
    assert r.returncode != 0
    assert "FAILED h3: facts: unreachable" in r.stdout
    for h in (hosts.hosts[0], hosts.hosts[1], hosts.hosts[3]):
        assert installed(h).exists()
    hosts.hosts[2].start()
    again = run("inv", "trust-cert", config=cfg)
    assert again.returncode == 0  # only the host that was down changes
    assert statuses(again.stdout, "trust-cert") == {"h1": "ok", "h2": "ok", "h3": "changed", "h4": "ok"}


def test_unknown_host_key_is_refused_before_anything_is_sent(hosts):
    hosts.write_known_hosts(hosts.hosts[:3])  # h4 unknown
    cfg = hosts.settings_file()
    r = run("inv", "trust-cert", config=cfg)
    assert r.returncode != 0 and "unknown host key" in r.stdout and "FAILED h4" in r.stdout
    assert not installed(hosts.hosts[3]).exists() and hosts.hosts[3].sessions_opened() == 0
    assert installed(hosts.hosts[0]).exists()


def test_accept_new_records_unknown_keys(hosts):
    hosts.write_known_hosts([])
    cfg = hosts.settings_file(ssh={"accept_new_host_keys": True})
    r = run("inv", "trust-cert", config=cfg)
    assert r.returncode == 0, r.stdout
    assert len(hosts.known_hosts.read_text().splitlines()) == 4
    strict = run("inv", "trust-cert", config=hosts.settings_file("strict.yaml"))
    assert strict.returncode == 0  # recorded keys now verify without accept_new


def test_changed_host_key_is_refused_naming_both_fingerprints(hosts):
    cfg = hosts.settings_file(ssh={"accept_new_host_keys": True})  # even accept-new refuses a CHANGED key
    hosts.hosts[1].new_host_key()
    r = run("inv", "trust-cert", config=cfg)
    assert r.returncode != 0
    line = next(x for x in r.stdout.splitlines() if x.startswith("FAILED h2"))
    assert "host key CHANGED" in line and line.count("SHA256:") == 2
    assert not installed(hosts.hosts[1]).exists() and hosts.hosts[1].sessions_opened() == 0


def test_check_mode_leaves_every_host_untouched(hosts):
    cfg = hosts.settings_file()
    r = run("inv", "trust-cert", "--check", config=cfg)
    assert r.returncode == 0 and "check mode" in r.stdout
    assert statuses(r.stdout, "trust-cert") == {h.name: "would change" for h in hosts.hosts}
    assert not any(installed(h).exists() for h in hosts.hosts)
    assert not (hosts.workdir / "state").exists()  # not even local files are made in check mode


def test_dry_reads_facts_once_per_host_prints_the_commands_and_changes_nothing(hosts):
    cfg = hosts.settings_file()
    before = sum(h.sessions_opened() for h in hosts.hosts)
    r = run("inv", "--dry", "trust-cert", config=cfg)
    assert r.returncode == 0 and r.stdout.count("$ <files/scripts/trust-cert.sh>") == 4, r.stdout
    assert sum(h.sessions_opened() for h in hosts.hosts) - before == 4  # the facts, one session per host
    assert not any(installed(h).exists() for h in hosts.hosts)


def test_fab_group_and_host_list(hosts):
    cfg = hosts.settings_file()
    r = run("fab", "-H", "workers", "trust-cert", config=cfg)
    assert r.returncode == 0, r.stdout + r.stderr
    assert not installed(hosts.hosts[0]).exists() and all(installed(h).exists() for h in hosts.hosts[1:])
    r2 = run("fab", "-H", "h1,h2", "trust-cert", config=cfg)
    assert r2.returncode == 0 and r2.stdout.count("RECAP") == 1  # one parallel run, one recap
    assert installed(hosts.hosts[0]).exists()
    r3 = run("fab", "-H", "nodes", "trust-cert", config=cfg)
    assert r3.returncode == 0 and set(statuses(r3.stdout, "trust-cert").values()) == {"ok"}
    bad = run("fab", "-H", "nosuchhost", "trust-cert", config=cfg)
    assert bad.returncode == 2 and "'nosuchhost' is neither an inventory host nor a group" in bad.stderr


def test_sudo_setting_runs_through_sudo_non_interactively(hosts):
    require("sudo")
    cfg = hosts.settings_file(ssh={"sudo": True})
    dry = run("inv", "--dry", "trust-cert", config=cfg)
    r = run("inv", "trust-cert", config=cfg)
    assert r.returncode == 0, r.stdout + r.stderr
    assert set(statuses(r.stdout, "trust-cert").values()) == {"changed"}
    assert all(installed(h).exists() for h in hosts.hosts)
    assert "Accepted publickey" in hosts.hosts[0].log.read_text()
    assert dry.returncode == 0 and dry.stdout.count("$ sudo -n -- <files/scripts/trust-cert.sh>") == 4, dry.stdout


def test_each_host_goes_on_to_its_trust_step_without_waiting_for_the_others(tmp_path):
    """trust-cert's plan for a host needs that host's facts only (Job.per_host): a host whose commands are slow
    (its ~/.bashrc sleeps 2 s, as a loaded node would answer) holds nobody up. h1's trust step is done, in a
    run and in --check, before h2's facts are even read; both hosts end changed."""
    from devtools.sshd_hosts import SshdHosts

    require("/usr/sbin/sshd")
    with SshdHosts(2, tmp_path / "hosts", home_skel="/etc/skel") as hosts:
        bashrc = hosts.hosts[1].home / ".bashrc"
        bashrc.write_text("sleep 2\n" + bashrc.read_text())  # before stock Debian's "not interactive: return"
        cfg = hosts.settings_file()
        for args, done in ((("--check",), "would change"), ((), "changed")):
            r = run("inv", "trust-cert", *args, config=cfg)
            assert r.returncode == 0, r.stdout + r.stderr
            lines = [line.split()[:3] for line in r.stdout.split("RECAP")[0].splitlines()]
            h1_trusted = lines.index(["h1", "trust-cert", done.split()[0]])
            h2_read = lines.index(["h2", "facts", "ok"])
            assert h1_trusted < h2_read, r.stdout
            assert statuses(r.stdout, "trust-cert") == {"h1": done, "h2": done}, r.stdout
        assert all(installed(h).exists() for h in hosts.hosts)
