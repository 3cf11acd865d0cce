"""The errors of ``goth_actors.otp``, under `OtpError` (itself a ``GothError``).

    GothError
    └── OtpError                          supervision, names and timers
        ├── AlreadyRegistered             the name is held by another live actor
        ├── FailedToStartChild            a supervisor could not start a child
        ├── ChildNotFound (LookupError)   a supervisor has no child with that id
        ├── ChildAlreadyPresent (ValueError)  start_child with an id the supervisor has
        │   └── ChildAlreadyStarted       ... and that child is running (its ref attached)
        ├── ChildRunning (RuntimeError)   restart_child / delete_child of a running child
        ├── MaxChildren                   a DynamicSupervisor is at its max_children
        ├── MaxRestartsExceeded           a supervisor gave up: too many restarts too fast
        └── LinkExit                      an actor this one started (and owns) exited abnormally

A wrong option is a ``ConfigError`` (a ``ValueError``) naming it; a wrong argument type is a
``TypeError``. Pykka's own ``ActorDeadError`` and ``Timeout`` pass through where Pykka's
semantics apply.
"""

from __future__ import annotations

from goth_actors._base import GothError

__all__ = [
    "AlreadyRegistered",
    "ChildAlreadyPresent",
    "ChildAlreadyStarted",
    "ChildNotFound",
    "ChildRunning",
    "FailedToStartChild",
    "LinkExit",
    "MaxChildren",
    "MaxRestartsExceeded",
    "OtpError",
]


class OtpError(GothError):
    """Root of the supervision framework's errors."""


class AlreadyRegistered(OtpError):
    """The name is already held by a live actor.

    Attributes:
        name: The name that was asked for.
    """

    def __init__(self, name: object) -> None:
        super().__init__(f"the name {name!r} is already registered to a live actor")
        self.name = name

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (self.name,))


class FailedToStartChild(OtpError):
    """A supervisor could not start one of its children.

    Attributes:
        id: The child's id from its [`ChildSpec`][goth_actors.otp.ChildSpec].
        reason: The exception that stopped it from starting.
    """

    def __init__(self, id: object, reason: BaseException) -> None:
        super().__init__(f"child {id!r} failed to start: {type(reason).__name__}: {reason}")
        self.id = id
        self.reason = reason

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (self.id, self.reason))


class ChildNotFound(OtpError, LookupError):
    """A supervisor has no child with the given id."""


class ChildAlreadyPresent(OtpError, ValueError):
    """``start_child`` with an id the supervisor already has (running or not)."""


class ChildAlreadyStarted(ChildAlreadyPresent):
    """``start_child`` with the id of a child that is running (OTP's ``already_started``).

    Attributes:
        id: The id.
        ref: The running child's ``ActorRef``.
    """

    def __init__(self, id: object, ref: object) -> None:
        super().__init__(f"a child with id {id!r} is already running: {ref}")
        self.id = id
        self.ref = ref

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (self.id, self.ref))


class ChildRunning(OtpError, RuntimeError):
    """``restart_child`` or ``delete_child`` of a child that is running."""


class MaxChildren(OtpError):
    """``start_child`` on a ``DynamicSupervisor`` that already has ``max_children`` children.

    Attributes:
        max_children: The supervisor's ``max_children``.
    """

    def __init__(self, max_children: int) -> None:
        super().__init__(f"the supervisor already has its max_children ({max_children})")
        self.max_children = max_children

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (self.max_children,))


class LinkExit(OtpError):
    """An actor that this one started, and so owns, exited abnormally (OTP's exit signal).

    Raised in the owner, which crashes with it; its own supervisor then decides what to do.

    Attributes:
        ref: The owned actor that exited.
        reason: Its exit reason.
    """

    def __init__(self, ref: object, reason: BaseException) -> None:
        super().__init__(f"{ref} exited: {type(reason).__name__}: {reason}")
        self.ref = ref
        self.reason = reason

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (self.ref, self.reason))


class MaxRestartsExceeded(OtpError):
    """A supervisor saw more than ``max_restarts`` restarts within ``max_seconds`` and gave up.

    Attributes:
        max_restarts: The supervisor's ``max_restarts``.
        max_seconds: The supervisor's ``max_seconds``.
        last_child: The id of the child whose exit broke the limit.
        last_reason: That child's exit reason, or ``None`` for a normal exit.
    """

    def __init__(
        self,
        max_restarts: int,
        max_seconds: float,
        last_child: object = None,
        last_reason: BaseException | None = None,
    ) -> None:
        detail = ""
        if last_child is not None:
            detail = f"; last exit: child {last_child!r}"
            if last_reason is not None:
                detail += f" ({type(last_reason).__name__}: {last_reason})"
        super().__init__(
            f"more than {max_restarts} restarts within {max_seconds} s, supervisor gave up{detail}"
        )
        self.max_restarts = max_restarts
        self.max_seconds = max_seconds
        self.last_child = last_child
        self.last_reason = last_reason

    def __reduce__(self) -> tuple[object, ...]:
        return (
            type(self),
            (self.max_restarts, self.max_seconds, self.last_child, self.last_reason),
        )
