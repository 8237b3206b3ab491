"""The live view of a distributed fetch: totals, throughput, per-worker rows and
the latency distribution (p50/p95/p99) of every timing phase, from the
aggregated snapshots the workers publish (never every event). Colours come from
``theme`` (JupyterLab's variables); worker addresses are shown through
``redact_url`` like every other address."""

from __future__ import annotations

import ipywidgets as widgets

from ..core.redact import redact_url
from .snapshot import esc
from .theme import BORDER, FG, FG_DIM, MONO

TABLE = f"font-size:12px;color:{FG};font-family:{MONO};border-collapse:collapse"
HEAD = f"color:{FG_DIM};border-bottom:1px solid {BORDER}"
PHASE_ORDER = ("queue", "dns", "connect", "tls", "send", "wait", "download", "total")


class ClusterView(widgets.VBox):
    def __init__(self, progress):
        self.progress = progress
        self.summary = widgets.HTML()
        self.bar = widgets.FloatProgress(min=0.0, max=1.0, value=0.0, layout={"width": "400px"})
        self.workers = widgets.HTML()
        self.latency = widgets.HTML()
        super().__init__([self.summary, self.bar, widgets.HBox([self.workers, self.latency])])
        self.refresh()

    def refresh(self, final: bool = False) -> None:
        s = self.progress.summary()
        finished = s["done"] + s["failed"]
        self.bar.value = finished / s["total"] if s["total"] else 1.0
        self.bar.bar_style = (
            "success" if final and not s["failed"] else ("warning" if final else "info")
        )
        self.summary.value = (
            f'<span style="color:{FG}">'
            f"<b>{s['total']:,} URLs</b> on {len(s['workers'])} worker(s): "
            f"{s['done']:,} done, {s['in_flight']:,} in flight, {s['failed']:,} failed — "
            f"{s['per_second']:,.0f} fetches/s over {s['elapsed']:.1f} s</span>"
        )
        rows = "".join(
            f"<tr><td>{esc(redact_url(addr))}</td><td>{w['done']:,}</td><td>{w['in_flight']:,}</td>"
            f"<td>{w['failed']:,}</td><td>{w['batches']}</td></tr>"
            for addr, w in sorted(s["workers"].items())
        )
        self.workers.value = (
            f'<table style="{TABLE};margin-right:2em"><tr style="{HEAD}"><th>worker</th>'
            f"<th>done</th><th>in flight</th><th>failed</th><th>batches</th></tr>{rows}</table>"
        )

        def ms(value):
            return "-" if value is None else f"{value * 1000:.1f}"

        lat = "".join(
            f"<tr><td>{p}</td><td>{ms(s['latency'][p][50])}</td><td>{ms(s['latency'][p][95])}</td>"
            f"<td>{ms(s['latency'][p][99])}</td></tr>"
            for p in PHASE_ORDER
            if p in s["latency"]
        )
        self.latency.value = (
            f'<table style="{TABLE}"><tr style="{HEAD}"><th>phase (ms)</th><th>p50</th>'
            f"<th>p95</th><th>p99</th></tr>{lat}</table>"
        )
