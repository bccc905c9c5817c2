"""docker login/logout on a node: one command reads the state, a second logs in only when needed.

The password goes on stdin to `docker login --password-stdin`. Afterwards config.json must
hold no `auth` value for the registry (the credential store keeps it) and the store must
know the registry; otherwise the step fails.
"""
from __future__ import annotations

import base64
import hmac
import json
from dataclasses import dataclass

from .. import commands
from ..results import CHANGED, FAILED, OK


@dataclass
class LoginFacts:
    helper: bool
    stored_user: str
    stored_secret: str
    config: dict
    rc: int | None


def command(endpoint: str, user: str, action: str, password: str | None = None) -> commands.Command:
    stdin = password.encode("utf-8") if (action == "login" and password is not None) else None
    return commands.Command(("sh", "-c", commands.script("login"), "login", endpoint, user, action),
                            stdin=stdin, secret=stdin is not None, timeout=60)


def _b64(value: str) -> bytes:
    try:
        return base64.b64decode(value or "", validate=False)
    except (ValueError, TypeError):
        return b""


def parse(stdout: str) -> LoginFacts:
    f = dict(line.split("=", 1) for line in stdout.splitlines() if "=" in line)
    stored, config = _b64(f.get("stored", "")), _b64(f.get("config", ""))
    try:
        entry = json.loads(stored) if stored.strip() else {}
    except json.JSONDecodeError:
        entry = {}
    try:
        conf = json.loads(config) if config.strip() else {}
    except json.JSONDecodeError:
        conf = {"_malformed": True}
    return LoginFacts(helper=f.get("helper") == "1", stored_user=entry.get("Username", ""),
                      stored_secret=entry.get("Secret", ""), config=conf if isinstance(conf, dict) else {},
                      rc=int(f["rc"]) if f.get("rc", "").lstrip("-").isdigit() else None)


def plain_auth(config: dict, endpoint: str) -> bool:
    """True when config.json stores a base64 `auth` for the registry (a password in plain text)."""
    entry = (config.get("auths") or {}).get(endpoint) or (config.get("auths") or {}).get(f"https://{endpoint}") or {}
    return bool(entry.get("auth"))


def same_secret(stored: str, password: str) -> bool:
    return bool(stored) and hmac.compare_digest(stored.encode(), password.encode())


def logged_in(f: LoginFacts, user: str, password: str) -> bool:
    return f.stored_user == user and same_secret(f.stored_secret, password)


def verdict_after_login(f: LoginFacts, endpoint: str, stderr: str) -> tuple[str, str]:
    if f.rc != 0:
        detail = (stderr.strip().splitlines() or [f"exit status {f.rc}"])[-1]
        return FAILED, f"docker login to {endpoint} failed: {detail}"
    if plain_auth(f.config, endpoint):
        return FAILED, f"logged in, but config.json holds the password for {endpoint} (no credential helper?)"
    if not f.stored_secret:
        return FAILED, f"logged in, but the credential store does not know {endpoint}"
    return CHANGED, f"logged in to {endpoint}; credential in pass, none in config.json"


def verdict_after_logout(f: LoginFacts, endpoint: str, stderr: str) -> tuple[str, str]:
    if f.rc != 0:
        return FAILED, f"docker logout {endpoint} failed: {(stderr.strip().splitlines() or ['?'])[-1]}"
    if f.stored_secret or plain_auth(f.config, endpoint):
        return FAILED, f"logged out, but a credential for {endpoint} remains"
    return CHANGED, f"logged out of {endpoint}"


def login_step(session, endpoint: str, user: str, password: str, check: bool) -> tuple[str, str]:
    res = session.run(command(endpoint, user, "facts"))
    f = parse(res.stdout)
    if not f.helper:
        if check:  # in setup --check, the credential-helper step before this one would install it
            return CHANGED, f"would log in to {endpoint} as {user} (once docker-credential-pass is installed)"
        return FAILED, "docker-credential-pass is not installed: run inv credential-helper first"
    if logged_in(f, user, password) and not plain_auth(f.config, endpoint):
        return OK, f"already logged in to {endpoint} as {user}"
    if check:
        return CHANGED, f"would log in to {endpoint} as {user}"
    res = session.run(command(endpoint, user, "login", password))
    return verdict_after_login(parse(res.stdout), endpoint, res.stderr)


def logout_step(session, endpoint: str, user: str, check: bool) -> tuple[str, str]:
    f = parse(session.run(command(endpoint, user, "facts")).stdout)
    if not f.stored_secret and not (f.config.get("auths") or {}).get(endpoint):
        return OK, f"not logged in to {endpoint}"
    if check:
        return CHANGED, f"would log out of {endpoint}"
    res = session.run(command(endpoint, user, "logout"))
    return verdict_after_logout(parse(res.stdout), endpoint, res.stderr)
