"""The goth-actors command line: token and emulator."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from goth_actors._cli import main
from goth_actors.testing import GoogleEmulator


def _write(path: Path, data: object) -> Path:
    path.write_text(json.dumps(data))
    return path


def test_token_prints_an_access_token_from_a_key_file(
    emulator: GoogleEmulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    key = _write(tmp_path / "key.json", emulator.service_account())
    assert main(["token", "--credentials", str(key), "--scope", "a", "--scope", "b"]) == 0
    printed = capsys.readouterr().out.strip()
    info = emulator.token_info(printed)
    assert info is not None
    assert info["scope"] == "a b"


def test_token_uses_application_default_credentials(
    emulator: GoogleEmulator,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    user = _write(tmp_path / "user.json", emulator.authorized_user())
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(user))
    assert main(["token"]) == 0
    assert emulator.token_info(capsys.readouterr().out.strip()) is not None


def test_token_with_an_audience_prints_an_id_token_from_the_metadata_server(
    emulator: GoogleEmulator, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GCE_METADATA_HOST", emulator.metadata_host)
    assert main(["token", "--metadata", "--audience", "https://x.example"]) == 0
    printed = capsys.readouterr().out.strip()
    assert printed.count(".") == 2  # a JWT
    assert emulator.requests_to("metadata")[0].query["audience"] == "https://x.example"


def test_token_with_an_audience_and_a_service_account_prints_an_id_token(
    emulator: GoogleEmulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    key = _write(tmp_path / "key.json", emulator.service_account())
    assert main(["token", "--credentials", str(key), "--audience", "https://x.example"]) == 0
    assert emulator.requests_to("token")[0].form.get("assertion")
    assert capsys.readouterr().out.count(".") == 2


def test_token_errors_are_one_line_on_stderr_with_status_1(
    emulator: GoogleEmulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    user = emulator.authorized_user()
    emulator.revoke(user["refresh_token"])
    path = _write(tmp_path / "user.json", user)
    assert main(["token", "--credentials", str(path)]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.count("\n") == 1
    assert "invalid_grant" in captured.err
    assert user["refresh_token"] not in captured.err


def test_token_names_a_missing_credentials_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["token", "--credentials", str(tmp_path / "nope.json")]) == 1
    assert "does not exist" in capsys.readouterr().err


def test_token_refuses_an_audience_for_user_credentials(
    emulator: GoogleEmulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _write(tmp_path / "user.json", emulator.authorized_user())
    assert main(["token", "--credentials", str(path), "--audience", "x"]) == 1
    assert "--audience" in capsys.readouterr().err


def test_the_console_script_prints_no_traceback_on_error(tmp_path: Path) -> None:
    bad = _write(tmp_path / "bad.json", {"type": "service_account", "client_email": "x@y"})
    result = subprocess.run(
        [sys.executable, "-m", "goth_actors._cli", "token", "--credentials", str(bad)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert "credentials.private_key" in result.stderr


def test_the_emulator_command_serves_and_writes_credentials(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "goth_actors._cli",
            "emulator",
            "--port",
            "0",
            "--write-credentials",
            str(tmp_path),
        ],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert process.stdout is not None
        lines = []
        for line in process.stdout:
            lines.append(line)
            if line.startswith("press Ctrl-C"):
                break
        assert lines[0].startswith("emulator listening on http://127.0.0.1:")
        key = tmp_path / "service_account.json"
        assert oct(key.stat().st_mode & 0o777) == "0o600"
        result = subprocess.run(
            [sys.executable, "-m", "goth_actors._cli", "token", "--credentials", str(key)],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        assert result.stdout.startswith("ya29.")
    finally:
        process.terminate()
        assert process.wait(timeout=10) == 0
        if process.stdout is not None:
            process.stdout.close()


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--metadata", "--scope", "s", "--audience", "a"], "--scope and --audience"),
        (["--metadata", "--timeout", "0"], "--timeout must be"),
    ],
)
def test_token_names_the_command_line_option_that_is_wrong(
    arguments: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["token", *arguments]) == 1
    assert message in capsys.readouterr().err
