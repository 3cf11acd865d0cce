"""``goth-actors serve`` as a command: other processes' clients, signals, and its mistakes."""

from __future__ import annotations

import http.client
import json
import signal
import socket
import subprocess
import sys
from pathlib import Path

import jwt
import pytest

from benchmarks.serve import TOKEN_PATH, start_serve
from goth_actors._cli import main
from goth_actors._cli.emulator import write_private
from goth_actors.testing import GoogleEmulator

AUDIENCE = "https://service.example"

# What a client process does, with google-auth and nothing but the two variables.
GOOGLE_AUTH_CLIENT = """
import json
import google.auth
import google.auth.transport.requests
from google.auth import compute_engine

request = google.auth.transport.requests.Request()
access = compute_engine.Credentials()
access.refresh(request)
identity = compute_engine.IDTokenCredentials(
    request, sys_audience, use_metadata_identity_endpoint=True
)
identity.refresh(request)
found, project = google.auth.default()
found.refresh(request)
print(json.dumps({
    "token": access.token,
    "email": access.service_account_email,
    "universe": access.universe_domain,
    "id_token": identity.token,
    "default_class": type(found).__name__,
    "default_token": found.token,
    "project": project,
}))
""".replace("sys_audience", repr(AUDIENCE))


def _terminate(serve: subprocess.Popen[str]) -> tuple[str, str]:
    """Stops ``serve`` with SIGTERM (killed if it lingers); returns its stdout and stderr."""
    serve.send_signal(signal.SIGTERM)
    try:
        return serve.communicate(timeout=20)
    finally:
        if serve.poll() is None:
            serve.kill()
            serve.wait()


