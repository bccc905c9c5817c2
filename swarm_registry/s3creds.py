"""The S3 access and secret keys of `storage.driver: s3`: from the environment
(SWARM_REGISTRY_S3_ACCESS_KEY / SWARM_REGISTRY_S3_SECRET_KEY) or stored once in state_dir
(`s3-credentials.json`, 0600, by `inv storage.credentials`). They reach the registry only inside its
content-hashed config secret and a node only over stdin; never argv, the settings file or a spec."""
from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

from .settings import SettingsError
from .state import StateDir

FILE = "s3-credentials.json"
ENV_ACCESS, ENV_SECRET = "SWARM_REGISTRY_S3_ACCESS_KEY", "SWARM_REGISTRY_S3_SECRET_KEY"
_KEY = re.compile(r"[A-Za-z0-9+/=._~-]{3,128}")  # what AWS and Ceph generate; safe in a curl config line


@dataclass(frozen=True)
class S3Keys:
    access_key: str
    secret_key: str = field(repr=False)

    def stdin(self) -> bytes:
        """How the keys reach a node: two lines on a command's stdin (files/scripts/facts/bucket.sh reads them)."""
        return f"{self.access_key}\n{self.secret_key}\n".encode()


def check(access_key: str, secret_key: str) -> S3Keys:
    bad = [what for what, k in (("access key", access_key), ("secret key", secret_key)) if not _KEY.fullmatch(k or "")]
    if bad:
        raise SettingsError([f"S3 {' and '.join(bad)}: 3 to 128 of letters, digits and + / = . _ ~ -; "
                             "set them again with `inv storage.credentials`"])
    return S3Keys(access_key, secret_key)


def store(state_dir: Path | str, access_key: str, secret_key: str) -> bool:
    """Keep the keys in state_dir (0600); False when they were already stored as given."""
    keys = check(access_key, secret_key)
    state = StateDir(Path(state_dir))
    state.check()
    body = json.dumps({"access_key": keys.access_key, "secret_key": keys.secret_key}, indent=1).encode() + b"\n"
    return state.write(FILE, body)


def load(state_dir: Path | str, env: Mapping[str, str] = os.environ) -> S3Keys | None:
    """The keys from the environment (both variables set), else from state_dir; None when neither has them."""
    if env.get(ENV_ACCESS) or env.get(ENV_SECRET):
        if not (env.get(ENV_ACCESS) and env.get(ENV_SECRET)):
            raise SettingsError([f"S3 keys: set both {ENV_ACCESS} and {ENV_SECRET}, or neither"])
        return check(env[ENV_ACCESS], env[ENV_SECRET])
    state = StateDir(Path(state_dir))
    raw = state.read(FILE)
    if raw is None:
        return None
    state.check()
    try:
        doc = json.loads(raw)
        return check(str(doc["access_key"]), str(doc["secret_key"]))
    except (ValueError, KeyError, TypeError):
        raise SettingsError([f"state file {str(state.file(FILE))!r} is not valid: store the keys again with "
                             "`inv storage.credentials`"]) from None
