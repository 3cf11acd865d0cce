"""goth-actors serve: the metadata server's answers, one server per want, idle stops, health."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator

import pytest
import requests
from _helpers import wait_for
from _serve_helpers import ACCOUNT, FLAVOR, TOKEN, V1, serving

import goth_actors
from goth_actors import ConfigError, Metadata, RefreshToken, ServiceAccount, Token, subscribe
from goth_actors._cli import _parser
from goth_actors._cli._common import Fail
from goth_actors._serve import BOUNDS, InThread, MetadataServer, ServeOptions
from goth_actors._serve.httpd import HttpServer, Limits
from goth_actors._serve.request import Answer, Request
from goth_actors.testing import FakeTime, GoogleEmulator

CLOUD = "https://www.googleapis.com/auth/cloud-platform"


@pytest.fixture
def session() -> Iterator[requests.Session]:
    with requests.Session() as s:
        s.headers.update(FLAVOR)
        yield s


@pytest.fixture
def timed(fake_time: FakeTime) -> Iterator[GoogleEmulator]:
    """An emulator on the test's fake time (so JWTs and expiries agree with the servers)."""
    with GoogleEmulator(time=fake_time) as emu:
        yield emu


def test_a_token_answer_is_googles_shape_and_its_expires_in_counts_down(
    timed: GoogleEmulator, fake_time: FakeTime, session: requests.Session
) -> None:
    with serving(ServiceAccount(timed.service_account()), time=fake_time) as serve:
        url = serve.server.url + TOKEN
        wait_for(lambda: session.get(url).status_code == 200)
        first = session.get(url)
        assert first.headers["Metadata-Flavor"] == "Google"
        assert first.headers["Content-Type"] == "application/json"
        body = first.json()
        assert list(body) == ["access_token", "expires_in", "token_type"]
        assert body["token_type"] == "Bearer"
        assert timed.token_info(body["access_token"]) is not None
        assert 3590 <= body["expires_in"] <= 3599
        fake_time.advance(100.0)
        later = session.get(url).json()
        assert later["access_token"] == body["access_token"]
        assert later["expires_in"] == body["expires_in"] - 100
    assert timed.request_count("token") == 1


def test_the_paths_clients_probe_answer_as_googles_do(
    emulator: GoogleEmulator, session: requests.Session
) -> None:
    key = emulator.service_account()
    email = key["client_email"]
    with serving(ServiceAccount(key)) as serve:
        base = serve.server.url

        def text(path: str) -> str:
            answer = session.get(base + path, allow_redirects=False)
            assert answer.status_code == 200, (path, answer.status_code)
            assert answer.headers["Metadata-Flavor"] == "Google"
            return answer.text

        assert requests.get(base + "/").text == "computeMetadata/\n"  # no header needed
        assert text("/computeMetadata/") == "v1/\n"
        assert text(V1) == "instance/\nproject/\nuniverse/\n"
        assert text(V1 + "instance/") == "service-accounts/\n"
        assert text(V1 + "instance/service-accounts/") == f"default/\n{email}/\n"
        assert text(ACCOUNT) == "aliases\nemail\nidentity\nscopes\ntoken\n"
        assert text(ACCOUNT + "email") == email
        assert text(V1 + f"instance/service-accounts/{email}/email") == email
        assert text(ACCOUNT + "scopes") == f"{CLOUD}\n"
        assert text(ACCOUNT + "aliases") == "default\n"
        assert text(V1 + "project/project-id") == key["project_id"]
        assert text(V1 + "universe/universe-domain") == "googleapis.com"
        assert session.get(base + V1 + "project/numeric-project-id").status_code == 404
        info = session.get(base + ACCOUNT + "?recursive=true").json()
        assert info == {"aliases": ["default"], "email": email, "scopes": [CLOUD]}
        everything = session.get(base + V1 + "?recursive=true").json()
        assert everything["project"] == {"projectId": key["project_id"]}
        assert everything["instance"]["serviceAccounts"]["default"] == info
        moved = session.get(base + ACCOUNT[:-1], allow_redirects=False)
        assert moved.status_code == 301
        assert moved.headers["Location"] == ACCOUNT
        assert session.get(base + V1 + "instance/hostname").status_code == 404


def test_each_distinct_scope_set_gets_one_server_and_asking_again_costs_nothing(
    emulator: GoogleEmulator, session: requests.Session
) -> None:
    with serving(ServiceAccount(emulator.service_account())) as serve:
        url = serve.server.url + TOKEN
        first = session.get(url, params={"scopes": "a,b"}).json()
        again = session.get(url, params={"scopes": "b,a,a"}).json()
        default = session.get(url, params={"scopes": CLOUD}).json()
        assert first["access_token"] == again["access_token"]
        assert emulator.token_info(first["access_token"])["scope"] == "a b"
        assert emulator.token_info(default["access_token"])["scope"] == CLOUD
        assert emulator.request_count("token") == 2  # the default set, and {a, b}
        kinds = sorted(tuple(s.get("scopes", ())) for s in serve.server.status()["servers"])
        assert kinds == [("a", "b"), (CLOUD,)]


