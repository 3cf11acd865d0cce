"""Executable-sourced workload identity (pluggable auth): a program prints the subject token.

Against the emulator's executable fixture and small programs of the tests' own, one per
failure; side by side with google-auth. The programs run in subprocesses, hence ``slow``.
"""

from __future__ import annotations

import json
import os
import shlex
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from _google_auth import auth_request, identity
from google.auth import pluggable

from goth_actors import ConfigError, Token, TokenError, WorkloadIdentity
from goth_actors.testing import GoogleEmulator

pytestmark = pytest.mark.slow

ALLOW = {"GOOGLE_EXTERNAL_ACCOUNT_ALLOW_EXECUTABLES": "1"}


def _environ(**extra: str) -> dict[str, str]:
    return {**os.environ, **ALLOW, **extra}


def _program(tmp_path: Path, code: str) -> str:
    """A command line that runs ``code`` with this Python."""
    path = tmp_path / f"program-{len(list(tmp_path.iterdir()))}.py"
    path.write_text(code)
    return f"{shlex.quote(sys.executable)} {shlex.quote(str(path))}"


def _with_command(credentials: dict[str, Any], command: str, **options: Any) -> dict[str, Any]:
    executable = {**credentials["credential_source"]["executable"], "command": command, **options}
    return {**credentials, "credential_source": {"executable": executable}}


def test_the_program_prints_the_subject_token_and_sts_takes_it(
    emulator: GoogleEmulator, tmp_path: Path
) -> None:
    credentials = emulator.executable_workload_identity(tmp_path)
    token = Token.fetch(WorkloadIdentity(credentials), environ=_environ())
    assert identity(emulator, token.token)["email"].startswith("principal://")


def test_the_program_gets_the_environment_google_auth_passes(
    emulator: GoogleEmulator, tmp_path: Path
) -> None:
    sa = "exe@p.iam.gserviceaccount.com"
    credentials = emulator.executable_workload_identity(
        tmp_path, output_file=True, service_account=sa
    )
    Token.fetch(WorkloadIdentity(credentials), environ=_environ())
    seen = json.loads((tmp_path / "environment.json").read_text())
    assert seen["GOOGLE_EXTERNAL_ACCOUNT_AUDIENCE"] == credentials["audience"]
    assert seen["GOOGLE_EXTERNAL_ACCOUNT_TOKEN_TYPE"] == credentials["subject_token_type"]
    assert seen["GOOGLE_EXTERNAL_ACCOUNT_INTERACTIVE"] == "0"
    assert seen["GOOGLE_EXTERNAL_ACCOUNT_IMPERSONATED_EMAIL"] == sa
    assert seen["GOOGLE_EXTERNAL_ACCOUNT_OUTPUT_FILE"] == str(tmp_path / "subject-token-cache.json")


def test_executables_run_only_when_allowed_explicitly(
    emulator: GoogleEmulator, tmp_path: Path
) -> None:
    credentials = emulator.executable_workload_identity(tmp_path)
    environ = {k: v for k, v in os.environ.items() if k not in ALLOW}
    with pytest.raises(TokenError, match="GOOGLE_EXTERNAL_ACCOUNT_ALLOW_EXECUTABLES=1"):
        Token.fetch(WorkloadIdentity(credentials), environ=environ)
    assert not (tmp_path / "environment.json").exists()  # it never ran


def test_an_unexpired_response_in_the_output_file_is_used_without_running_the_program(
    emulator: GoogleEmulator, tmp_path: Path
) -> None:
    credentials = emulator.executable_workload_identity(tmp_path, output_file=True)
    subject = emulator.subject_token(credentials["audience"])
    cached = {
        "version": 1,
        "success": True,
        "token_type": "urn:ietf:params:oauth:token-type:jwt",
        "id_token": subject,
        "expiration_time": int(time.time()) + 600,
    }
    (tmp_path / "subject-token-cache.json").write_text(json.dumps(cached))
    Token.fetch(WorkloadIdentity(credentials), environ=_environ())
    assert not (tmp_path / "environment.json").exists()
    assert emulator.requests_to("sts")[-1].form["subject_token"] == subject


