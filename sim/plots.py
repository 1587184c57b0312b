"""Plots of a simulated shift: throughput over time and the lead-time distribution."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from fleet.model import OrderState
from sim.runner import Simulation


def plot_shift(sim: Simulation, path: Path, bucket_s: float = 900.0) -> None:
    """Write a two-panel PNG: orders finished per hour (in buckets) and lead times."""
    finished = [o for o in sim.controller.orders.values() if o.state is OrderState.FINISHED]
    done_at = np.array([(o.entered(OrderState.FINISHED) or 0.0) - sim.start_time for o in finished])
    lead = np.array([(o.entered(OrderState.FINISHED) or 0.0) - o.created_at for o in finished])
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    edges = np.arange(0.0, max(sim.elapsed, bucket_s) + bucket_s, bucket_s)
    counts, _ = np.histogram(done_at, bins=edges)
    left.bar(edges[:-1] / 3600, counts * 3600 / bucket_s, width=bucket_s / 3600, align="edge", color="#3b7dd8")
    left.set_xlabel("shift time (h)")
    left.set_ylabel("orders finished per hour")
    left.set_title("throughput")
    if lead.size:
        right.hist(lead / 60, bins=40, color="#d8883b")
        right.axvline(np.percentile(lead, 95) / 60, color="k", linestyle="--", label="95th percentile")
        right.legend()
    right.set_xlabel("lead time (min)")
    right.set_ylabel("orders")
    right.set_title("lead time, call to delivery")
    fig.suptitle(f"{sim.fmap.name}: {len(sim.vehicles)} vehicles, {sim.elapsed / 3600:.1f} h")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
