"""The write's pure middle: fold and attribute a batch from what was loaded, no store at all."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from services.analytics.ingest import Loaded, attribute_all, changed_facts, fold_calls
from services.analytics.numbers import assignment_from_event
from services.analytics.store import StoredFact
from tests.analytics import call_scripts as script

BASE = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)


def test_a_call_without_a_routing_decision_takes_the_client_of_the_number_it_dialled() -> None:
    events = [script.received("CA1", BASE), script.parent_status("CA1", BASE, "completed", 30, 40)]
    assigned = assignment_from_event(
        script.number_assigned(script.TWILIO_NUMBER, "acme", "google", BASE - timedelta(days=1))
    )
    assert assigned is not None
    loaded = Loaded([assigned], {}, frozenset())
    folded = fold_calls(loaded, events)
    assert folded["CA1"] is not None and folded["CA1"].clientId == ""
    attributed = attribute_all(folded, [assigned])
    assert folded["CA1"].clientId == ""  # the fold's result is left as it was
    [written] = changed_facts(loaded.current, attributed)
    assert (written.fact.clientId, written.fact.campaign, written.version) == ("acme", "google", 1)


def test_a_fact_that_did_not_change_is_not_written_again() -> None:
    events = [script.received("CA2", BASE), script.parent_status("CA2", BASE, "completed", 30, 40)]
    first = fold_calls(Loaded([], {}, frozenset()), events)["CA2"]
    assert first is not None
    loaded = Loaded([], {"CA2": StoredFact(first, 3)}, frozenset())
    assert changed_facts(loaded.current, fold_calls(loaded, events)) == []
