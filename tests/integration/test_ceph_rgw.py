"""A real Ceph RADOS Gateway (devtools.ceph) serves S3 the way the registry's s3 driver uses it.

Talks to the container's fixed address with boto3 (path-style, SigV4, us-east-1). In CI a
missing Docker engine or boto3 fails the module instead of skipping it.
"""
import hashlib
import io
import os
import shutil
import subprocess
import time
import uuid

import pytest

pytestmark = pytest.mark.lab

KEEP = os.environ.get("SWARM_REGISTRY_KEEP_LAB") == "1"
MiB = 1024 * 1024


def _need(ok: bool, why: str) -> None:
    if not ok:
        if os.environ.get("CI"):
            pytest.fail(f"{why} (required in CI)")
        pytest.skip(why)


@pytest.fixture(scope="module")
def boto3():
    try:
        import boto3 as mod
    except ImportError:
        mod = None
    _need(mod is not None, "boto3 is not installed in the project's virtualenv")
    return mod


@pytest.fixture(scope="module")
def ceph():
    docker = shutil.which("docker")
    _need(docker is not None, "no docker CLI on PATH")
    _need(subprocess.run([docker, "info"], capture_output=True).returncode == 0,
          "no Docker engine answers (docker info failed); bash files/host/start-dockerd.sh starts one")
    from devtools import ceph as ceph_mod
    info = ceph_mod.up(out=lambda _l: None)
    yield info
    if not KEEP:
        ceph_mod.down(out=lambda _l: None)


def _client(boto3, info, secret_key=None):
    from botocore.config import Config

    return boto3.client(
        "s3",
        endpoint_url=info.endpoint,
        region_name=info.region,
        aws_access_key_id=info.access_key,
        aws_secret_access_key=secret_key if secret_key is not None else info.secret_key,
        config=Config(
            signature_version="s3v4",
            s3={"addressing_style": "path"},
            proxies={},                      # straight to the container, never an env proxy
            retries={"max_attempts": 1, "mode": "standard"},
            connect_timeout=5, read_timeout=60,
        ),
    )


@pytest.fixture(scope="module")
def s3(boto3, ceph):
    return _client(boto3, ceph)


@pytest.fixture
def bucket(s3):
    name = f"swarm-registry-test-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=name)
    yield name
    for obj in s3.list_objects_v2(Bucket=name).get("Contents", []):
        s3.delete_object(Bucket=name, Key=obj["Key"])
    s3.delete_bucket(Bucket=name)


# ---------------------------------------------------------------------------------------


def test_info_and_credentials_file(ceph):
    from devtools import ceph as ceph_mod
    from devtools.lab import settings as S

    assert ceph.endpoint == f"http://{ceph.ip}:7480"
    assert ceph.ip == str(S.subnet().network_address + 5)
    assert ceph.region == "us-east-1" and ceph.container == "swarm-registry-lab-ceph"
    assert ceph.secret_key not in repr(ceph)
    path = ceph_mod.CREDENTIALS_FILE
    assert (path.stat().st_mode & 0o777) == 0o600
    creds = ceph_mod.read_credentials()
    assert creds["AWS_ACCESS_KEY_ID"] == ceph.access_key
    assert creds["AWS_SECRET_ACCESS_KEY"] == ceph.secret_key
    assert creds["S3_ENDPOINT"] == ceph.endpoint
    # The secret reached the host over docker exec's stdout, never a docker argv or env.
    cfg = subprocess.run(["docker", "inspect", "--format", "{{json .Config}} {{json .Args}}", ceph.container],
                         capture_output=True, text=True, check=True).stdout
    assert ceph.secret_key not in cfg


def test_second_up_is_a_fast_noop(ceph):
    from devtools import ceph as ceph_mod

    lines: list[str] = []
    t0 = time.monotonic()
    again = ceph_mod.up(out=lines.append)
    assert time.monotonic() - t0 < 10
    assert again == ceph
    assert not any("starting" in ln or "building" in ln for ln in lines), lines


def test_put_list_get_delete_roundtrip(s3, bucket):
    body = os.urandom(5 * MiB + 12345)
    s3.put_object(Bucket=bucket, Key="blobs/one", Body=body)
    listed = s3.list_objects_v2(Bucket=bucket, Prefix="blobs/")["Contents"]
    assert [(o["Key"], o["Size"]) for o in listed] == [("blobs/one", len(body))]
    got = s3.get_object(Bucket=bucket, Key="blobs/one")["Body"].read()
    assert hashlib.sha256(got).hexdigest() == hashlib.sha256(body).hexdigest() and got == body
    s3.delete_object(Bucket=bucket, Key="blobs/one")
    assert s3.list_objects_v2(Bucket=bucket).get("KeyCount") == 0


def test_multipart_upload_like_the_registry_s3_driver(s3, bucket):
    """The registry's s3 driver writes blobs as multipart uploads of chunksize (5 MiB) parts."""
    from boto3.s3.transfer import TransferConfig

    body = os.urandom(12 * MiB + 7)
    cfg = TransferConfig(multipart_threshold=5 * MiB, multipart_chunksize=5 * MiB, use_threads=False)
    s3.upload_fileobj(io.BytesIO(body), bucket, "blobs/multi", Config=cfg)
    head = s3.head_object(Bucket=bucket, Key="blobs/multi")
    assert head["ContentLength"] == len(body)
    assert head["ETag"].strip('"').endswith("-3")      # three parts
    assert s3.get_object(Bucket=bucket, Key="blobs/multi")["Body"].read() == body


def test_wrong_secret_key_is_refused(boto3, ceph, s3):
    from botocore.exceptions import ClientError

    s3.list_buckets()  # positive control: the right key works
    bad = _client(boto3, ceph, secret_key=ceph.secret_key[:-4] + ("AAAA" if not ceph.secret_key.endswith("AAAA") else "BBBB"))
    with pytest.raises(ClientError) as err:
        bad.list_buckets()
    resp = err.value.response
    assert resp["Error"]["Code"] == "SignatureDoesNotMatch", resp
    assert resp["ResponseMetadata"]["HTTPStatusCode"] == 403


def test_object_survives_container_restart(s3, ceph):
    from devtools import ceph as ceph_mod

    name = f"swarm-registry-restart-{uuid.uuid4().hex[:12]}"
    body = os.urandom(3 * MiB + 1)
    s3.create_bucket(Bucket=name)
    s3.put_object(Bucket=name, Key="kept", Body=body)

    t0 = time.monotonic()
    subprocess.run(["docker", "restart", "-t", "30", ceph.container], check=True, capture_output=True)
    # A clean stop (radosgw, then the OSD, then the mon) takes a few seconds, not docker's 30 s timeout.
    assert time.monotonic() - t0 < 25, "docker restart waited for its timeout: a daemon ignored SIGTERM"
    after = ceph_mod.up(out=lambda _l: None)  # polls until HEALTH_OK and S3 answers (bounded)
    assert after == ceph                     # same address, same keys

    assert s3.get_object(Bucket=name, Key="kept")["Body"].read() == body
    s3.delete_object(Bucket=name, Key="kept")
    s3.delete_bucket(Bucket=name)
