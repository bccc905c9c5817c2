"""Stack file rendering: golden files for both publish modes; the spec hash labels (io.swarm-registry.spec
on the service and its container, io.swarm-registry.htpasswd on the container); a new certificate changes
only secret names (and so the spec hash), a new htpasswd only the labels."""
import hashlib
import json
from pathlib import Path

import pytest
import yaml

from swarm_registry import render
from swarm_registry import settings as s
from tests.conftest import BASE_HOSTS

GOLDEN = Path(__file__).parent / "golden"
CERT, KEY = b"-----BEGIN CERTIFICATE-----\nfake\n", b"-----BEGIN PRIVATE KEY-----\nfake\n"
HTPASSWD = b"lenain:$2y$12$abcdefghijklmnopqrstuuOqI7L1cE9lXpAn3vM0q8OBqQm0rF2xW\n"
HTPASSWD_SHA = hashlib.sha256(HTPASSWD).hexdigest()  # 9f3fbd32... in the golden files


def cfg(**registry):
    return s.from_mapping({"hosts": BASE_HOSTS, "registry": registry})


def rendered(settings, htpasswd_sha=HTPASSWD_SHA, cert=CERT, key=KEY) -> dict:
    return yaml.safe_load(render.render_stack(settings, render.secret_names(settings, cert, key), htpasswd_sha))


def spec_label(doc: dict) -> str:
    return doc["services"]["registry"]["deploy"]["labels"][render.SPEC_LABEL]


@pytest.mark.parametrize("mode", ["host", "ingress"])
def test_golden(mode):
    """Regenerate deliberately: render_stack(cfg(publish_mode=MODE), secret_names(CERT, KEY), HTPASSWD_SHA)."""
    settings = cfg(publish_mode=mode)
    got = render.render_stack(settings, render.secret_names(settings, CERT, KEY), HTPASSWD_SHA).decode()
    assert got == (GOLDEN / f"stack-{mode}.yaml").read_text()


def test_golden_files_differ_only_in_the_publish_mode_and_the_hash_it_makes():
    host = yaml.safe_load((GOLDEN / "stack-host.yaml").read_text())
    ingress = yaml.safe_load((GOLDEN / "stack-ingress.yaml").read_text())
    h, i = host["services"]["registry"], ingress["services"]["registry"]
    assert (h["ports"][0]["mode"], i["ports"][0]["mode"]) == ("host", "ingress")
    assert spec_label(host) != spec_label(ingress)
    for svc in (h, i):
        svc.pop("ports"), svc.pop("labels"), svc["deploy"].pop("labels")
    assert host == ingress


def test_spec_labels_on_service_and_container_and_htpasswd_on_container():
    doc = rendered(cfg())
    svc = doc["services"]["registry"]
    digest = spec_label(doc)
    assert len(digest) == 64 and int(digest, 16) >= 0
    assert svc["deploy"]["labels"] == {render.SPEC_LABEL: digest}  # the service's labels
    assert svc["labels"] == {render.HTPASSWD_LABEL: HTPASSWD_SHA, render.SPEC_LABEL: digest}  # the container's


def test_spec_hash_is_the_sha256_of_the_document_without_its_own_labels():
    doc = rendered(cfg())
    svc = doc["services"]["registry"]
    digest = svc["deploy"].pop("labels")[render.SPEC_LABEL]
    del svc["labels"][render.SPEC_LABEL]
    canonical = json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()
    assert digest == hashlib.sha256(canonical).hexdigest()


def test_spec_hash_changes_with_the_htpasswd_sha_and_only_the_labels_follow():
    settings = cfg()
    old, new = rendered(settings), rendered(settings, htpasswd_sha="0" * 64)
    assert spec_label(old) != spec_label(new)
    assert new["services"]["registry"]["labels"][render.HTPASSWD_LABEL] == "0" * 64
    for doc in (old, new):
        doc["services"]["registry"].pop("labels"), doc["services"]["registry"]["deploy"].pop("labels")
    assert old == new


def test_spec_hash_is_stable_for_the_same_stack_whatever_else_the_settings_say(base_settings):
    base = spec_label(rendered(s.from_mapping(base_settings)))
    assert spec_label(rendered(s.from_mapping(base_settings))) == base  # rendered twice
    unrelated = {**base_settings, "ssh": {"parallel": 3, "sudo": True}, "users": ["lenain", "other"],
                 "hosts": {**base_settings["hosts"], "node3": {"address": "10.0.0.12", "user": "admin"}},
                 "cert": {"key_type": "rsa2048", "days": 90}, "credential_helper": {"version": "v0.8.2"},
                 "registry": {"secrets_keep": 5, "converge_timeout": 600, "login_user": "other",
                              "resolve_image": "never", "preload_image": True}}
    assert spec_label(rendered(s.from_mapping(unrelated))) == base


@pytest.mark.parametrize("registry", [{"image": "registry:2.8.3"}, {"realm": "Other"}, {"port": 5443},
                                      {"data_dir": "/srv/registry-data"}, {"label": "reg"},
                                      {"delete_enabled": True}, {"publish_mode": "ingress"}])
def test_spec_hash_changes_with_anything_rendered(base_settings, registry):
    before = spec_label(rendered(s.from_mapping(base_settings)))
    assert spec_label(rendered(s.from_mapping({**base_settings, "registry": registry}))) != before


def test_environment_is_a_mapping_without_literal_quotes():
    doc = rendered(cfg())
    env = doc["services"]["registry"]["environment"]
    assert env["REGISTRY_AUTH_HTPASSWD_REALM"] == "Onsen Registry"
    assert doc["services"]["registry"]["deploy"]["placement"]["constraints"] == ["node.labels.registry == true"]
    assert doc["services"]["registry"]["volumes"][1] == {"type": "bind", "source": "/srv/docker/onsen-registry/auth",
                                                         "target": "/auth", "read_only": True}


def test_new_certificate_changes_only_the_secret_names_and_the_spec_hash():
    settings = cfg()
    old = rendered(settings)
    names = render.secret_names(settings, CERT + b"x", KEY + b"y")
    new = rendered(settings, cert=CERT + b"x", key=KEY + b"y")
    assert names.cert.startswith("registry.onsen.lan.crt-") and len(names.cert.rsplit("-", 1)[1]) == 8
    assert set(new["secrets"]) == {names.cert, names.key} and new["secrets"] != old["secrets"]
    assert spec_label(new) != spec_label(old)  # so the service is deployed again with the new secrets
    old_svc, new_svc = old["services"]["registry"], new["services"]["registry"]
    assert [x["target"] for x in old_svc["secrets"]] == [x["target"] for x in new_svc["secrets"]]
    for svc in (old_svc, new_svc):
        svc.pop("secrets"), svc.pop("labels"), svc["deploy"].pop("labels")
    assert old_svc == new_svc


def test_delete_enabled_adds_the_storage_switch():
    doc = rendered(cfg(delete_enabled=True))
    assert doc["services"]["registry"]["environment"]["REGISTRY_STORAGE_DELETE_ENABLED"] == "true"
    assert "REGISTRY_STORAGE_DELETE_ENABLED" not in rendered(cfg())["services"]["registry"]["environment"]
