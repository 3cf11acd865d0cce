"""``goth-actors serve``: one supervised token cache for every process on a machine.

Token servers behind an HTTP endpoint that speaks the GCE metadata server's protocol, so that
google-auth, Go, Java and Node clients (and `goth_actors.Metadata`) find it through
``GCE_METADATA_HOST``. One server per distinct scope set or audience, started on demand under
one supervisor and stopped when idle; tokens in memory only.

An edge, like the command line: it uses the public names of ``goth_actors`` and
``goth_actors.otp`` only. Modules, bottom up:

- ``runtime``: what serve needs from the runtime: its servers' supervisor, a non-blocking
  fetch (``goth_actors.fetch_async``), who the tokens belong to;
- ``sources``: what a client wants, and the upstream source for it;
- ``pool``: the token servers, by want: the hot path, single waits, idle stops;
- ``request``: the grammar of an accepted request head, and the answer's shape;
- ``httpd``: a strict, bounded HTTP/1.1 server on asyncio's protocols;
- ``metadata``: the metadata server's paths, answers and refusals;
- ``options``: `ServeOptions`, and the bounds of its numbers (the command line's too);
- ``server``: all of it as one `MetadataServer`, and `InThread`.
"""

from goth_actors._serve.options import BOUNDS, ServeOptions
from goth_actors._serve.runtime import Identity, describe_identity
from goth_actors._serve.server import InThread, MetadataServer, SupervisorGaveUp

__all__ = [
    "BOUNDS",
    "Identity",
    "InThread",
    "MetadataServer",
    "ServeOptions",
    "SupervisorGaveUp",
    "describe_identity",
]
