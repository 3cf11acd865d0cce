"""The examples of the guide "Coming from Goth" (docs/guides/coming-from-goth.md), run by the tests.

Run it: ``uv run python docs/snippets/coming_from_goth.py`` (Google is emulated).
"""

from _google import EmulatedGoogle

google = EmulatedGoogle()

# --8<-- [start:start_link]
import goth_actors

credentials = goth_actors.load_credentials("credentials.json")
goth_actors.start_link(name="my_app", source=goth_actors.ServiceAccount(credentials))

token = goth_actors.fetch("my_app")  # Goth.fetch!(MyApp.Goth)
print(token)  # Token(type='Bearer', scope=..., expires=...): the repr never shows the token
headers = {"Authorization": f"{token.type} {token.token}"}
# --8<-- [end:start_link]

# --8<-- [start:errors]
try:
    goth_actors.fetch("no_such_server")  # Goth: exit {:noproc, ...}
except goth_actors.ServerNotFound as error:
    print(f"{type(error).__name__}: {error}")
# --8<-- [end:errors]

# --8<-- [start:tree]
from goth_actors import Supervisor, child_spec

PUBSUB = "https://www.googleapis.com/auth/pubsub"
supervisor = Supervisor.start(
    [
        child_spec(name="pubsub", source=goth_actors.ServiceAccount(credentials, scopes=[PUBSUB])),
        child_spec(name="on_gce", source=goth_actors.Metadata()),
    ],
    strategy="one_for_one",
)
print([child.id for child in supervisor.proxy().which_children().get()])
print(goth_actors.fetch("pubsub").scope)
# --8<-- [end:tree]

# --8<-- [start:sources]
user = goth_actors.RefreshToken(goth_actors.load_credentials("authorized_user.json"))
on_gce = goth_actors.Metadata(account="default")
delegated = goth_actors.ServiceAccount(credentials, sub="someone@example.com", scopes=[PUBSUB])
id_token = goth_actors.ServiceAccount(credentials, target_audience="https://my-app.example.com")
adc = goth_actors.default_source()  # {:default, []}, resolved now, not at each fetch

for source in (user, on_gce, delegated, id_token, adc):
    print(type(source).__name__, goth_actors.Token.fetch(source))  # Goth.Token.fetch/1
# --8<-- [end:sources]

# --8<-- [start:options]
goth_actors.start_link(
    name="patient",
    source=user,
    refresh_before=300.0,  # Goth's default, in seconds
    max_retries=None,  # Goth's max_retries: :infinity
    retry_delay=lambda retry: min(30.0, 2.0**retry),  # Goth 1.3's default delays, in seconds
    prefetch="sync",  # start_link returns after the first attempt, as prefetch: :sync
)
# --8<-- [end:options]

# --8<-- [start:http_client]
import requests

session = requests.Session()


def my_client(*, method, url, headers, body, timeout):
    """Goth's http_client fun: one request in, status, headers and body out."""
    response = session.request(method, url, headers=headers, data=body, timeout=timeout)
    return goth_actors.HttpResponse(response.status_code, response.headers, response.content)


goth_actors.start_link(name="custom", source=on_gce, http_client=my_client, prefetch="sync")
print(goth_actors.fetch("custom").expires_in() > 0)
# --8<-- [end:http_client]

# --8<-- [start:registry]
ref = goth_actors.whereis("my_app")  # the server's actor, as Registry.lookup(Goth.Registry, ...)
print(ref is not None, goth_actors.cached("my_app") is not None)
print(goth_actors.status("my_app").state)  # "ok": Goth has no status
goth_actors.stop("my_app")
# --8<-- [end:registry]

# --8<-- [start:teardown]
supervisor.stop()
goth_actors.shutdown()
session.close()
# --8<-- [end:teardown]
google.close()