def test_an_expired_cached_response_runs_the_program(
    emulator: GoogleEmulator, tmp_path: Path
) -> None:
    credentials = emulator.executable_workload_identity(tmp_path, output_file=True)
    stale = {"version": 1, "success": True, "token_type": "urn:ietf:params:oauth:token-type:jwt",
             "id_token": "old", "expiration_time": 1}  # fmt: skip
    (tmp_path / "subject-token-cache.json").write_text(json.dumps(stale))
    Token.fetch(WorkloadIdentity(credentials), environ=_environ())
    assert (tmp_path / "environment.json").exists()


def test_a_program_that_prints_nothing_may_answer_in_the_output_file(
    emulator: GoogleEmulator, tmp_path: Path
) -> None:
    credentials = emulator.executable_workload_identity(tmp_path, output_file=True)
    subject = emulator.subject_token(credentials["audience"])
    output = tmp_path / "subject-token-cache.json"
    response = {"version": 1, "success": True, "id_token": subject,
                "token_type": "urn:ietf:params:oauth:token-type:id_token"}  # fmt: skip
    command = _program(tmp_path, f"open({str(output)!r}, 'w').write({json.dumps(response)!r})")
    Token.fetch(WorkloadIdentity(_with_command(credentials, command)), environ=_environ())
    assert emulator.requests_to("sts")[-1].form["subject_token"] == subject


def test_a_saml_response_is_the_subject_token(emulator: GoogleEmulator, tmp_path: Path) -> None:
    credentials = emulator.executable_workload_identity(tmp_path)
    response = {"version": 1, "success": True, "saml_response": "PHNhbWw+",
                "token_type": "urn:ietf:params:oauth:token-type:saml2"}  # fmt: skip
    command = _program(tmp_path, f"print({json.dumps(response)!r})")
    with pytest.raises(TokenError):  # the emulator's pool wants a JWT
        Token.fetch(WorkloadIdentity(_with_command(credentials, command)), environ=_environ())
    assert emulator.requests_to("sts")[-1].form["subject_token"] == "PHNhbWw+"


SECRET = "eyJsecret.payload.signature-that-must-not-leak"


@pytest.mark.parametrize(
    ("code", "problem", "retryable"),
    [
        (f"import sys; print({SECRET!r}); sys.exit(3)", "exited with status 3", True),
        ("import time; time.sleep(30)", "timed out", True),
        (f"print('not json {SECRET}')", "not a JSON object", False),
        ('print(\'{"version": 2, "success": true}\')', "version 2", False),
        ("print('{\"version\": 1}')", "without success", False),
        (
            'print(\'{"version": 1, "success": false, "code": "401", '
            '"message": "Caller not authorized.\\\\n\\\\u001b[2J"}\')',
            "failed: code '401', message 'Caller not authorized.\\n\\x1b[2J'",
            True,
        ),
        ('print(\'{"version": 1, "success": false}\')', "no code and message", False),
        (
            'print(\'{"version": 1, "success": true, "expiration_time": 1, '
            '"token_type": "urn:ietf:params:oauth:token-type:jwt", "id_token": "x"}\')',
            "already expired",
            True,
        ),
        (
            'print(\'{"version": 1, "success": true, "token_type": "x"}\')',
            "token_type",
            False,
        ),
        (
            'print(\'{"version": 1, "success": true, '
            '"token_type": "urn:ietf:params:oauth:token-type:jwt"}\')',
            "without its id_token",
            False,
        ),
        ("import sys; sys.stdout.write('x' * 2_000_000)", "more than 1048576 bytes", False),
    ],
    ids=[
        "non-zero exit",
        "timeout",
        "not JSON",
        "newer version",
        "no success",
        "success false",
        "failure without code",
        "expired",
        "unknown token type",
        "no token",
        "huge output",
    ],
)
def test_each_failure_of_the_program_is_a_clear_error_that_echoes_no_token(
    emulator: GoogleEmulator, tmp_path: Path, code: str, problem: str, retryable: bool
) -> None:
    credentials = emulator.executable_workload_identity(tmp_path)
    command = _program(tmp_path, code)
    source = WorkloadIdentity(_with_command(credentials, command, timeout_millis=5000))
    # The program gets the smaller of timeout_millis and the time left of the exchange: the
    # one that sleeps is stopped at 0.3 s, the others have time to start Python.
    timeout = 0.3 if problem == "timed out" else 5.0
    started = time.monotonic()
    with pytest.raises(TokenError) as info:
        Token.fetch(source, environ=_environ(), timeout=timeout)
    assert problem in str(info.value)
    assert info.value.retryable is retryable
    assert SECRET not in str(info.value)
    assert time.monotonic() - started < timeout + 3.0  # a timeout kills the program
    assert emulator.requests_to("sts") == []


