"""Building one claimed report: figures from analytics, charts, HTML and PDF, stored, then sent.

Each step either finishes or raises, and the claim is checked when the
result is recorded: a builder whose claim expired (it was presumed dead and
another took over) records nothing and sends nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Protocol

from services.reporting.reports import charts, documents, mail
from services.reporting.reports.figures import Figures
from services.reporting.reports.files import DocumentStore, document_key
from services.reporting.reports.periods import Period
from services.reporting.reports.store import Report, ReportStore

log = logging.getLogger(__name__)


class FigureSource(Protocol):
    def figures(self, client_id: str, period: Period, tz: str) -> Figures: ...


@dataclass(frozen=True)
class Rendered:
    figures: Figures
    charts: dict[str, bytes]
    html: str
    pdf: bytes


def render(figures: Figures, client_name: str | None) -> Rendered:
    pngs = charts.pngs(figures)
    html = documents.render_html(figures, client_name, lambda name: documents.data_uri(pngs[name]))
    return Rendered(figures, pngs, html, documents.render_pdf(figures, client_name))


class ReportBuilder:
    def __init__(
        self,
        store: ReportStore,
        source: FigureSource,
        files: DocumentStore,
        send: Callable[[EmailMessage], None],
        sender: str,
    ) -> None:
        self.store = store
        self.source = source
        self.files = files
        self.send = send
        self.sender = sender

    def build(self, report: Report, worker: str) -> bool:
        """Build, store and send a report this worker has claimed; False if the claim was lost.

        Raises on any failure; the caller records it and the report is retried.
        """
        client = self.store.client(report.client_id)
        name = client.name if client else None
        period = Period(report.period, report.period_first, report.period_last)
        figures = self.source.figures(report.client_id, period, report.timezone)
        rendered = render(figures, name)
        first = report.period_first.isoformat()
        pdf_key = document_key(report.client_id, report.period, first, report.id, "pdf")
        html_key = document_key(report.client_id, report.period, first, report.id, "html")
        self.files.put(pdf_key, rendered.pdf, "application/pdf")
        self.files.put(html_key, rendered.html.encode(), "text/html; charset=utf-8")
        if not self.store.built(report.id, worker, figures.to_json(), pdf_key, html_key):
            log.warning("report %s: claim lost while building; left to its new holder", report.id)
            return False
        recipients = list(report.recipients)
        if not recipients:
            self.store.release(report.id, worker)
            return True
        msg = mail.message(
            report.id, figures, name, rendered.charts, rendered.pdf, self.sender, recipients
        )
        self.send(msg)
        self.store.sent(report.id, worker)
        log.info("report %s sent to %d recipient(s)", report.id, len(recipients))
        return True