def test_an_id_token_is_served_per_audience_as_text(
    emulator: GoogleEmulator, session: requests.Session
) -> None:
    with serving(ServiceAccount(emulator.service_account())) as serve:
        url = serve.server.url + ACCOUNT + "identity"
        first = session.get(url, params={"audience": "https://a.example", "format": "full"})
        assert first.status_code == 200
        assert first.headers["Content-Type"] == "application/text"
        second = session.get(url, params={"audience": "https://a.example"})
        other = session.get(url, params={"audience": "https://b.example"})
        assert first.text == second.text != other.text
        claims = Token.fetch(Metadata(url=serve.server.url, audience="https://b.example"))
        assert claims.scope == "https://b.example"
        assert session.get(url).status_code == 400  # no audience


def test_our_own_metadata_source_gets_its_tokens_from_serve(emulator: GoogleEmulator) -> None:
    with serving(ServiceAccount(emulator.service_account())) as serve:
        token = Token.fetch(Metadata(url=serve.server.url))
        scoped = Token.fetch(Metadata(url=serve.server.url, scopes=("x", "y")))
    assert emulator.token_info(token.token) is not None
    assert emulator.token_info(scoped.token)["scope"] == "x y"
    assert 3500 < token.expires_in() <= 3599


def test_a_server_started_on_demand_stops_when_idle_and_starts_again_when_asked(
    timed: GoogleEmulator, fake_time: FakeTime, session: requests.Session
) -> None:
    source = ServiceAccount(timed.service_account())
    with serving(source, time=fake_time, idle=60.0) as serve:
        url = serve.server.url + TOKEN
        assert session.get(url, params={"scopes": "a"}).status_code == 200
        fake_time.advance(30.0)
        assert serve.call(serve.server.pool.stop_idle) == []
        fake_time.advance(31.0)
        stopped = serve.call(serve.server.pool.stop_idle)
        assert [want.scopes for want in stopped] == [("a",)]
        assert [s["scopes"] for s in serve.server.status()["servers"]] == [[CLOUD]]
        assert session.get(url, params={"scopes": "a"}).status_code == 200
        assert len(serve.server.status()["servers"]) == 2
    assert timed.request_count("token") == 3


def test_healthz_says_ready_once_every_configured_server_holds_a_token(
    timed: GoogleEmulator, fake_time: FakeTime
) -> None:
    timed.fail_next(1, 503, endpoint="token")
    source = ServiceAccount(timed.service_account())
    retry_armed = threading.Event()
    unsubscribe = subscribe(lambda e: e.kind == "retry_scheduled" and retry_armed.set())
    try:
        with serving(source, time=fake_time, audiences=("https://a.example",)) as serve:
            health = serve.server.url + "/healthz"
            timed.wait_for_requests(2, "token")
            assert requests.get(health).status_code == 503
            assert retry_armed.wait(5.0)  # on the fake clock, before the clock moves
            fake_time.advance(60.0)  # the failed one's retry
            wait_for(lambda: requests.get(health).status_code == 200)
            assert requests.get(health).text == "ok\n"
    finally:
        unsubscribe()


def test_the_status_page_shows_servers_and_counts_and_never_a_token(
    emulator: GoogleEmulator, session: requests.Session
) -> None:
    key = emulator.service_account()
    with serving(ServiceAccount(key)) as serve:
        token = session.get(serve.server.url + TOKEN).json()["access_token"]
        session.get(serve.server.url + ACCOUNT + "identity", params={"audience": "https://x"})
        requests.get(serve.server.url + TOKEN)  # refused: no Metadata-Flavor
        page = session.get(serve.server.url + "/status")
        assert requests.get(serve.server.url + "/status").status_code == 403
    status = page.json()
    assert status["ready"] is True
    assert status["email"] == key["client_email"]
    assert status["requests"]["flavor"] == 1
    assert {s["kind"] for s in status["servers"]} == {"token", "identity"}
    assert all(s["state"] == "ok" and s["has_valid_token"] for s in status["servers"])
    assert token not in page.text
    assert key["private_key"].splitlines()[1] not in page.text


def test_user_credentials_serve_their_own_scopes_and_no_id_tokens(
    emulator: GoogleEmulator, session: requests.Session
) -> None:
    with serving(RefreshToken(emulator.authorized_user())) as serve:
        url = serve.server.url + TOKEN
        first = session.get(url, params={"scopes": "a"}).json()["access_token"]
        assert session.get(url).json()["access_token"] == first
        assert session.get(serve.server.url + ACCOUNT + "email").text == "default"
        refused = session.get(serve.server.url + ACCOUNT + "identity", params={"audience": "x"})
        assert refused.status_code == 404
        assert "RefreshToken" in refused.text
    assert emulator.request_count("token") == 1


