"""Retry delays: Goth's exp, rand and rand_exp, and a user's retry_delay."""

from __future__ import annotations

import itertools
import random

import pytest

from goth_actors._protocol import Backoff


def test_exp_starts_at_min_doubles_and_caps_at_max() -> None:
    backoff = Backoff("exp", 1.0, 30.0)
    assert [backoff.next() for _ in range(7)] == [1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0]


def test_reset_starts_again_from_the_first_delay() -> None:
    backoff = Backoff("exp", 0.5, 10.0)
    for _ in range(4):
        backoff.next()
    backoff.reset()
    assert backoff.next() == 0.5
    assert backoff.attempt == 1


def test_rand_stays_within_bounds_and_varies() -> None:
    backoff = Backoff("rand", 1.0, 30.0, rng=random.Random(7))
    delays = [backoff.next() for _ in range(50)]
    assert all(1.0 <= d <= 30.0 for d in delays)
    assert len(set(delays)) > 40


def test_rand_exp_follows_db_connections_formula() -> None:
    # Goth's rc.4 backoff_test: within [min, max], never decreasing until >= max / 3,
    # and the first delay after a reset is in [min, 3 * min].
    for seed in range(20):
        backoff = Backoff("rand_exp", 1.0, 30.0, rng=random.Random(seed))
        delays = [backoff.next() for _ in range(20)]
        assert all(1.0 <= d <= 30.0 for d in delays)
        assert 1.0 <= delays[0] <= 3.0
        for before, after in itertools.pairwise(delays):
            if before < 10.0:
                assert after >= before
        backoff.reset()
        assert 1.0 <= backoff.next() <= 3.0


def test_retry_delay_function_is_called_with_the_attempt_number() -> None:
    backoff = Backoff("exp", 1.0, 30.0, retry_delay=lambda n: n * 0.1)
    assert [round(backoff.next(), 3) for _ in range(3)] == [0.1, 0.2, 0.3]


def test_a_retry_delay_that_returns_a_negative_number_is_an_error() -> None:
    backoff = Backoff(retry_delay=lambda n: -1.0)
    with pytest.raises(ValueError, match="retry_delay"):
        backoff.next()


@pytest.mark.parametrize(
    ("kind", "minimum", "maximum"), [("linear", 1.0, 2.0), ("exp", 3.0, 2.0), ("exp", -1.0, 2.0)]
)
def test_invalid_settings_are_refused(kind: str, minimum: float, maximum: float) -> None:
    with pytest.raises(ValueError, match=r"backoff type|minimum"):
        Backoff(kind, minimum, maximum)  # type: ignore[arg-type]
