"""A report's documents: the HTML (the email's body) and the PDF (its attachment).

The HTML names each chart by a source given to it: `cid:<name>` in the
email, whose PNGs travel as inline parts; `data:` URIs in the copy served
at /api/reports/<id>.html, which stands alone in a browser. The PDF's first
page holds the four charts; the pages after it the key figures and the
missed calls still waiting for a follow-up.
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Callable
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from matplotlib.backends.backend_pdf import PdfPages
from matplotlib.figure import Figure

from services.reporting.reports.charts import CHARTS, charts_page
from services.reporting.reports.figures import Figures

FOLLOW_UP_ROWS_PER_PAGE = 70


def title(figures: Figures, client_name: str | None) -> str:
    kind = "Weekly" if figures.period == "week" else "Monthly"
    who = client_name or figures.clientId
    return f"{kind} call report for {who}: {figures.first} to {figures.last}"


def key_figures(figures: Figures) -> list[tuple[str, str]]:
    summary = figures.answers["summary"]
    durations = figures.answers["durations"]
    totals = figures.answers["campaigns"]["totals"]
    peak = figures.answers["peakHours"]["peakHour"]
    roi = totals.get("roi")
    return [
        ("Calls", str(summary["totalCalls"])),
        ("Answered", str(summary["answered"])),
        ("Missed", f"{summary['missed']} (voicemail {summary.get('voicemail', 0)})"),
        ("Answer rate", f"{summary['answerRate']:.1%}"),
        ("Average talk time", f"{durations['avgSec']:.0f} s"),
        ("Busiest hour", "-" if peak is None else f"{peak:02d}:00"),
        ("Campaign value / cost", f"{totals['value']:.2f} / {totals['cost']:.2f}"),
        ("ROI", "-" if roi is None else f"{roi:.2f}x"),
        ("Missed calls awaiting a follow-up", str(len(figures.awaiting_follow_up()))),
    ]


def local_time(iso: str, tz: str) -> str:
    moment = datetime.fromisoformat(iso.replace("Z", "+00:00"))
    return moment.astimezone(ZoneInfo(tz)).strftime("%a %Y-%m-%d %H:%M")


def follow_up_rows(figures: Figures) -> list[tuple[str, str, str, str]]:
    """(when, caller, outcome, campaign) of each missed call awaiting a follow-up."""
    return [
        (
            local_time(call["startedAt"], figures.timezone),
            call["from"] if call["direction"] == "inbound" else call["to"],
            call["status"],
            call.get("campaign") or "",
        )
        for call in figures.awaiting_follow_up()
    ]


def render_html(figures: Figures, client_name: str | None, image_src: Callable[[str], str]) -> str:
    esc = html.escape
    heading = title(figures, client_name)
    figure_rows = "".join(
        f"<tr><th align='left'>{esc(name)}</th><td>{esc(value)}</td></tr>"
        for name, value in key_figures(figures)
    )
    images = "".join(
        f"<p><img src='{esc(image_src(name))}' alt='{esc(name)}' width='640'></p>"
        for name in CHARTS
    )
    missed = follow_up_rows(figures)
    if missed:
        missed_rows = "".join(
            "<tr>" + "".join(f"<td>{esc(cell)}</td>" for cell in row) + "</tr>" for row in missed
        )
        missed_table = (
            "<table cellpadding='4'><tr><th>when</th><th>caller</th><th>outcome</th>"
            f"<th>campaign</th></tr>{missed_rows}</table>"
        )
    else:
        missed_table = "<p>None: every missed caller has been reached since.</p>"
    return (
        "<!DOCTYPE html><html><head><meta charset='utf-8'>"
        f"<title>{esc(heading)}</title></head><body style='font-family:sans-serif'>"
        f"<h1>{esc(heading)}</h1>"
        f"<p>Days and hours in {esc(figures.timezone)}.</p>"
        f"<table cellpadding='4'>{figure_rows}</table>{images}"
        "<h2>Missed calls awaiting a follow-up</h2>"
        "<p>Missed calls of the period whose caller has had no answered call with you since.</p>"
        f"{missed_table}</body></html>"
    )


def data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode()


def render_pdf(figures: Figures, client_name: str | None) -> bytes:
    heading = title(figures, client_name)
    out = io.BytesIO()
    with PdfPages(out, metadata={"Title": heading}) as pdf:
        pdf.savefig(charts_page(figures, heading))
        pdf.savefig(_figures_page(figures, heading))
        rows = follow_up_rows(figures)
        for at in range(0, len(rows), FOLLOW_UP_ROWS_PER_PAGE):
            pdf.savefig(_follow_up_page(rows[at : at + FOLLOW_UP_ROWS_PER_PAGE], len(rows)))
    return out.getvalue()


def _text_page() -> tuple[Figure, Any]:
    figure = Figure(figsize=(8.27, 11.69), dpi=100)
    ax = figure.add_axes((0.08, 0.05, 0.84, 0.9))
    ax.axis("off")
    return figure, ax


def _figures_page(figures: Figures, heading: str) -> Figure:
    figure, ax = _text_page()
    ax.set_title(heading, loc="left", fontsize="medium")
    table = ax.table(cellText=key_figures(figures), loc="upper left", colWidths=[0.55, 0.45])
    table.scale(1, 1.6)
    if not figures.awaiting_follow_up():
        ax.text(0, 0.3, "No missed calls awaiting a follow-up.", transform=ax.transAxes)
    return figure


def _follow_up_page(rows: list[tuple[str, str, str, str]], total: int) -> Figure:
    """One page of the list, as monospaced lines: one text per page draws far faster than
    a table's cells."""
    figure, ax = _text_page()
    ax.set_title(f"Missed calls awaiting a follow-up ({total})", loc="left", fontsize="medium")
    header = f"{'when':<22}{'caller':<18}{'outcome':<12}campaign"
    lines = [header, "-" * len(header)]
    lines += [
        f"{when:<22}{caller:<18}{outcome:<12}{campaign}" for when, caller, outcome, campaign in rows
    ]
    ax.text(
        0, 1, "\n".join(lines), family="monospace", fontsize=8, va="top", transform=ax.transAxes
    )
    return figure
