"""The examples of the guide "Coming from google-auth", run by the tests.

Run it: ``uv run python docs/snippets/coming_from_google_auth.py`` (Google is emulated).
"""

from _google import EmulatedGoogle

google = EmulatedGoogle()
API_URL = google.api_url

# --8<-- [start:default]
import goth_actors

# credentials, project = google.auth.default(scopes=[...])
source = goth_actors.default_source(scopes=["https://www.googleapis.com/auth/cloud-platform"])
project = goth_actors.project_id()
goth_actors.start_link(name="app", source=source)
print(type(source).__name__, project)
# --8<-- [end:default]

# --8<-- [start:authorized_session]
from google.auth.transport.requests import AuthorizedSession

from goth_actors.integrations.google_auth import Credentials

# AuthorizedSession(credentials), and any google-cloud-* client's credentials=...
credentials = Credentials("app")
with AuthorizedSession(credentials) as session:
    print(session.get(API_URL, timeout=10).json()["email"])
# --8<-- [end:authorized_session]

# --8<-- [start:requests]
import requests

from goth_actors.integrations.requests import GothAuth

with requests.Session() as session:
    session.auth = GothAuth("app")  # the token on every request; one shared refresh on a 401
    print(session.get(API_URL, timeout=10).status_code)
# --8<-- [end:requests]

# --8<-- [start:id_token]
# google.oauth2.id_token.fetch_id_token(request, "https://my-service.run.app")
goth_actors.start_link(
    name="my-service",
    source=goth_actors.default_source(audience="https://my-service.run.app"),
)
id_token = goth_actors.fetch("my-service")
print(id_token.scope)  # an ID token's scope is its audience
# --8<-- [end:id_token]

# --8<-- [start:impersonation]
# impersonated_credentials.Credentials(source_credentials=..., target_principal=...)
# or gcloud auth application-default login --impersonate-service-account=deployer@...
deployer = goth_actors.source_from_credentials(goth_actors.load_credentials("impersonated.json"))
goth_actors.start_link(name="deployer", source=deployer)
print(type(deployer).__name__, goth_actors.fetch("deployer").expires_in() > 0)
# --8<-- [end:impersonation]

# --8<-- [start:single_flight]
from concurrent.futures import ThreadPoolExecutor

attempts = []
unsubscribe = goth_actors.subscribe(
    lambda event: attempts.append(event) if event.kind == "attempt" else None
)
goth_actors.start_link(name="cold", source=source)  # no token yet
with ThreadPoolExecutor(max_workers=50) as pool:
    tokens = list(pool.map(lambda _: goth_actors.fetch("cold"), range(200)))
unsubscribe()
print(f"{len(tokens)} callers, {len({t.token for t in tokens})} token, {len(attempts)} request")
# --8<-- [end:single_flight]

# --8<-- [start:teardown]
goth_actors.shutdown()
# --8<-- [end:teardown]
google.close()