def test_an_upstream_metadata_server_is_served_through_with_its_scopes_and_project(
    emulator: GoogleEmulator, session: requests.Session
) -> None:
    emulator.metadata_scopes = ["s1", "s2"]
    with serving(Metadata(url=emulator.metadata_url)) as serve:
        base = serve.server.url
        info = session.get(base + ACCOUNT + "?recursive=true").json()
        assert info["email"] == emulator.metadata_email
        # What google-auth does next: ask for the scopes it was told, as ?scopes=.
        token = session.get(base + TOKEN, params={"scopes": ",".join(info["scopes"])}).json()
        assert emulator.token_info(token["access_token"]) is not None
        assert session.get(base + V1 + "project/project-id").text == emulator.project_id
        number = session.get(base + V1 + "project/numeric-project-id").text
        assert number.isdigit()
    assert (
        emulator.request_count("/computeMetadata/v1/instance/service-accounts/default/token") == 1
    )


def test_an_upstream_failure_is_a_503_naming_it_and_no_secret(
    emulator: GoogleEmulator, session: requests.Session
) -> None:
    key = emulator.service_account()
    with serving(ServiceAccount(key), fetch_timeout=2.0) as serve:
        emulator.fail_next(100, 503, endpoint="token")
        answer = session.get(serve.server.url + TOKEN, params={"scopes": "z"})
    assert answer.status_code == 503
    assert answer.text.startswith("no token")
    assert key["private_key"].splitlines()[1] not in answer.text


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("keepalive_timeout", 0),
        ("header_timeout", 0.0),
        ("idle", 0),
        ("fetch_timeout", float("inf")),
        ("grace", -1),
        ("grace", float("nan")),
        ("max_connections", 0),
        ("max_servers", 1.5),
        ("port", 70000),
        ("port", True),
        ("keepalive_timeout", "60"),
        ("audiences", ["a"]),
        ("host", ""),
    ],
)
def test_serve_options_out_of_bounds_are_refused_naming_the_field(
    field: str, value: object
) -> None:
    with pytest.raises(ConfigError) as caught:
        ServeOptions(**{field: value})  # type: ignore[arg-type]
    assert caught.value.field == field


@pytest.mark.parametrize("name", ["idle", "max_servers", "max_connections"])
def test_the_command_line_takes_the_bounds_of_serve_options(name: str) -> None:
    bound, option = BOUNDS[name], "--" + name.replace("_", "-")
    high = f"{bound.high:g}"
    assert getattr(_parser().parse_args(["serve", option, high]), name) == bound.high
    with pytest.raises(Fail, match=option):
        _parser().parse_args(["serve", option, str(int(bound.high) + 1)])


def test_serve_refuses_an_upstream_metadata_server_that_is_itself() -> None:
    with pytest.raises(ValueError, match="is this server"):
        MetadataServer(Metadata(url="http://127.0.0.1:18123"), ServeOptions(port=18123))


def test_a_graceful_shutdown_finishes_the_answers_in_flight(
    emulator: GoogleEmulator,
) -> None:
    serve = InThread(ServiceAccount(emulator.service_account()), ServeOptions(port=0)).start()
    try:
        emulator.wait_for_requests(1, "token")
        emulator.delay(0.3)
        answers: list[requests.Response] = []

        def ask() -> None:
            answers.append(requests.get(serve.server.url + TOKEN + "?scopes=q", headers=FLAVOR))

        caller = threading.Thread(target=ask)
        caller.start()
        emulator.wait_for_requests(2, "token")  # the answer is in flight
    finally:
        serve.close()
        goth_actors.shutdown()  # the shared HTTP client, so the emulator closes at once
    caller.join()
    assert answers[0].status_code == 200
    assert answers[0].headers["Connection"] == "close"
    assert json.loads(answers[0].text)["access_token"]
    with pytest.raises(requests.ConnectionError):
        requests.get(serve.server.url + "/", timeout=1.0)


def test_an_answer_still_awaited_after_the_grace_is_a_503_not_a_reset() -> None:
    async def main() -> bytes:
        called, never = asyncio.Event(), asyncio.Event()

        async def stuck(request: Request) -> Answer:
            called.set()
            await never.wait()
            raise AssertionError("never answered")

        http = HttpServer(stuck, limits=Limits())
        host, port = await http.start("127.0.0.1", 0)
        reader, writer = await asyncio.open_connection(host, port)
        writer.write(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        await called.wait()
        await http.shutdown(grace=0.05)
        answer = await reader.read()
        writer.close()
        assert http.counts["shutdown"] == 1
        return answer

    answer = asyncio.run(main())
    assert answer.startswith(b"HTTP/1.1 503 Service Unavailable\r\n")
    assert b"Connection: close\r\n" in answer
    assert answer.endswith(b"\r\n\r\nShutting down\n")
