"""The consumer's garbage-collector threshold (pure: no broker, no store)."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from services.analytics.consumer import collect_young_objects_less_often


@pytest.fixture(autouse=True)
def restore_threshold() -> Iterator[None]:
    before = gc.get_threshold()
    yield
    gc.set_threshold(*before)


def test_the_young_generation_holds_what_batches_keep_alive() -> None:
    gc.set_threshold(700, 10, 10)
    collect_young_objects_less_often(5000)
    young, *older = gc.get_threshold()
    assert young >= 2 * 5000  # two batches' events at least
    assert older == [10, 10]  # the older generations keep their ratios


def test_a_higher_threshold_is_never_lowered() -> None:
    gc.set_threshold(1_000_000, 10, 10)
    collect_young_objects_less_often(100)
    assert gc.get_threshold() == (1_000_000, 10, 10)


def test_disabled_collection_stays_disabled() -> None:
    gc.set_threshold(0, 10, 10)
    collect_young_objects_less_often(5000)
    assert gc.get_threshold()[0] == 0
