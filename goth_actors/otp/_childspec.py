"""``ChildSpec``: how a supervisor starts, restarts and stops one child (OTP's child spec)."""

from __future__ import annotations

import builtins
import difflib
import functools
import inspect
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any, Final, Literal, get_args

import pykka

from goth_actors._base import MAX_SECONDS, ConfigError, check_seconds
from goth_actors.otp._hooks import hooked_class
from goth_actors.otp._link import Shutdown

__all__ = [
    "DEFAULT_WORKER_SHUTDOWN",
    "ChildSpec",
    "ChildType",
    "Restart",
    "RestartDelay",
    "Shutdown",
]

Restart = Literal["permanent", "transient", "temporary"]
"""When a child is restarted: always, only after a crash, or never."""

ChildType = Literal["worker", "supervisor"]
"""Whether a child is a worker or itself a supervisor."""

DEFAULT_WORKER_SHUTDOWN: Final = 5.0
"""A worker's default ``shutdown``, in seconds (OTP's 5000 ms)."""

RestartDelay = float | Callable[[int], float] | None
"""Seconds before a failed restart is retried: a number, ``delay(failures)``, or the default."""

_OPTIONS: Final = ("id", "restart", "shutdown", "significant", "restart_delay", "on_final_exit")


class _Default:
    def __repr__(self) -> str:
        return "<default>"


_DEFAULT: Final = _Default()


