"""``goth_actors.project_id()``: the project, in google-auth's order (and Goth 1.4's gcloud
configuration), with the metadata server last."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import google.auth
import pytest

from goth_actors import ConfigError, project_id
from goth_actors.testing import GoogleEmulator


def _adc(tmp_path: Path, info: dict[str, Any]) -> str:
    path = tmp_path / "adc.json"
    path.write_text(json.dumps(info))
    return str(path)


def _gcloud(tmp_path: Path, project: str, name: str = "default") -> dict[str, str]:
    folder = tmp_path / "gcloud"
    (folder / "configurations").mkdir(parents=True)
    (folder / "configurations" / f"config_{name}").write_text(
        f"[core]\naccount = me@example.com\nproject = {project}\n"
    )
    if name != "default":
        (folder / "active_config").write_text(name)
    return {"CLOUDSDK_CONFIG": str(folder)}


def test_the_environment_comes_first(emulator: GoogleEmulator, tmp_path: Path) -> None:
    environ = {
        "GOOGLE_CLOUD_PROJECT": "from-env",
        "GCLOUD_PROJECT": "legacy",
        "GOOGLE_APPLICATION_CREDENTIALS": _adc(tmp_path, emulator.service_account()),
    }
    assert project_id(environ=environ) == "from-env"
    del environ["GOOGLE_CLOUD_PROJECT"]
    assert project_id(environ=environ) == "legacy"


def test_a_service_account_keys_project_comes_next(
    emulator: GoogleEmulator, tmp_path: Path
) -> None:
    emulator.project_id = "key-project"
    environ = {
        "GOOGLE_APPLICATION_CREDENTIALS": _adc(tmp_path, emulator.service_account()),
        **_gcloud(tmp_path, "gcloud-project"),
    }
    assert project_id(environ=environ, metadata=False) == "key-project"


def test_an_impersonated_files_target_names_the_project(
    emulator: GoogleEmulator, tmp_path: Path
) -> None:
    info = emulator.impersonated_service_account(
        emulator.authorized_user(), "deployer@target-project.iam.gserviceaccount.com"
    )
    environ = {"GOOGLE_APPLICATION_CREDENTIALS": _adc(tmp_path, info)}
    assert project_id(environ=environ, metadata=False) == "target-project"


def test_an_external_accounts_project_is_its_workforce_project_or_its_pools_number(
    emulator: GoogleEmulator, tmp_path: Path
) -> None:
    external = emulator.workload_identity()
    environ = {"GOOGLE_APPLICATION_CREDENTIALS": _adc(tmp_path, external)}
    number = external["audience"].split("/")[4]
    assert project_id(environ=environ, metadata=False) == number


def test_gclouds_active_configuration_comes_before_the_metadata_server(
    emulator: GoogleEmulator, tmp_path: Path
) -> None:
    environ = {
        "GOOGLE_APPLICATION_CREDENTIALS": _adc(tmp_path, emulator.authorized_user()),
        "GCE_METADATA_HOST": emulator.metadata_host,
        **_gcloud(tmp_path, "work-project", name="work"),
    }
    assert project_id(environ=environ) == "work-project"
    assert project_id(environ={**environ, "CLOUDSDK_CORE_PROJECT": "override"}) == "override"
    assert emulator.requests_to("metadata") == []


def test_the_metadata_server_is_asked_last(emulator: GoogleEmulator, tmp_path: Path) -> None:
    emulator.project_id = "metadata-project"
    environ = {"HOME": str(tmp_path), "GCE_METADATA_HOST": emulator.metadata_host}
    assert project_id(environ=environ) == "metadata-project"
    assert project_id(environ=environ, metadata=False) is None


def test_off_google_cloud_the_answer_is_none_within_the_timeout(tmp_path: Path) -> None:
    environ = {"HOME": str(tmp_path), "GCE_METADATA_HOST": "127.0.0.1:9"}  # refused
    assert project_id(environ=environ, timeout=1.0) is None


def test_an_unreadable_adc_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError):
        project_id(environ={"GOOGLE_APPLICATION_CREDENTIALS": str(tmp_path / "missing.json")})


def test_google_auth_finds_the_same_project_for_a_key_and_for_the_metadata_server(
    emulator: GoogleEmulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from google.auth.compute_engine import _metadata

    emulator.project_id = "key-project"
    adc = _adc(tmp_path, emulator.service_account())
    for name in ("GOOGLE_CLOUD_PROJECT", "GCLOUD_PROJECT", "CLOUDSDK_CORE_PROJECT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", adc)
    assert google.auth.default()[1] == project_id(environ={"GOOGLE_APPLICATION_CREDENTIALS": adc})
    monkeypatch.delenv("GOOGLE_APPLICATION_CREDENTIALS")
    monkeypatch.setenv("CLOUDSDK_CONFIG", str(tmp_path / "no-gcloud"))
    monkeypatch.setenv("GCE_METADATA_HOST", emulator.metadata_host)
    monkeypatch.setenv("GCE_METADATA_IP", emulator.metadata_host)
    monkeypatch.setattr(_metadata, "_GCE_METADATA_HOST", emulator.metadata_host)
    emulator.project_id = "metadata-project"
    environ = {
        "CLOUDSDK_CONFIG": str(tmp_path / "no-gcloud"),
        "GCE_METADATA_HOST": emulator.metadata_host,
    }
    assert google.auth.default()[1] == project_id(environ=environ) == "metadata-project"
