"""bucket (storage s3): the bucket exists and answers to our keys, as the first registry node reaches
the S3 endpoint (the control machine may not reach it). Read by the `bucket` fact, made by
files/scripts/bucket.sh when missing; keys refused or an endpoint that does not answer fail setup
here, with the reason, instead of a registry that answers 500 later. The keys travel on stdin only."""
from __future__ import annotations

from .. import commands, facts as facts_mod
from ..errors import Output
from ..facts import Facts
from ..results import CHANGED, FAILED
from . import Action, StepPlan, change, failed, ok

STEP = "bucket"
FACT = "bucket"


def fact_names(settings, host: str) -> tuple[str, ...]:
    return (FACT,) if settings.storage.driver == "s3" and host == settings.registry.node else ()


def keys_stdin(w) -> bytes:
    return w.s3_keys.stdin()


def fact_stdin(w):
    """host -> the stdin of its facts command: the S3 keys for the node that reads the bucket fact."""
    def stdin(host: str) -> bytes | None:
        return keys_stdin(w) if fact_names(w.settings, host) else None
    return stdin


def problem(code: str, s3, host: str) -> str:
    where = f"{s3.endpoint}/{s3.bucket} from {host}"
    if code == "403":
        return (f"S3 refused the access key at {where} (HTTP 403): store the right keys with "
                "`inv storage.credentials`, or check the user's rights on the bucket")
    if code in ("000", ""):
        return f"S3 endpoint does not answer at {where}: check storage.s3.endpoint and that the node reaches it"
    if code == "nocurl":
        return f"{host} has no curl (needed to check and create the bucket): apt-get install curl"
    return f"S3 answered HTTP {code} for {where}"


def verdict(s3, host: str):
    def judge(out: Output) -> tuple[str, str]:
        if not out.ok:
            return FAILED, out.error()
        code = facts_mod.parse(out.stdout).bucket
        return (CHANGED, f"created bucket {s3.bucket}") if code == "200" else (FAILED, problem(code, s3, host))
    return judge


def plan(w, host: str, f: Facts) -> StepPlan:
    s3 = w.settings.storage.s3
    if f.bucket == "200":
        return ok(STEP, host, f"bucket {s3.bucket} answers at {s3.endpoint}")
    if f.bucket != "404":
        return failed(STEP, host, problem(f.bucket, s3, host))
    cmd = commands.script("bucket", facts_mod.script_values(w.settings), stdin=keys_stdin(w), secret=True)
    return change(STEP, host, f"create bucket {s3.bucket} at {s3.endpoint} (keys on stdin)",
                  Action(cmd, verdict(s3, host)))
