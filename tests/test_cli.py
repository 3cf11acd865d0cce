"""The goth-actors command line: token and emulator, and every mistake a newcomer makes with it."""

from __future__ import annotations

import argparse
import json
import os
import re
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import jwt
import pytest

from goth_actors import __version__
from goth_actors import _cli as cli
from goth_actors._cli import main
from goth_actors._cli._common import ADC_HELP
from goth_actors._cli.emulator import write_private
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


def test_token_with_an_audience_and_impersonated_credentials_prints_the_targets_id_token(
    emulator: GoogleEmulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = "cli-target@emulator-project.iam.gserviceaccount.com"
    info = emulator.impersonated_service_account(emulator.authorized_user(), target)
    path = _write(tmp_path / "adc.json", info)
    assert main(["token", "--credentials", str(path), "--audience", "https://x.example"]) == 0
    claims = jwt.decode(capsys.readouterr().out.strip(), options={"verify_signature": False})
    assert (claims["aud"], claims["email"]) == ("https://x.example", target)


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


@pytest.mark.slow
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


@pytest.mark.slow
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
            str(tmp_path / "creds"),
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
        key = tmp_path / "creds" / "service_account.json"
        for written in (tmp_path / "creds").iterdir():
            assert oct(written.stat().st_mode & 0o777) == "0o600"
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
    assert not (tmp_path / "creds").exists()  # the keys die with the emulator, and the folder


# --- every mistake: one line on stderr, no traceback, the documented exit status --------------


@pytest.fixture
def no_credentials(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No ADC anywhere: no variable, an empty gcloud folder, a metadata server that refuses."""
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    monkeypatch.delenv("GOOGLE_APPLICATION_CREDENTIALS", raising=False)
    monkeypatch.setenv("CLOUDSDK_CONFIG", str(tmp_path / "gcloud"))
    monkeypatch.setenv("GCE_METADATA_HOST", f"127.0.0.1:{port}")


@pytest.fixture
def busy_port() -> Iterator[int]:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        yield listener.getsockname()[1]


def _fails(argv: list[str], status: int, capsys: pytest.CaptureFixture[str], *needles: str) -> str:
    """Runs the command; checks its exit status, an empty stdout and one line on stderr."""
    assert main(argv) == status
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.count("\n") == 1, captured.err
    assert captured.err.startswith("goth-actors")
    assert "Traceback" not in captured.err
    for needle in needles:
        assert needle in captured.err, captured.err
    return captured.err


@pytest.mark.parametrize(
    ("argv", "needles"),
    [
        ([], ["COMMAND", "usage: goth-actors"]),
        (["bogus"], ["invalid choice: 'bogus'"]),
        (["token", "--metadata", "--credentials", "key.json"], ["--metadata and --credentials"]),
        (["token", "--metadata", "--scope", "s", "--audience", "a"], ["--scope and --audience"]),
        (["token", "--timeout", "inf"], ["--timeout", "not 'inf'"]),
        (["token", "--timeout", "nan"], ["--timeout", "not 'nan'"]),
        (["token", "--timeout", "0"], ["--timeout", "above 0"]),
        (["token", "--timeout", "ten"], ["--timeout", "not 'ten'"]),
        (["demo", "--duration", "nan"], ["--duration", "from 5 to 3600"]),
        (["demo", "--duration", "inf"], ["--duration"]),
        (["demo", "--duration", "0"], ["--duration"]),
        (["demo", "--duration", "-3"], ["--duration"]),
        (["demo", "--duration", "3601"], ["--duration"]),
        (["demo", "--bogus"], ["--bogus", "usage: goth-actors demo [-h] [--duration SECONDS]"]),
        (["emulator", "--port", "70000"], ["--port", "65535"]),
        (["emulator", "--port", "-1"], ["--port"]),
        (["emulator", "--port", "http"], ["--port"]),
        (["token", "--scope", "a b"], ["--scope", "one OAuth scope"]),
        (["token", "--scope", ""], ["--scope", "not empty"]),
        (["token", "--audience", ""], ["--audience", "not empty"]),
        (["serve", "--scope", "bad scope"], ["--scope", "one OAuth scope"]),
        (["serve", "--scope", ""], ["--scope"]),
        (["serve", "--audience", ""], ["--audience", "not empty"]),
        (["serve", "--audience", "two words"], ["--audience", "without spaces"]),
        (["serve", "--allow-host", "http://x"], ["--allow-host", "host name"]),
        (["serve", "--allow-host", "a..b"], ["--allow-host"]),
        (["serve", "--idle", "86401"], ["--idle", "at most 86400"]),
    ],
)
def test_a_usage_error_is_one_line_with_the_subcommands_usage_and_status_2(
    argv: list[str], needles: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    message = _fails(argv, 2, capsys, "(usage: goth-actors", *needles)
    command = argv[0] if argv and argv[0] in ("token", "demo", "emulator", "serve") else ""
    assert message.startswith(f"goth-actors {command}".strip() + ":")


def test_token_without_any_credentials_says_where_it_looked_and_how_to_provide_them(
    no_credentials: None, capsys: pytest.CaptureFixture[str]
) -> None:
    message = _fails(
        ["token"],
        1,
        capsys,
        "Your default credentials were not found",
        "GOOGLE_APPLICATION_CREDENTIALS",
        "application_default_credentials.json",
        "metadata server at 127.0.0.1:",
        "gcloud auth application-default login",
        "--credentials FILE",
    )
    assert message.rstrip().endswith(ADC_HELP)  # whole, never cut
    assert "…" not in message


def test_token_with_unreachable_metadata_keeps_its_message_whole_words(
    no_credentials: None, capsys: pytest.CaptureFixture[str]
) -> None:
    message = _fails(["token", "--metadata", "--timeout", "2"], 1, capsys, "refused")
    for word in message.split():
        if word.startswith("http"):
            assert "/computeMetadata/v1/" in word  # URLs are whole
    assert len(message) < 600


def test_token_warns_that_a_scope_is_ignored_for_user_credentials(
    emulator: GoogleEmulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _write(tmp_path / "user.json", emulator.authorized_user())
    assert main(["token", "--credentials", str(path), "--scope", "x"]) == 0
    captured = capsys.readouterr()
    assert emulator.token_info(captured.out.strip()) is not None
    assert captured.err == (
        "goth-actors token: warning: --scope is ignored: user credentials carry the scopes "
        "the user granted\n"
    )


def test_the_emulator_on_a_port_in_use_says_so_and_starts_nothing(
    busy_port: int, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "creds"
    argv = ["emulator", "--port", str(busy_port), "--write-credentials", str(folder)]
    _fails(argv, 1, capsys, f"--port {busy_port}", "already in use", "--port 0")
    assert not folder.exists()  # nothing half-done


@pytest.mark.parametrize(
    ("host", "needle"),
    [("192.0.2.1", "no such address"), ("no-such-host.invalid", "cannot resolve")],
)
def test_the_emulator_names_a_host_it_cannot_listen_on(
    host: str, needle: str, capsys: pytest.CaptureFixture[str]
) -> None:
    _fails(["emulator", "--host", host, "--port", "0"], 1, capsys, f"--host {host}", needle)


def test_the_emulator_refuses_to_write_credentials_over_a_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    afile = tmp_path / "creds"
    afile.write_text("mine")
    argv = ["emulator", "--port", "0", "--write-credentials", str(afile)]
    _fails(argv, 1, capsys, "--write-credentials", "is a file")
    assert afile.read_text() == "mine"


def test_the_emulator_never_overwrites_a_key_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "service_account.json").write_text("a real key")
    argv = ["emulator", "--port", "0", "--write-credentials", str(tmp_path)]
    _fails(argv, 1, capsys, "service_account.json already exists", "remove it")
    assert (tmp_path / "service_account.json").read_text() == "a real key"
    assert not (tmp_path / "authorized_user.json").exists()


def test_key_files_are_created_private_without_a_chmod_afterwards(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_chmod(*args: object, **kwargs: object) -> None:
        raise AssertionError("created readable, then chmod: a window where others can read")

    monkeypatch.setattr(os, "chmod", no_chmod)
    monkeypatch.setattr(Path, "chmod", no_chmod)
    previous = os.umask(0)
    try:
        path = write_private(tmp_path / "key.json", {"private_key": "x"})
    finally:
        os.umask(previous)
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    assert json.loads(path.read_text()) == {"private_key": "x"}


def test_version_and_help_exit_0(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--version"]) == 0
    assert capsys.readouterr().out == f"goth-actors {__version__}\n"
    assert main(["--help"]) == 0
    assert "2 a usage error" in capsys.readouterr().out


# --- README's synopsis is the command line's -------------------------------------------------

_README = Path(__file__).parent.parent / "README.md"
_OPTION = re.compile(r"(--[a-z][a-z-]*)(?: ([^\s\]|]+))?(\]\.\.\.)?")


def _readme_synopsis() -> dict[str, str]:
    """README's "Command line" block: each subcommand's line, by subcommand ("" for the top)."""
    text = _README.read_text()
    block = text.split("## Command line", 1)[1].split("```text\n", 1)[1].split("```", 1)[0]
    lines: dict[str, str] = {}
    for line in block.splitlines():
        words = line.split(maxsplit=2)
        assert words[0] == "goth-actors", line
        command = "" if words[1].startswith("-") else words[1]
        lines[command] = lines.get(command, "") + " " + line.removeprefix("goth-actors")
    return lines


def _parsers() -> dict[str, argparse.ArgumentParser]:
    top = cli._parser()
    (commands,) = (a for a in top._actions if isinstance(a, argparse._SubParsersAction))
    return {"": top, **commands.choices}


@pytest.mark.parametrize("command", ["", "token", "demo", "emulator", "serve"])
def test_the_readmes_synopsis_lists_each_option_of_each_command_as_argparse_has_it(
    command: str,
) -> None:
    synopsis = _readme_synopsis()
    assert set(synopsis) == set(_parsers()), "a subcommand missing from README's synopsis"
    shown = {
        name: (value, bool(repeat))
        for name, value, repeat in _OPTION.findall(synopsis[command])
        if command == "" or name != "--version"
    }
    real: dict[str, tuple[str, bool]] = {}
    for action in _parsers()[command]._actions:
        options = [o for o in action.option_strings if o.startswith("--") and o != "--help"]
        if not options or isinstance(action, argparse._SubParsersAction):
            continue
        takes_value = action.nargs != 0
        repeats = isinstance(action, argparse._AppendAction)
        real[options[0]] = (action.metavar or action.dest.upper() if takes_value else "", repeats)
        if options[0] in shown and takes_value:
            value = shown[options[0]][0]
            # README shows a metavar, or the real default in its place ("--port 8090").
            assert value in (real[options[0]][0], str(action.default)), (options[0], value)
            real[options[0]] = (value, repeats)
    assert shown == real
