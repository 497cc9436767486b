"""A report's four charts, drawn with matplotlib: calls per day, outcomes, peak hours, campaigns.

Each chart is one function that draws on an Axes, so the same drawing
makes the PNG the email carries inline and the PDF's first page (all four
on one page). The Agg backend draws without a display.
"""

from __future__ import annotations

import io
from collections.abc import Callable

import matplotlib

matplotlib.use("Agg")

from matplotlib.axes import Axes  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from services.reporting.reports.figures import Figures  # noqa: E402

ANSWERED, MISSED, VOICEMAIL, OTHER = "#2e7d32", "#c62828", "#ef6c00", "#90a4ae"
CALLS = "#1565c0"


def calls_per_day(ax: Axes, figures: Figures) -> None:
    points = figures.answers["callsPerDay"]["points"]
    days = [point["t"][5:10] for point in points]
    answered = [point["answered"] for point in points]
    missed = [point["missed"] for point in points]
    ax.bar(days, answered, color=ANSWERED, label="answered")
    ax.bar(days, missed, bottom=answered, color=MISSED, label="missed")
    ax.set_title("Calls per day")
    ax.legend(loc="upper left", fontsize="small")
    ax.tick_params(axis="x", labelrotation=60 if len(days) > 7 else 0, labelsize="small")


def outcomes(ax: Axes, figures: Figures) -> None:
    summary = figures.answers["summary"]
    voicemail = summary.get("voicemail", 0)
    parts = [
        ("answered", summary["answered"], ANSWERED),
        ("missed", summary["missed"] - voicemail, MISSED),
        ("voicemail", voicemail, VOICEMAIL),
        ("other", max(summary["totalCalls"] - summary["answered"] - summary["missed"], 0), OTHER),
    ]
    ax.barh([name for name, _, _ in parts], [n for _, n, _ in parts], color=[c for *_, c in parts])
    for row, (_, count, _) in enumerate(parts):
        ax.annotate(
            str(count),
            (count, row),
            xytext=(3, 0),
            textcoords="offset points",
            va="center",
            fontsize="small",
        )
    ax.invert_yaxis()
    ax.set_title(f"Outcomes (answer rate {summary['answerRate']:.0%})")


def peak_hours(ax: Axes, figures: Figures) -> None:
    hours = figures.answers["peakHours"]["hours"]
    ax.bar([h["hour"] for h in hours], [h["calls"] for h in hours], color=CALLS, label="calls")
    ax.bar(
        [h["hour"] for h in hours],
        [h["answered"] for h in hours],
        color=ANSWERED,
        width=0.5,
        label="answered",
    )
    ax.set_xticks(range(0, 24, 3))
    ax.set_xlabel(f"hour of day ({figures.timezone})", fontsize="small")
    ax.set_title("Peak hours")
    ax.legend(loc="upper left", fontsize="small")


def campaigns(ax: Axes, figures: Figures) -> None:
    rows = figures.answers["campaigns"]["campaigns"][:8]
    names = [row["campaign"] or "(none)" for row in rows]
    ax.bar(names, [row["calls"] for row in rows], color=CALLS)
    for column, row in enumerate(rows):
        roi = "ROI n/a" if row["roi"] is None else f"ROI {row['roi']:.1f}x"
        ax.annotate(
            roi,
            (column, row["calls"]),
            xytext=(0, 3),
            textcoords="offset points",
            ha="center",
            fontsize="small",
        )
    ax.set_title("Campaigns: calls and ROI")
    ax.tick_params(axis="x", labelrotation=30, labelsize="small")
    if not rows:
        ax.text(0.5, 0.5, "no campaigns", ha="center", va="center", transform=ax.transAxes)


Chart = Callable[[Axes, Figures], None]
CHARTS: dict[str, Chart] = {
    "calls-per-day": calls_per_day,
    "outcomes": outcomes,
    "peak-hours": peak_hours,
    "campaigns": campaigns,
}


def png(chart: Chart, figures: Figures) -> bytes:
    # Fixed margins: a layout engine would measure every label first, which costs
    # more than drawing the chart.
    figure = Figure(figsize=(6.4, 3.2), dpi=100)
    figure.subplots_adjust(left=0.1, right=0.97, top=0.88, bottom=0.2)
    chart(figure.add_subplot(), figures)
    out = io.BytesIO()
    figure.savefig(out, format="png")
    return out.getvalue()


def pngs(figures: Figures) -> dict[str, bytes]:
    """Every chart as a PNG, by its name (the email's Content-ID)."""
    return {name: png(chart, figures) for name, chart in CHARTS.items()}


def charts_page(figures: Figures, title: str) -> Figure:
    """An A4 landscape page with the four charts, two by two."""
    figure = Figure(figsize=(11.69, 8.27), dpi=100)
    figure.suptitle(title)
    figure.subplots_adjust(left=0.07, right=0.97, top=0.9, bottom=0.09, hspace=0.45, wspace=0.2)
    grid = figure.subplots(2, 2)
    for ax, chart in zip(grid.flat, CHARTS.values(), strict=True):
        chart(ax, figures)
    return figure
