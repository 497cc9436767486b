"""Retention selection: exactly the recordings past their client's retention are expired."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from services.recordings.retention import Candidate, is_expired, select_expired

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def _c(sid: str, age_days: float, days: int | None, known: bool = True) -> Candidate:
    return Candidate(sid, "client", NOW - timedelta(days=age_days), days, known)


def test_a_recording_older_than_the_client_retention_is_expired() -> None:
    assert is_expired(_c("old", 31, 30), NOW, default_days=0)


def test_a_recording_exactly_at_the_cutoff_is_kept_this_run() -> None:
    assert not is_expired(_c("edge", 30, 30), NOW, default_days=0)


def test_no_retention_keeps_recordings_forever_even_with_a_default() -> None:
    assert not is_expired(_c("forever", 5000, None), NOW, default_days=7)


def test_clients_without_settings_use_the_default_and_zero_means_keep() -> None:
    assert is_expired(_c("unknown", 8, None, known=False), NOW, default_days=7)
    assert not is_expired(_c("unknown", 8, None, known=False), NOW, default_days=0)


def test_select_expired_returns_exactly_the_expired_ones() -> None:
    candidates = [_c("a", 40, 30), _c("b", 10, 30), _c("c", 2, 1), _c("d", 100, None)]
    assert [c.recording_sid for c in select_expired(candidates, NOW, 0)] == ["a", "c"]
