"""The examples of the guide "Deploying", run by the tests: tenants, a sidecar, a fork, shutdown.

Run it: ``uv run python docs/snippets/deploying.py`` (Google is emulated; POSIX only).
"""

from _google import EmulatedGoogle

google = EmulatedGoogle()

# --8<-- [start:tenants]
import goth_actors
from goth_actors import Supervisor

tenants = Supervisor.start([], max_restarts=1_000, max_seconds=1.0)  # each paces its restarts


def add_tenant(tenant_id: int, credentials: dict) -> None:
    """A server for one tenant's credentials, started now, under the tenants' supervisor."""
    source = goth_actors.source_from_credentials(credentials)
    goth_actors.start_link(name=("tenant", tenant_id), source=source, supervisor=tenants)


def remove_tenant(tenant_id: int) -> None:
    goth_actors.stop(("tenant", tenant_id))  # its name and token are gone with it


for tenant_id in (1, 2, 3):
    add_tenant(tenant_id, goth_actors.load_credentials("credentials.json"))
print(goth_actors.fetch(("tenant", 2)).expires_in() > 0)
remove_tenant(2)
print(goth_actors.whereis(("tenant", 2)), len(tenants.proxy().which_children().get(timeout=5.0)))
# --8<-- [end:tenants]

# --8<-- [start:sidecar]
import os
import signal
import subprocess

sidecar = subprocess.Popen(
    ["goth-actors", "serve", "--credentials", "credentials.json", "--port", "0"],
    stdout=subprocess.PIPE,
    text=True,
)
for line in sidecar.stdout:  # "  clients: GCE_METADATA_HOST=127.0.0.1:PORT GCE_METADATA_IP=..."
    if "GCE_METADATA_HOST=" in line:
        host = line.split("GCE_METADATA_HOST=")[1].split()[0]
        break

# In every process of the machine (any language): the metadata server's protocol.
os.environ["GCE_METADATA_HOST"] = os.environ["GCE_METADATA_IP"] = host
token = goth_actors.Token.fetch(goth_actors.Metadata())
print(token.expires_in() > 0)

sidecar.send_signal(signal.SIGTERM)  # finishes the answers in flight, then exits 0
print(sidecar.wait(timeout=15))
# --8<-- [end:sidecar]
os.environ["GCE_METADATA_HOST"] = os.environ["GCE_METADATA_IP"] = google.emulator.metadata_host

# --8<-- [start:fork]
goth_actors.start_link(name="api", source=goth_actors.default_source(), prefetch="sync")

pid = os.fork()
if pid == 0:  # the child: no thread of the parent's survived the fork
    token = goth_actors.fetch("api")  # the parent's token, copied, served without a request
    os._exit(0 if token.expires_in() > 0 else 1)
print(os.waitpid(pid, 0)[1] == 0)
# --8<-- [end:fork]

# --8<-- [start:shutdown]
with goth_actors.running(name="job", source=goth_actors.default_source()):
    print(goth_actors.fetch("job").expires_in() > 0)  # the server lives for the block
print(goth_actors.whereis("job"))

tenants.stop()  # your supervisor: its servers stop with it, newest first
goth_actors.shutdown()  # every server of the library's root, and the timer thread
# --8<-- [end:shutdown]
google.close()
