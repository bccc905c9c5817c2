"""login / logout: `docker login` on the node, the password on stdin, the credential in pass.

The login fact compares without sending the password back: the node hashes what the credential
store answers for the registry, and `expected_sha` hashes what it must answer for this user and
password. After a login, config.json must hold no `auth` value and the store must hold it.
"""
from __future__ import annotations

import hashlib
import json

from .. import commands
from ..errors import Output
from ..facts import Facts, parse
from ..results import CHANGED, FAILED
from . import Action, StepPlan, change, failed, ok, skipped

STEP = "login"
LOGOUT = "logout"


def go_json(value: str) -> str:
    """A JSON string as Go's encoding/json writes it (docker-credential-helpers is Go)."""
    text = json.dumps(value, ensure_ascii=False)
    for ch, esc in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"), ("\u2028", "\\u2028"),
                    ("\u2029", "\\u2029")):
        text = text.replace(ch, esc)
    return text


def expected_sha(endpoint: str, user: str, password: str) -> str:
    entry = f'{{"ServerURL":{go_json(endpoint)},"Username":{go_json(user)},"Secret":{go_json(password)}}}'
    return hashlib.sha256(entry.encode("utf-8")).hexdigest()


def plain_auth(config: bytes | None, endpoint: str) -> bool:
    """True when config.json stores a base64 `auth` for the registry (a password in plain text)."""
    try:
        data = json.loads(config) if config else {}
    except (json.JSONDecodeError, UnicodeDecodeError):
        return False
    auths = (data.get("auths") or {}) if isinstance(data, dict) else {}
    entry = auths.get(endpoint) or auths.get(f"https://{endpoint}") or {}
    return bool(isinstance(entry, dict) and entry.get("auth"))


def logged_in(f: Facts, endpoint: str, user: str, password: str) -> bool:
    return (f.login_user == user and f.login_sha == expected_sha(endpoint, user, password)
            and not plain_auth(f.docker_config, endpoint))


def command(endpoint: str, user: str, action: str, password: str | None = None) -> commands.Command:
    stdin = password.encode("utf-8") if action == "login" else None
    return commands.script("login", {"endpoint": endpoint, "user": user, "action": action}, stdin=stdin,
                           secret=stdin is not None, timeout=60)


def _after_login(endpoint: str, user: str, password: str):
    def verdict(out: Output) -> tuple[str, str]:
        f, rc = parse(out.stdout), out.values().get("rc", "")
        if rc != "0":
            return FAILED, f"docker login to {endpoint} failed: {out.error()}"
        if plain_auth(f.docker_config, endpoint):
            return FAILED, f"logged in, but config.json holds the password for {endpoint} (no credential helper?)"
        if not logged_in(f, endpoint, user, password):
            return FAILED, f"logged in, but the credential store does not hold {user}'s credential for {endpoint}"
        return CHANGED, f"logged in to {endpoint}; credential in pass, none in config.json"
    return verdict


def _after_logout(endpoint: str):
    def verdict(out: Output) -> tuple[str, str]:
        f = parse(out.stdout)
        if out.values().get("rc") != "0":
            return FAILED, f"docker logout {endpoint} failed: {out.error()}"
        if f.login_user or plain_auth(f.docker_config, endpoint):
            return FAILED, f"logged out, but a credential for {endpoint} remains"
        return CHANGED, f"logged out of {endpoint}"
    return verdict


def plan(endpoint: str, user: str, password: str | None, host: str, f: Facts, *,
         helper_coming: bool = False) -> StepPlan:
    """`helper_coming`: the credential-helper step of this same plan installs the helper first."""
    if password is None:
        return skipped(STEP, host, "no password given (env REGISTRY_PASSWORD, --password-stdin or a terminal prompt)")
    if not f.helper_sha and not helper_coming:
        return failed(STEP, host, "docker-credential-pass is not installed: run inv credential-helper first")
    if logged_in(f, endpoint, user, password):
        return ok(STEP, host, f"already logged in to {endpoint} as {user}")
    return change(STEP, host, f"log in to {endpoint} as {user} (password on stdin)",
                  Action(command(endpoint, user, "login", password), _after_login(endpoint, user, password)))


def plan_logout(endpoint: str, user: str, host: str, f: Facts) -> StepPlan:
    if not f.login_user and not plain_auth(f.docker_config, endpoint):
        return ok(LOGOUT, host, f"not logged in to {endpoint}")
    return change(LOGOUT, host, f"log out of {endpoint}", Action(command(endpoint, user, "logout"),
                                                                 _after_logout(endpoint)))
