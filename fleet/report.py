"""Shift reports from storage: a period's orders as a self-contained HTML page and a PDF with
plots, and CSV exports of the orders and the KPIs (`fleet report`, `GET /api/v1/report`).

What storage keeps is what is reported: each order's history (created, picked, finished, by
which vehicle, against its due time). Time on orders per vehicle is the union of the spans from
its driving to a pick-up to its drop, clipped to the period. Waiting by cause and alarms are not
kept in storage; the live panel has them.
"""

from __future__ import annotations

import base64
import csv
import html
import io
import math
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from fleet.kpis import summarise_lead_times
from fleet.model import OrderState, TransportOrder

if TYPE_CHECKING:
    from matplotlib.figure import Figure

BUSY = (OrderState.TO_PICKUP, OrderState.LOADING, OrderState.TO_DROPOFF, OrderState.UNLOADING)


@dataclass(frozen=True, slots=True)
class OrderLine:
    id: str
    pickup: str
    dropoff: str
    state: str
    vehicle_id: str
    priority: int
    created_at: float
    finished_at: float | None
    lead_s: float | None
    due_at: float | None
    late_s: float | None  # past its due time when finished (or at the period's end, still open)


@dataclass(frozen=True, slots=True)
class VehicleLine:
    vehicle_id: str
    delivered: int
    on_orders_s: float
    utilisation: float


@dataclass(frozen=True, slots=True)
class ShiftReport:
    title: str
    start: float
    end: float
    orders: list[OrderLine]
    vehicles: list[VehicleLine]
    finished_by_hour: list[tuple[float, int]]

    @property
    def hours(self) -> float:
        return (self.end - self.start) / 3600

    @property
    def finished(self) -> list[OrderLine]:
        return [o for o in self.orders if o.finished_at is not None]

    @property
    def late(self) -> list[OrderLine]:
        return [o for o in self.orders if o.late_s is not None and o.late_s > 0]

    def kpis(self) -> dict[str, float | int]:
        mean, p95 = summarise_lead_times([o.lead_s for o in self.finished if o.lead_s is not None])
        counts = {s: sum(o.state == s for o in self.orders) for s in ("failed", "cancelled")}
        busy = [v.utilisation for v in self.vehicles]
        return {
            "orders": len(self.orders),
            "finished": len(self.finished),
            "finished_per_hour": round(len(self.finished) / self.hours, 2) if self.hours > 0 else 0.0,
            "lead_time_mean_s": round(mean, 1),
            "lead_time_p95_s": round(p95, 1),
            "late": len(self.late),
            "failed": counts["failed"],
            "cancelled": counts["cancelled"],
            "open_at_end": sum(o.finished_at is None and o.state not in ("failed", "cancelled") for o in self.orders),
            "vehicle_utilisation": round(sum(busy) / len(busy), 4) if busy else 0.0,
        }


def _busy_spans(order: TransportOrder, start: float, end: float) -> tuple[str | None, tuple[float, float] | None]:
    began = next((t for t in order.history if t.state in BUSY), None)
    ended = order.entered(OrderState.FINISHED) or (order.history[-1].at if order.state.terminal else end)
    if began is None or began.vehicle_id is None:
        return None, None
    lo, hi = max(began.at, start), min(ended, end)
    return began.vehicle_id, ((lo, hi) if hi > lo else None)


def _union(spans: list[tuple[float, float]]) -> float:
    total, reach = 0.0, -math.inf
    for lo, hi in sorted(spans):
        if hi > reach:
            total += hi - max(lo, reach)
            reach = hi
    return total


