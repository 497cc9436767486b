"""A caller's erasure in the reports: their number replaced by its token, documents drawn again.

Router's `caller.erased` (client-events) carries the number and its token.
Reports hold callers' numbers in two places: the stored figures (the missed
calls and the follow-up list) and the PDF and HTML drawn from them. Each
report whose figures name the number gets the token instead, and its
documents are drawn again from the rewritten figures (no analytics call:
the figures of the period stay as they were built). An email already sent
cannot be called back; docs/security.md says so.
"""

from __future__ import annotations

import json
import logging

from services.reporting.reports.builder import render
from services.reporting.reports.figures import Figures
from services.reporting.reports.files import DocumentStore
from services.reporting.reports.store import ReportStore

log = logging.getLogger(__name__)


def erase_caller(store: ReportStore, files: DocumentStore, number: str, token: str) -> int:
    """Replace `number` by `token` in every report; how many reports held it.

    The documents are drawn and written before the figures are saved: a
    reader who sees the figures without the number finds none in the
    documents either, and a crash in between leaves the event to be
    handled again (the consumer commits after this returns).
    """
    quoted, replacement = json.dumps(number), json.dumps(token)
    found = store.naming(number)
    for report_id, figures in found:
        erased = json.loads(json.dumps(figures).replace(quoted, replacement))
        report = store.report(report_id)
        if report is not None and report.pdf_key is not None and report.html_key is not None:
            client = store.client(report.client_id)
            drawn = render(Figures.from_json(erased), client.name if client else None)
            files.put(report.pdf_key, drawn.pdf, "application/pdf")
            files.put(report.html_key, drawn.html.encode(), "text/html; charset=utf-8")
        store.set_figures(report_id, erased)
    if found:
        log.info("caller %s erased from %d report(s)", token, len(found))
    return len(found)
