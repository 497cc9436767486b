"""The invalid-ratio guard over a sliding window of messages (pure: no broker)."""

from __future__ import annotations

import pytest

from switchboard.consumer import InvalidRatioGuard, TooManyInvalidMessages


def test_guard_waits_for_a_full_window_before_it_judges() -> None:
    guard = InvalidRatioGuard(window=4, max_ratio=0.5)
    for _ in range(3):
        guard.record(True)  # 3 of 3, but the window is not full yet
    with pytest.raises(TooManyInvalidMessages, match="4 of the last 4"):
        guard.record(True)


def test_guard_counts_only_the_messages_still_in_the_window() -> None:
    guard = InvalidRatioGuard(window=4, max_ratio=0.5)
    for invalid in (True, True, False, False):  # 2 of 4: at the limit, not past it
        guard.record(invalid)
    guard.record(True)  # the first True leaves: still 2 of 4
    guard.record(True)  # the second True leaves: still 2 of 4
    with pytest.raises(TooManyInvalidMessages, match="3 of the last 4"):
        guard.record(True)


def test_a_long_run_of_valid_messages_clears_earlier_invalid_ones() -> None:
    guard = InvalidRatioGuard(window=10, max_ratio=0.2)
    for _ in range(2):
        guard.record(True)
    for _ in range(1000):
        guard.record(False)
    for _ in range(2):
        guard.record(True)  # 2 of 10
    with pytest.raises(TooManyInvalidMessages):
        guard.record(True)  # 3 of 10
