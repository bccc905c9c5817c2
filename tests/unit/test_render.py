"""Stack file rendering: golden files for both publish modes; a new cert changes only secret names."""
from pathlib import Path

import pytest
import yaml

from swarm_registry import render
from swarm_registry import settings as s
from tests.conftest import BASE_HOSTS

GOLDEN = Path(__file__).parent / "golden"
CERT, KEY = b"-----BEGIN CERTIFICATE-----\nfake\n", b"-----BEGIN PRIVATE KEY-----\nfake\n"


def cfg(**registry):
    return s.from_mapping({"hosts": BASE_HOSTS, "registry": registry})


@pytest.mark.parametrize("mode", ["host", "ingress"])
def test_golden(mode):
    settings = cfg(publish_mode=mode)
    got = render.render_stack(settings, render.secret_names(settings, CERT, KEY)).decode()
    assert got == (GOLDEN / f"stack-{mode}.yaml").read_text()


def test_environment_is_a_mapping_without_literal_quotes():
    settings = cfg()
    doc = yaml.safe_load(render.render_stack(settings, render.secret_names(settings, CERT, KEY)))
    env = doc["services"]["registry"]["environment"]
    assert env["REGISTRY_AUTH_HTPASSWD_REALM"] == "Onsen Registry"
    assert doc["services"]["registry"]["deploy"]["placement"]["constraints"] == ["node.labels.registry == true"]
    assert doc["services"]["registry"]["volumes"][1] == {"type": "bind", "source": "/srv/docker/onsen-registry/auth",
                                                         "target": "/auth", "read_only": True}


def test_new_certificate_changes_only_the_secret_names():
    settings = cfg()
    old = yaml.safe_load(render.render_stack(settings, render.secret_names(settings, CERT, KEY)))
    names = render.secret_names(settings, CERT + b"x", KEY + b"y")
    new = yaml.safe_load(render.render_stack(settings, names))
    assert names.cert.startswith("registry.onsen.lan.crt-") and len(names.cert.rsplit("-", 1)[1]) == 8
    assert new["secrets"] != old["secrets"]
    assert set(new["secrets"]) == {names.cert, names.key}
    old_svc, new_svc = old["services"]["registry"], new["services"]["registry"]
    assert [x["target"] for x in old_svc["secrets"]] == [x["target"] for x in new_svc["secrets"]]
    old_svc.pop("secrets"), new_svc.pop("secrets")
    assert old_svc == new_svc


def test_delete_enabled_adds_the_storage_switch():
    settings = cfg(delete_enabled=True)
    doc = yaml.safe_load(render.render_stack(settings, render.secret_names(settings, CERT, KEY)))
    assert doc["services"]["registry"]["environment"]["REGISTRY_STORAGE_DELETE_ENABLED"] == "true"
