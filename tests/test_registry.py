"""The name registry: any hashable name, live holders only, values that outlive the actor."""

from __future__ import annotations

import threading
from collections.abc import Hashable, Iterator
from typing import Any

import pykka
import pytest

from goth_actors import AlreadyRegistered, whereis
from goth_actors.otp import RegistryEntry, _registry, lookup, register, unregister, update_value


@pytest.fixture(autouse=True)
def _forget_names_registered_by_the_test() -> Iterator[None]:
    before = set(_registry._entries)
    yield
    for name in set(_registry._entries) - before:
        unregister(name)


class Plain(pykka.ThreadingActor):
    pass


class SelfNaming(pykka.ThreadingActor):
    """Registers itself in __init__, in the starter's thread, before its own thread exists."""

    def __init__(self, name: object) -> None:
        super().__init__()
        register(name, self.actor_ref)
        self.name = name
        self.seen_in_on_start: pykka.ActorRef[Any] | None = None

    def on_start(self) -> None:
        self.seen_in_on_start = whereis(self.name)


@pytest.fixture
def actors() -> Iterator[list[pykka.ActorRef[Any]]]:
    refs: list[pykka.ActorRef[Any]] = []
    yield refs
    for ref in refs:
        ref.stop()


def test_a_registered_actor_is_found_by_name_until_it_is_unregistered(
    actors: list[pykka.ActorRef[Any]],
) -> None:
    ref = Plain.start()
    actors.append(ref)
    register("worker", ref)
    assert whereis("worker") is ref
    assert unregister("worker") is True
    assert whereis("worker") is None
    assert lookup("worker") is None
    assert unregister("worker") is False


@pytest.mark.parametrize(
    "name", [("tokens", "default"), 42, frozenset({"a", "b"}), None, Plain, 3.5]
)
def test_any_hashable_object_can_be_a_name(
    name: Hashable, actors: list[pykka.ActorRef[Any]]
) -> None:
    ref = Plain.start()
    actors.append(ref)
    register(name, ref)
    assert whereis(name) is ref


@pytest.mark.parametrize(
    "call",
    [
        lambda: register(["a", "list"], Plain.start()),  # type: ignore[arg-type]
        lambda: whereis({"a": "dict"}),  # type: ignore[arg-type]
        lambda: lookup({"a", "set"}),  # type: ignore[arg-type]
        lambda: unregister(["a"]),  # type: ignore[arg-type]
        lambda: update_value(["a"], 1, ref=Plain.start()),  # type: ignore[arg-type]
    ],
    ids=["register", "whereis", "lookup", "unregister", "update_value"],
)
def test_an_unhashable_name_is_a_clear_type_error(call: Any) -> None:
    try:
        with pytest.raises(TypeError, match="registry names must be hashable"):
            call()
    finally:
        pykka.ActorRegistry.stop_all()


def test_a_name_held_by_a_live_actor_cannot_be_taken(
    actors: list[pykka.ActorRef[Any]],
) -> None:
    first, second = Plain.start(), Plain.start()
    actors += [first, second]
    register("unique", first)
    with pytest.raises(AlreadyRegistered) as caught:
        register("unique", second)
    assert caught.value.name == "unique"
    assert whereis("unique") is first


def test_registering_the_holder_again_is_a_no_op_even_through_another_ref_object(
    actors: list[pykka.ActorRef[Any]],
) -> None:
    ref = Plain.start()
    actors.append(ref)
    register("same", ref)
    update_value("same", "kept", ref=ref)
    twin = ref.proxy().actor_ref  # the same actor; compared by URN, not by object
    register("same", twin)
    entry = lookup("same")
    assert entry is not None
    assert entry.value == "kept"


def test_a_dead_actors_name_is_freed_and_its_value_passes_to_the_next_holder() -> None:
    old = Plain.start()
    register("server", old)
    assert update_value("server", "cached token", ref=old)
    old.stop()
    assert whereis("server") is None
    entry = lookup("server")
    assert entry is not None
    assert entry.value == "cached token"
    assert not entry.alive
    new = Plain.start()
    try:
        register("server", new)
        assert whereis("server") is new
        entry = lookup("server")
        assert entry == RegistryEntry("server", new, "cached token")
    finally:
        new.stop()


def test_only_the_current_holder_can_update_the_value_so_an_old_instance_cannot_clobber_it() -> (
    None
):
    old = Plain.start()
    register("server", old)
    old.stop()
    new = Plain.start()
    try:
        register("server", new)
        assert update_value("server", "from the new one", ref=new)
        assert not update_value("server", "from the dying old one", ref=old)
        assert not update_value("nobody", "x", ref=new)
        entry = lookup("server")
        assert entry is not None
        assert entry.value == "from the new one"
    finally:
        new.stop()


def test_released_names_keep_their_values_and_pass_from_a_live_holder_to_the_next(
    actors: list[pykka.ActorRef[Any]],
) -> None:
    old, new = Plain.start(), Plain.start()
    actors += [old, new]
    register("server", old)
    register("other", old)
    assert update_value("server", "cached token", ref=old)
    assert sorted(_registry._release_names(old)) == ["other", "server"]  # type: ignore[type-var]
    assert old.is_alive()  # given up on by its supervisor, still running
    assert whereis("server") is None
    assert lookup("server") == RegistryEntry("server", None, "cached token")
    assert not update_value("server", "from the old one", ref=old)
    register("server", new)
    assert lookup("server") == RegistryEntry("server", new, "cached token")
    assert _registry._release_names(old) == []


def test_unregister_drops_the_value_too_and_can_be_limited_to_the_holder(
    actors: list[pykka.ActorRef[Any]],
) -> None:
    holder, other = Plain.start(), Plain.start()
    actors += [holder, other]
    register("name", holder)
    update_value("name", "value", ref=holder)
    assert unregister("name", ref=other) is False
    assert whereis("name") is holder
    assert unregister("name", ref=holder) is True
    register("name", other)
    entry = lookup("name")
    assert entry is not None
    assert entry.value is None


def test_a_dead_actor_cannot_be_registered() -> None:
    ref = Plain.start()
    ref.stop()
    with pytest.raises(pykka.ActorDeadError):
        register("ghost", ref)


def test_an_actor_may_register_itself_in_init_before_its_thread_exists() -> None:
    ref = SelfNaming.start("self-named")
    try:
        assert whereis("self-named") is ref
        assert ref.proxy().seen_in_on_start.get(timeout=5.0) is ref
    finally:
        ref.stop()


def test_an_actor_may_hold_several_names(actors: list[pykka.ActorRef[Any]]) -> None:
    ref = Plain.start()
    actors.append(ref)
    register("one", ref)
    register("two", ref)
    assert whereis("one") is whereis("two") is ref
    assert sorted(_registry._names_of(ref)) == ["one", "two"]  # type: ignore[type-var]


def test_readers_see_whole_entries_while_writers_replace_them() -> None:
    ref = Plain.start()
    register("busy", ref)
    stop = threading.Event()
    torn: list[object] = []

    def read() -> None:
        while not stop.is_set():
            entry = lookup("busy")
            if (
                entry is None
                or not isinstance(entry.value, tuple)
                or entry.value[0] != entry.value[1]
            ):
                torn.append(entry)

    update_value("busy", (0, 0), ref=ref)
    readers = [threading.Thread(target=read) for _ in range(4)]
    for reader in readers:
        reader.start()
    try:
        for i in range(2000):
            update_value("busy", (i, i), ref=ref)
    finally:
        stop.set()
        for reader in readers:
            reader.join()
        ref.stop()
    assert torn == []
