"""``os.fork()``: what a forked child does with the parent's servers, supervisors and actors.

A forked child has none of the parent's threads: no actor, supervisor or timer. Servers started
by ``start_link`` under the library's supervisor are started again in the child the first time
``fetch`` needs them (their cached token, still valid, is served meanwhile). The others were in
supervisors of the user's, which did not survive the fork: ``fetch`` says so instead of waiting
for an actor that will never answer. ``goth_actors.otp`` marks every actor ref of the parent
dead (an ``ask`` fails at once with ``ActorDeadError``) and makes every lock of the runtime
anew; this module does the same for the server layer's own state.
"""

from __future__ import annotations

import os

from goth_actors import _table
from goth_actors._root import root

__all__: list[str] = []


def _after_fork_in_child() -> None:
    root.after_fork_in_child(list(_table.servers))


os.register_at_fork(after_in_child=_after_fork_in_child)
