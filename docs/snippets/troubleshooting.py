"""The examples of the guide "Troubleshooting", run by the tests.

Run it: ``uv run python docs/snippets/troubleshooting.py`` (Google is emulated).
"""

import sys
import threading

from _google import EmulatedGoogle

google = EmulatedGoogle()
emulator = google.emulator

# --8<-- [start:logging]
import logging

logging.basicConfig(
    stream=sys.stdout, format="%(levelname)s %(name)s: %(message)s", level=logging.WARNING
)
logging.getLogger("goth_actors").setLevel(logging.INFO)  # retries too; DEBUG: every attempt
logging.getLogger("pykka").setLevel(logging.CRITICAL)  # Pykka prints each crash's traceback
# --8<-- [end:logging]

# --8<-- [start:events]
import goth_actors

recovered = threading.Event()


def on_event(event: goth_actors.Event) -> None:
    if event.kind in ("failure", "crash", "restart"):
        print(f"event: {event.kind} of {event.name!r}, attempt {event.attempt}: {event.error}")
    if event.kind == "success" and event.name == "app":
        recovered.set()


unsubscribe = goth_actors.subscribe(on_event)
source = goth_actors.ServiceAccount(goth_actors.load_credentials("credentials.json"))
emulator.fail_next(2, 503, retry_after=0.1)  # the next two token requests: 503
goth_actors.start_link(name="app", source=source, backoff_min=0.05)
recovered.wait(timeout=10.0)  # the third attempt gets the token
print(goth_actors.status("app"))
# --8<-- [end:events]

# --8<-- [start:errors]
user = goth_actors.RefreshToken(goth_actors.load_credentials("authorized_user.json"))
emulator.revoke(user.credentials["client_id"])  # as if the user revoked the grant
goth_actors.start_link(name="user", source=user, prefetch="sync", max_retries=None)
try:
    goth_actors.fetch("user", timeout=2.0)
except goth_actors.TokenEndpointError as error:  # the endpoint answered, not with a token
    print(error.status, error.error, error.retryable)
except goth_actors.TransportError as error:  # no answer: refused, reset, timeout, DNS
    print("unreachable:", error)
except goth_actors.FetchTimeout:  # no token within the caller's timeout
    print("slow:", goth_actors.status("user"))
except goth_actors.ServerNotFound:  # no server under that name (or lost to os.fork())
    print("no server")
goth_actors.stop("user")
# --8<-- [end:errors]

# --8<-- [start:crash]
goth_actors.start_link(
    name="brittle", source=source, prefetch="sync", max_retries=0, refresh_after=0.5
)
before = goth_actors.fetch("brittle")
emulator.fail_next(1, 500)  # its refresh, half a second later, fails: it crashes
while goth_actors.status("brittle").restarts == 0:
    recovered.wait(0.01)
print(goth_actors.fetch("brittle").token == before.token)  # restarted, the token kept
# --8<-- [end:crash]

unsubscribe()
goth_actors.shutdown()
google.close()