def test_a_missing_program_is_a_clear_error(emulator: GoogleEmulator, tmp_path: Path) -> None:
    credentials = emulator.executable_workload_identity(tmp_path)
    source = WorkloadIdentity(_with_command(credentials, str(tmp_path / "no-such-program")))
    with pytest.raises(TokenError, match="could not be started"):
        Token.fetch(source, environ=_environ())


def test_the_command_runs_without_a_shell(emulator: GoogleEmulator, tmp_path: Path) -> None:
    marker = tmp_path / "shell-ran"
    credentials = emulator.executable_workload_identity(tmp_path)
    command = credentials["credential_source"]["executable"]["command"] + f" ; touch {marker}"
    # ";", "touch" and the path are arguments of the program, which ignores them.
    Token.fetch(WorkloadIdentity(_with_command(credentials, command)), environ=_environ())
    assert not marker.exists()


@pytest.mark.parametrize(
    ("executable", "field"),
    [
        ({}, "credentials.credential_source.executable.command"),
        ({"command": "'unbalanced"}, "credentials.credential_source.executable.command"),
        (
            {"command": "x", "timeout_millis": 121_000},
            "credentials.credential_source.executable.timeout_millis",
        ),
        (
            {"command": "x", "timeout_millis": "5000"},
            "credentials.credential_source.executable.timeout_millis",
        ),
        (
            {"command": "x", "interactive_timeout_millis": 1},
            "credentials.credential_source.executable.interactive_timeout_millis",
        ),
        (
            {"command": "x", "output_file": ""},
            "credentials.credential_source.executable.output_file",
        ),
        ({"command": "x", "shell": True}, "credentials.credential_source.executable"),
    ],
)
def test_a_malformed_executable_source_is_named(
    emulator: GoogleEmulator, tmp_path: Path, executable: dict[str, Any], field: str
) -> None:
    credentials = emulator.executable_workload_identity(tmp_path)
    credentials["credential_source"] = {"executable": executable}
    with pytest.raises(ConfigError) as info:
        WorkloadIdentity(credentials)
    assert info.value.field == field


def test_google_auth_accepts_the_emulator_and_gets_the_same_identity(
    emulator: GoogleEmulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Without impersonation: with it, google-auth runs the program from a copy of its
    # credentials that has no impersonation URL, so it passes neither
    # GOOGLE_EXTERNAL_ACCOUNT_IMPERSONATED_EMAIL nor GOOGLE_EXTERNAL_ACCOUNT_ID, which its own
    # documentation promises and goth_actors passes (the test above).
    monkeypatch.setenv("GOOGLE_EXTERNAL_ACCOUNT_ALLOW_EXECUTABLES", "1")
    credentials = emulator.executable_workload_identity(tmp_path)
    theirs = pluggable.Credentials.from_info(
        credentials, scopes=["https://www.googleapis.com/auth/cloud-platform"]
    )
    with auth_request() as request:
        theirs.refresh(request)
    theirs_saw = json.loads((tmp_path / "environment.json").read_text())
    ours = Token.fetch(WorkloadIdentity(credentials), environ=_environ())
    ours_saw = json.loads((tmp_path / "environment.json").read_text())
    assert identity(emulator, theirs.token) == identity(emulator, ours.token)
    assert ours_saw == theirs_saw  # the same environment, variable for variable


def test_timeout_millis_stops_a_program_before_the_exchange_deadline(
    emulator: GoogleEmulator, tmp_path: Path
) -> None:
    credentials = emulator.executable_workload_identity(tmp_path)
    command = _program(tmp_path, "import time; time.sleep(60)")
    # 5 s is the least timeout_millis google-auth (and we) accept; the exchange allows 30 s.
    source = WorkloadIdentity(_with_command(credentials, command, timeout_millis=5000))
    started = time.monotonic()
    with pytest.raises(TokenError, match="timed out") as info:
        Token.fetch(source, environ=_environ(), timeout=30.0)
    elapsed = time.monotonic() - started
    assert 4.9 < elapsed < 15.0, elapsed  # the program's own limit, not the exchange's
    assert info.value.retryable
    assert emulator.requests_to("sts") == []