class _ActorStarter:
    """The ``start`` function of a spec built by `ChildSpec.for_actor`."""

    def __init__(
        self,
        actor_class: type[pykka.ThreadingActor],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
    ) -> None:
        self.actor_class = actor_class
        self.args = args
        self.kwargs = kwargs
        self._start_class = hooked_class(actor_class)

    def __call__(self) -> pykka.ActorRef[Any]:
        return self._start_class.start(*self.args, **self.kwargs)

    @staticmethod
    def checked(
        actor_class: type[pykka.ThreadingActor], args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> tuple[tuple[Any, ...], dict[str, Any]]:
        """The arguments, checked against the class's signature now rather than at start.

        A class may also freeze or validate them (``_goth_actors_prepare``: supervisors copy
        their children, so a generator is not used up by the first start).
        """
        signature = _signature(actor_class)
        if signature is not None:
            try:
                signature.bind(*args, **kwargs)
            except TypeError as error:
                raise _argument_error(actor_class, signature, kwargs, error) from None
        prepare = getattr(actor_class, "_goth_actors_prepare", None)
        if prepare is not None:
            args, kwargs = prepare(args, kwargs)
        return args, kwargs

    def __repr__(self) -> str:
        params = [repr(a) for a in self.args] + [f"{k}={v!r}" for k, v in self.kwargs.items()]
        return f"{self.actor_class.__name__}.start({', '.join(params)})"


@dataclass(frozen=True, init=False)
class ChildSpec:
    """How a supervisor starts, restarts and stops one child; OTP's child specification.

    Build one with [`for_actor`][goth_actors.otp.ChildSpec.for_actor] (the documented way: the
    supervisor then sees every way the child can die and tells a crash from a normal stop), or
    with a ``start`` function of your own (see [Plain start functions][otp-plain-start-functions]
    for what the supervisor can and cannot see then).

    Args:
        id: Names the child within its supervisor; any hashable value.
        start: Called with no arguments, in the supervisor's thread; returns the child's
            ``ActorRef``, or ``None`` to say "not now" (OTP's ``ignore``: the spec is kept with
            no running child). Called again for every restart.
        restart: ``"permanent"`` (default: always restarted), ``"transient"`` (restarted only
            after a crash) or ``"temporary"`` (never restarted, and dropped once it exits).
        shutdown: Seconds to wait for the child to stop (default 5.0 for a worker), ``None`` to
            wait forever (default for a supervisor), or ``"brutal_kill"`` not to wait. A child
            still running after that is killed: it ends after its current message, without
            its ``on_stop``, and the registry names it holds go to its successor.
        type: ``"worker"`` (default) or ``"supervisor"``.
        significant: Whether the child's exit may shut its supervisor down (OTP 24's
            significant children; see ``auto_shutdown`` in
            [`Supervisor.start`][goth_actors.otp.Supervisor.start]). Default ``False``; only a
            transient or temporary child can be significant.
        restart_delay: Seconds before a *failed* restart of this child is retried: a number,
            or ``delay(failures)`` called with the count of consecutive failed restarts (1, 2,
            ...). Default ``None``: the supervisor's own backoff. OTP retries at once; see
            [Strategies, restart types, intensity][otp-restarts].
        on_final_exit: Called with no arguments, in the supervisor's thread, once the child
            has stopped and will not be restarted: terminated, deleted, its supervisor
            stopped or gave up, a transient child's normal exit, a temporary child's exit, a
            start that failed for good. Not after a crash the supervisor restarts. Keep it
            quick; whatever it raises is logged and ignored.

    Raises:
        ConfigError: If an option is invalid, naming it.

    Examples:
        >>> import pykka
        >>> class Worker(pykka.ThreadingActor):
        ...     pass
        >>> ChildSpec.for_actor(Worker, id="w1", restart="transient")  # doctest: +ELLIPSIS
        ChildSpec(id='w1', start=Worker.start(), restart='transient', shutdown=5.0, ...)
        >>> ChildSpec("w2", Worker.start).shutdown
        5.0
    """

    id: Hashable
    start: Callable[[], pykka.ActorRef[Any] | None]
    restart: Restart
    shutdown: Shutdown
    type: ChildType
    significant: bool
    restart_delay: RestartDelay
    on_final_exit: Callable[[], object] | None

    def __init__(
        self,
        id: Hashable,
        start: Callable[[], pykka.ActorRef[Any] | None],
        restart: Restart = "permanent",
        shutdown: Shutdown | _Default = _DEFAULT,
        type: ChildType = "worker",
        *,
        significant: bool = False,
        restart_delay: RestartDelay = None,
        on_final_exit: Callable[[], object] | None = None,
    ) -> None:
        try:
            hash(id)
        except TypeError:
            raise ConfigError("id", f"must be hashable, not {id!r}") from None
        if not callable(start):
            raise ConfigError("start", f"must be a callable returning an ActorRef, not {start!r}")
        if restart not in get_args(Restart):
            raise ConfigError("restart", f"must be permanent, transient or temporary: {restart!r}")
        if type not in get_args(ChildType):
            raise ConfigError("type", f"must be worker or supervisor, not {type!r}")
        if isinstance(shutdown, _Default):
            shutdown = None if type == "supervisor" else DEFAULT_WORKER_SHUTDOWN
        elif shutdown is not None and shutdown != "brutal_kill":
            try:
                shutdown = check_seconds("shutdown", shutdown)
            except ConfigError:
                raise ConfigError(
                    "shutdown",
                    f'must be seconds >= 0 (at most {MAX_SECONDS:.3g}), None or "brutal_kill", '
                    f"not {shutdown!r}",
                ) from None
        if not isinstance(significant, bool):
            raise ConfigError("significant", f"must be True or False, not {significant!r}")
        if significant and restart == "permanent":
            raise ConfigError("significant", "a permanent child cannot be significant (as OTP)")
        if restart_delay is not None and not callable(restart_delay):
            restart_delay = check_seconds("restart_delay", restart_delay)
        if on_final_exit is not None and not callable(on_final_exit):
            raise ConfigError("on_final_exit", f"must be callable, not {on_final_exit!r}")
        object.__setattr__(self, "id", id)
        object.__setattr__(self, "start", start)
        object.__setattr__(self, "restart", restart)
        object.__setattr__(self, "shutdown", shutdown)
        object.__setattr__(self, "type", type)
        object.__setattr__(self, "significant", significant)
        object.__setattr__(self, "restart_delay", restart_delay)
        object.__setattr__(self, "on_final_exit", on_final_exit)

    @classmethod
    def for_actor(
        cls,
        actor_class: builtins.type[pykka.ThreadingActor],
        /,
        *args: Any,
        id: Hashable | _Default = _DEFAULT,
        restart: Restart = "permanent",
        shutdown: Shutdown | _Default = _DEFAULT,
        significant: bool = False,
        restart_delay: RestartDelay = None,
        on_final_exit: Callable[[], object] | None = None,
        **kwargs: Any,
    ) -> ChildSpec:
        """Builds the spec of a child that is ``actor_class.start(*args, **kwargs)``.

        ``actor_class`` is any ``pykka.ThreadingActor`` subclass; it inherits nothing of ours.
        The child is started as a same-named subclass, on a daemon thread (the tree owns its
        lifetime and stops it at interpreter exit), whose hooks wrap the class's own
        ``on_start``, ``on_stop``, ``on_failure`` and message dispatch, so the supervisor:

        - waits for ``on_start`` to return, and reports its failure as a failed start;
        - learns of every exit at once, with its reason: ``None`` after a ``stop()`` from
          anywhere, the exception after a crash in a ``tell``-delivered message, in
          ``on_start`` or in ``on_stop``;
        - sees a ``BaseException`` raised in any handler (``SystemExit``, ...) as a crash of
          that one child, instead of the zombie or the process-wide ``stop_all`` Pykka
          would otherwise produce.

        An exception in an ``ask``-delivered message goes back to the caller and the child
        lives on, as with any Pykka actor. A [`Supervisor`][goth_actors.otp.Supervisor] or
        [`DynamicSupervisor`][goth_actors.otp.DynamicSupervisor] class gives a child of type
        ``"supervisor"`` with ``shutdown=None``; its children are copied now (a generator is
        not used up by the first start) and its options checked now. The arguments are
        checked against ``actor_class``'s signature when the spec is built, so a misspelt
        option (``restart_type=``) fails here, not at start. An actor whose own arguments
        share a name with an option below needs ``ChildSpec(id, lambda: ...)`` instead.

        Args:
            actor_class: The actor class.
            *args: Positional arguments for ``actor_class.start``.
            id: The child's id (default: ``actor_class`` itself, as OTP defaults to the module).
            restart: ``"permanent"`` (default), ``"transient"`` or ``"temporary"``.
            shutdown: As for [`ChildSpec`][goth_actors.otp.ChildSpec] (default 5.0, or ``None``
                for a supervisor).
            significant: As for [`ChildSpec`][goth_actors.otp.ChildSpec] (default ``False``).
            restart_delay: As for [`ChildSpec`][goth_actors.otp.ChildSpec] (default: the
                supervisor's backoff).
            on_final_exit: As for [`ChildSpec`][goth_actors.otp.ChildSpec] (default ``None``).
            **kwargs: Keyword arguments for ``actor_class.start``.

        Raises:
            ConfigError: If ``actor_class`` is not a ``pykka.ThreadingActor`` subclass, an
                option is invalid, or the arguments do not fit ``actor_class`` (naming the
                argument, with the option you may have meant).

        Examples:
            >>> import pykka
            >>> class Greeter(pykka.ThreadingActor):
            ...     def __init__(self, greeting: str) -> None:
            ...         super().__init__()
            ...         self.greeting = greeting
            >>> spec = ChildSpec.for_actor(Greeter, "hello", id="greeter")
            >>> spec.start
            Greeter.start('hello')
        """
        if not (isinstance(actor_class, type) and issubclass(actor_class, pykka.ThreadingActor)):
            raise ConfigError(
                "actor_class", f"must be a pykka.ThreadingActor subclass, not {actor_class!r}"
            )
        child_type: ChildType = (
            "supervisor" if getattr(actor_class, "_goth_actors_is_supervisor", False) else "worker"
        )
        args, kwargs = _ActorStarter.checked(actor_class, args, kwargs)
        return cls(
            actor_class if isinstance(id, _Default) else id,
            _ActorStarter(actor_class, args, kwargs),
            restart=restart,
            shutdown=shutdown,
            type=child_type,
            significant=significant,
            restart_delay=restart_delay,
            on_final_exit=on_final_exit,
        )


@functools.lru_cache(maxsize=256)
def _signature(actor_class: type) -> inspect.Signature | None:
    """``actor_class``'s signature, or ``None`` if it has none to check against (cached)."""
    try:
        return inspect.signature(actor_class)
    except (TypeError, ValueError):
        return None


def _argument_error(
    actor_class: type, signature: inspect.Signature, kwargs: dict[str, Any], error: TypeError
) -> ConfigError:
    parameters = signature.parameters
    accepts_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values())
    for name in kwargs:
        if accepts_any or name in parameters:
            continue
        close = difflib.get_close_matches(name, [*_OPTIONS, *parameters], n=1)
        hint = f" (did you mean {close[0]}?)" if close else ""
        return ConfigError(name, f"is not an argument of {actor_class.__name__}{hint}")
    return ConfigError("args", f"do not fit {actor_class.__name__}{signature}: {error}")
