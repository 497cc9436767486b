"""A report's email: the HTML with its charts inline (cid: parts) and the PDF attached, over SMTP.

The message is multipart/mixed: a multipart/related holding the text and
HTML alternatives and one image/png part per chart, whose Content-ID the
HTML's `cid:` sources name, then the PDF. Its Message-ID is fixed per
report, so a copy sent again after a crash between the server's answer and
our record of it is recognisably the same message.
"""

from __future__ import annotations

import smtplib
from email.message import EmailMessage
from email.utils import formatdate
from urllib.parse import unquote, urlsplit

from services.reporting.reports.documents import key_figures, render_html, title
from services.reporting.reports.figures import Figures


def message(
    report_id: str,
    figures: Figures,
    client_name: str | None,
    charts: dict[str, bytes],
    pdf: bytes,
    sender: str,
    recipients: list[str],
) -> EmailMessage:
    msg = EmailMessage()
    msg["Subject"] = title(figures, client_name)
    msg["From"] = sender
    msg["To"] = ", ".join(recipients)
    msg["Date"] = formatdate(localtime=False)
    msg["Message-ID"] = f"<report-{report_id}@switchboard>"
    text = "\n".join(f"{name}: {value}" for name, value in key_figures(figures))
    msg.set_content(f"{title(figures, client_name)}\n\n{text}\n\nThe charts are in the PDF.\n")
    msg.add_alternative(render_html(figures, client_name, lambda name: f"cid:{name}"), "html")
    html_part = msg.get_body(("html",))
    assert isinstance(html_part, EmailMessage)
    for name, png in charts.items():
        html_part.add_related(png, "image", "png", cid=f"<{name}>", filename=f"{name}.png")
    msg.add_attachment(
        pdf,
        maintype="application",
        subtype="pdf",
        filename=f"report-{figures.clientId}-{figures.period}-{figures.first}.pdf",
    )
    return msg


def send(smtp_url: str, msg: EmailMessage, timeout: float = 30.0) -> None:
    """Hand `msg` to the SMTP server of `smtp_url` (smtp://, smtps://, smtp+starttls://)."""
    url = urlsplit(smtp_url)
    host = url.hostname or "127.0.0.1"
    smtp: smtplib.SMTP
    if url.scheme == "smtps":
        smtp = smtplib.SMTP_SSL(host, url.port or 465, timeout=timeout)
    else:
        smtp = smtplib.SMTP(host, url.port or 25, timeout=timeout)
    with smtp:
        if url.scheme == "smtp+starttls":
            smtp.starttls()
        if url.username:
            smtp.login(unquote(url.username), unquote(url.password or ""))
        smtp.send_message(msg)
