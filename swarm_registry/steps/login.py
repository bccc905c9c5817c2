"""login / logout: `docker login` on the node, the password on stdin, the credential in pass.

The login fact compares without sending the password back: the node hashes the secret the credential
store holds for the registry (decrypted by gpg; files/scripts/facts/login.sh), and `expected_sha` hashes
the password it must hold. After a login, config.json must hold no `auth` value and the store must hold it.
"""
from __future__ import annotations

import hashlib
import json

from .. import commands
from ..errors import Output
from ..facts import Facts, helper_entry_dir, parse
from ..results import CHANGED, FAILED
from . import Action, StepPlan, change, failed, ok, skipped

STEP = "login"
LOGOUT = "logout"


def expected_sha(password: str) -> str:
    """What the login fact reads when the store holds `password`: the secret's sha256 (docker login
    stores the password as given, and pass keeps the bytes it is handed)."""
    return hashlib.sha256(password.encode("utf-8")).hexdigest()


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
    return (f.login_user == user and f.login_sha == expected_sha(password)
            and not plain_auth(f.docker_config, endpoint))


def command(endpoint: str, user: str, action: str, password: str | None = None) -> commands.Command:
    stdin = password.encode("utf-8") if action == "login" else None
    values = {"endpoint": endpoint, "cred_dir": helper_entry_dir(endpoint), "user": user, "action": action}
    return commands.script("login", values, stdin=stdin, secret=stdin is not None, timeout=60)


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
    if not f.helper_path and not helper_coming:
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
