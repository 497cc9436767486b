"""The CSV export never hands a spreadsheet a formula: such cells get a leading '.

A client can name its own campaign `=HYPERLINK(...)`; opened in the admin's
spreadsheet, that cell would run. Every cell starting with =, +, -, @, tab
or CR is written with a leading ', as OWASP advises, phone numbers included
(+14155550123 becomes '+14155550123). The JSON API is unchanged.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable

import pytest
from flask import Flask

from services.analytics.calls import csv_cell
from services.analytics.consumer import write
from services.analytics.store import Store
from tests.analytics import producer_events
from tests.analytics.conftest import AUTH
from tests.twilio_calls import ForwardedCall

FORMULA = '=HYPERLINK("http://x","y")'


@pytest.mark.parametrize("start", ["=", "+", "-", "@", "\t", "\r"])
def test_a_cell_starting_like_a_formula_gets_a_leading_quote(start: str) -> None:
    assert csv_cell(start + "1+1") == "'" + start + "1+1"


@pytest.mark.parametrize("text", ["", "spring", "CA0123", "42", "2024-05-01T12:00:00.000Z", "a=b"])
def test_other_cells_are_written_as_they_are(text: str) -> None:
    assert csv_cell(text) == text


def test_a_campaign_named_like_a_formula_is_exported_as_text(
    make_app: Callable[..., Flask], store: Store
) -> None:
    call = ForwardedCall(
        to="+14155550100", forward_to="+14155559999", caller="+14155550123", city="@SUM(1+1)"
    )
    number = producer_events.assignment(call.to, "client-formula", FORMULA)
    write(store, producer_events.answered_call(call, number))
    http = make_app().test_client()

    response = http.get("/api/calls?format=csv", headers=AUTH)
    assert response.status_code == 200
    header, row = list(csv.reader(io.StringIO(response.get_data(as_text=True))))
    cells = dict(zip(header, row, strict=True))
    assert cells["campaign"] == "'" + FORMULA
    assert cells["callerCity"] == "'@SUM(1+1)"
    assert cells["from"] == "'+14155550123"
    assert cells["to"] == "'+14155550100"
    assert cells["forwardedTo"] == "'+14155559999"
    assert cells["callSid"] == call.call_sid
    assert cells["durationSec"] == "42"

    [listed] = http.get("/api/calls", headers=AUTH).get_json()["calls"]
    assert listed["campaign"] == FORMULA
    assert listed["from"] == "+14155550123"