@pytest.mark.slow
@pytest.mark.timeout(60)
def test_google_auth_in_another_process_gets_tokens_id_tokens_and_the_project_from_serve(
    emulator: GoogleEmulator, tmp_path: Path
) -> None:
    key_info = emulator.service_account()
    key = write_private(tmp_path / "key.json", key_info)
    serve, host = start_serve(key, "--audience", AUDIENCE)  # killed if it does not start
    try:
        home = tmp_path / "home"  # empty: no gcloud credentials in it
        home.mkdir()
        client = subprocess.run(
            [sys.executable, "-c", GOOGLE_AUTH_CLIENT],
            env={"GCE_METADATA_HOST": host, "GCE_METADATA_IP": host, "HOME": str(home)},
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        assert client.returncode == 0, client.stderr
        got = json.loads(client.stdout)
        assert emulator.token_info(got["token"]) is not None
        assert got["default_token"] == got["token"]  # the same cached token
        assert got["email"] == key_info["client_email"]
        assert got["universe"] == "googleapis.com"
        assert got["default_class"] == "Credentials"
        assert got["project"] == key_info["project_id"]
        claims = jwt.decode(got["id_token"], options={"verify_signature": False})
        assert claims["aud"] == AUDIENCE
    finally:
        out, err = _terminate(serve)
    assert serve.returncode == 0, err
    assert emulator.request_count("token") == 2  # one access token, one ID token
    for secret in (got["token"], got["id_token"], key_info["private_key"].splitlines()[1]):
        assert secret not in out + err


def _key(emulator: GoogleEmulator, tmp_path: Path) -> str:
    return str(write_private(tmp_path / "key.json", emulator.service_account()))


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--port", "70000"], "--port: must be a port"),
        (["--max-servers", "0"], "--max-servers: must be a whole number from 1"),
        (["--max-connections", "x"], "--max-connections: must be a whole number"),
        (["--idle", "0"], "--idle: must be a number of seconds above 0"),
        (["--max-servers", "1", "--audience", "a"], "--max-servers 1 leaves no room"),
    ],
)
def test_a_wrong_command_line_exits_2_with_one_line(
    arguments: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["serve", *arguments]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith("goth-actors serve: ")
    assert message in err


def test_a_port_in_use_exits_1_naming_it(
    emulator: GoogleEmulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["serve", "--credentials", _key(emulator, tmp_path), "--port", str(port)]) == 1
    assert f"--port {port}: 127.0.0.1:{port} is already in use" in capsys.readouterr().err


def test_another_host_than_loopback_is_warned_about(
    emulator: GoogleEmulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    arguments = ["--credentials", _key(emulator, tmp_path), "--host", "192.0.2.1", "--port", "0"]
    assert main(["serve", *arguments]) == 1  # not an address of this machine
    warning, error = capsys.readouterr().err.splitlines()
    assert "warning: --host 192.0.2.1: tokens are served to every host" in warning
    assert "no such address" in error


def test_a_missing_key_file_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", "--credentials", str(tmp_path / "nope.json")]) == 1
    assert "--credentials: names" in capsys.readouterr().err


def test_no_credentials_anywhere_exits_1_with_googles_advice(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        nobody = f"127.0.0.1:{closed.getsockname()[1]}"
    monkeypatch.delenv("GOOGLE_APPLICATION_CREDENTIALS", raising=False)
    monkeypatch.setenv("CLOUDSDK_CONFIG", str(tmp_path))
    monkeypatch.setenv("GCE_METADATA_HOST", nobody)
    assert main(["serve", "--port", "0"]) == 1
    err = capsys.readouterr().err
    assert "default credentials were not found" in err
    assert nobody in err


def test_serve_will_not_be_its_own_upstream(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("GOOGLE_APPLICATION_CREDENTIALS", raising=False)
    monkeypatch.setenv("CLOUDSDK_CONFIG", str(tmp_path))
    monkeypatch.setenv("GCE_METADATA_HOST", "127.0.0.1:18777")
    assert main(["serve", "--port", "18777"]) == 1
    assert "is this server" in capsys.readouterr().err


def test_user_credentials_with_an_audience_are_refused_before_anything_starts(
    emulator: GoogleEmulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    user = write_private(tmp_path / "user.json", emulator.authorized_user())
    arguments = ["--credentials", str(user), "--audience", AUDIENCE, "--port", "0"]
    assert main(["serve", *arguments]) == 1
    err = capsys.readouterr().err
    assert err == (
        "goth-actors serve: --audience: RefreshToken credentials give no ID tokens; serve a "
        "service account's key, impersonated credentials or a metadata server's\n"
    )
    assert emulator.request_count("token") == 0


def test_a_scope_for_user_credentials_is_warned_about_as_ignored(
    emulator: GoogleEmulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    user = write_private(tmp_path / "user.json", emulator.authorized_user())
    with socket.socket() as taken:  # so that serve stops right after its warnings
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        arguments = ["--credentials", str(user), "--scope", "x", "--port", port]
        assert main(["serve", *arguments]) == 1
    warning, error = capsys.readouterr().err.splitlines()
    assert warning == (
        "goth-actors serve: warning: --scope is ignored: user credentials carry the scopes "
        "the user granted"
    )
    assert "already in use" in error


@pytest.mark.slow
@pytest.mark.timeout(60)
def test_tokens_live_in_memory_only_serve_writes_no_file(
    emulator: GoogleEmulator, tmp_path: Path
) -> None:
    key_info = emulator.service_account()
    key = write_private(tmp_path / "key.json", key_info)
    places = {name: tmp_path / name for name in ("work", "home", "tmp", "cache")}
    for place in places.values():
        place.mkdir()
    serve, host = start_serve(
        key,
        cwd=places["work"],
        HOME=str(places["home"]),
        TMPDIR=str(places["tmp"]),
        XDG_CACHE_HOME=str(places["cache"]),
        PYTHONDONTWRITEBYTECODE="1",
    )
    try:
        name, port = host.rsplit(":", 1)
        connection = http.client.HTTPConnection(name, int(port), timeout=10.0)
        connection.request("GET", TOKEN_PATH, headers={"Metadata-Flavor": "Google"})
        answer = connection.getresponse()
        token = json.loads(answer.read())["access_token"]
        connection.close()
        assert answer.status == 200
    finally:
        _terminate(serve)
    assert emulator.token_info(token) is not None
    written = sorted(str(path) for place in places.values() for path in place.rglob("*"))
    assert written == []  # its directory, home, temporary and cache directories stay empty
    assert token not in key.read_text(encoding="utf-8")