def shift_report(orders: list[TransportOrder], start: float, end: float, title: str) -> ShiftReport:
    """The report of `[start, end)`: orders created or finished in it, or open through it."""
    lines: list[OrderLine] = []
    spans: dict[str, list[tuple[float, float]]] = defaultdict(list)
    delivered: dict[str, int] = defaultdict(int)
    hours = max(1, math.ceil((end - start) / 3600))
    by_hour = [0] * hours
    for o in orders:
        done = o.entered(OrderState.FINISHED)
        ended_at = o.history[-1].at if o.state.terminal and o.history else None
        if o.created_at >= end or (ended_at is not None and ended_at < start):
            continue
        vehicle, span = _busy_spans(o, start, end)
        if vehicle is not None and span is not None:
            spans[vehicle].append(span)
        in_period = done is not None and start <= done < end
        if in_period and done is not None:
            by_hour[min(hours - 1, int((done - start) // 3600))] += 1
            if vehicle is not None:
                delivered[vehicle] += 1
        reference = done if in_period else (None if o.state.terminal else end)
        late = None if o.due_at is None or reference is None else round(reference - o.due_at, 1)
        lines.append(
            OrderLine(
                o.id,
                o.pickup,
                o.dropoff,
                o.state.value if (done is None or in_period) else "open",
                vehicle or "",
                o.priority,
                o.created_at,
                done if in_period else None,
                round(done - o.waiting_since, 1) if in_period and done is not None else None,
                o.due_at,
                late,
            )
        )
    length = end - start
    vehicles = [
        VehicleLine(v, delivered[v], round(_union(s), 1), round(_union(s) / length, 4) if length > 0 else 0.0)
        for v, s in sorted(spans.items())
    ]
    return ShiftReport(title, start, end, lines, vehicles, [(start + 3600 * k, n) for k, n in enumerate(by_hour)])


def _stamp(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%d %H:%M UTC")


def _figures(report: ShiftReport) -> list[Figure]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figures = []
    fig, ax = plt.subplots(figsize=(8, 3))
    ax.bar([k for k in range(len(report.finished_by_hour))], [n for _, n in report.finished_by_hour], color="#3b82f6")
    ax.set_title("orders finished per hour")
    ax.set_xlabel("hour of the period")
    figures.append(fig)
    fig, ax = plt.subplots(figsize=(8, 3))
    leads = [o.lead_s / 60 for o in report.finished if o.lead_s is not None]
    ax.hist(leads or [0], bins=30, color="#f59e0b")
    ax.set_title(f"lead time (minutes), {len(leads)} orders")
    figures.append(fig)
    fig, ax = plt.subplots(figsize=(8, 3))
    ax.bar([v.vehicle_id for v in report.vehicles], [100 * v.utilisation for v in report.vehicles], color="#34d399")
    ax.set_title("time on orders per vehicle (%)")
    ax.tick_params(axis="x", rotation=60, labelsize=7)
    figures.append(fig)
    for fig in figures:
        fig.tight_layout()
    return figures


STYLE = (
    "body{font:14px system-ui,sans-serif;margin:2rem;max-width:60rem}"
    "table{border-collapse:collapse;margin:.5rem 0 1.5rem}"
    "th,td{text-align:left;padding:2px 10px;border-bottom:1px solid #ddd}img{max-width:100%;display:block}"
)


def render_html(report: ShiftReport) -> str:
    """One self-contained page: the KPIs, the plots (inline PNG), late orders, vehicles."""
    import matplotlib.pyplot as plt

    images = []
    for fig in _figures(report):
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=90)
        plt.close(fig)
        images.append(base64.b64encode(buf.getvalue()).decode())
    esc = html.escape
    kpis = "".join(f"<tr><th>{esc(k.replace('_', ' '))}</th><td>{v}</td></tr>" for k, v in report.kpis().items())
    late = "".join(
        f"<tr><td>{esc(o.id)}</td><td>{esc(o.pickup)} &rarr; {esc(o.dropoff)}</td><td>{esc(o.vehicle_id)}</td>"
        f"<td>{round((o.late_s or 0) / 60)} min</td></tr>"
        for o in sorted(report.late, key=lambda o: -(o.late_s or 0))
    )
    vehicles = "".join(
        f"<tr><td>{esc(v.vehicle_id)}</td><td>{v.delivered}</td><td>{round(100 * v.utilisation)} %</td></tr>"
        for v in report.vehicles
    )
    plots = "".join(f'<img alt="plot" src="data:image/png;base64,{img}">' for img in images)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{esc(report.title)}</title>
<style>{STYLE}</style></head>
<body><h1>{esc(report.title)}</h1><p>{_stamp(report.start)} to {_stamp(report.end)} ({report.hours:.1f} h)</p>
<h2>KPIs</h2><table>{kpis}</table>{plots}
<h2>Late orders ({len(report.late)})</h2>
<table><tr><th>order</th><th>from &rarr; to</th><th>vehicle</th><th>late</th></tr>{late}</table>
<h2>Vehicles</h2><table><tr><th>vehicle</th><th>delivered</th><th>time on orders</th></tr>{vehicles}</table>
<p>Waiting by cause and alarms are not kept in storage: the control room's live panel shows them.</p>
</body></html>
"""


def orders_csv(report: ShiftReport) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    fields = list(OrderLine.__dataclass_fields__)
    writer.writerow(fields)
    for line in report.orders:
        writer.writerow(["" if getattr(line, f) is None else getattr(line, f) for f in fields])
    return out.getvalue()


def kpis_csv(report: ShiftReport) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["kpi", "value"])
    for name, value in report.kpis().items():
        writer.writerow([name, value])
    return out.getvalue()


def write_report(report: ShiftReport, folder: Path) -> list[Path]:
    """report.html, report.pdf (the plots and KPIs), orders.csv and kpis.csv in `folder`."""
    import matplotlib.pyplot as plt
    from matplotlib.backends.backend_pdf import PdfPages

    folder.mkdir(parents=True, exist_ok=True)
    written = [folder / "report.html", folder / "orders.csv", folder / "kpis.csv", folder / "report.pdf"]
    written[0].write_text(render_html(report))
    written[1].write_text(orders_csv(report))
    written[2].write_text(kpis_csv(report))
    with PdfPages(written[3]) as pdf:
        cover, ax = plt.subplots(figsize=(8, 5))
        ax.axis("off")
        text = "\n".join(f"{k.replace('_', ' ')}: {v}" for k, v in report.kpis().items())
        ax.text(0, 1, f"{report.title}\n{_stamp(report.start)} to {_stamp(report.end)}\n\n{text}", va="top")
        for fig in [cover, *_figures(report)]:
            pdf.savefig(fig)
            plt.close(fig)
    return written
