"""Small UI building blocks shared by the pages: the world picker, error display, charts.

Nothing here computes a result; it only shows what the services return.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import altair as alt
import polars as pl
import streamlit as st

from app_pages import services
from privacy.budget import BudgetState

__all__ = [
    "budget_gauge",
    "daily_chart",
    "forecast_chart",
    "guard",
    "heatmap",
    "kpi_cards",
    "owner_picker",
    "require_world",
    "segment_chart",
    "world_sidebar",
]


def world_sidebar() -> None:
    """The world folder, shown on every page; starts from ``TWINSIM_WORLD``."""
    if "world" not in st.session_state:
        st.session_state["world"] = str(services.default_world())
    with st.sidebar:
        st.text_input("World folder", key="world",
                      help="A folder made by `twinsim world generate` (or your own merchants).")


def require_world() -> Path | None:
    """The chosen world folder, or ``None`` after telling the user what is wrong."""
    path = Path(st.session_state.get("world") or services.default_world())
    problem = services.world_problem(path)
    if problem:
        st.warning(problem)
        return None
    return path


@contextmanager
def guard(action: str) -> Iterator[None]:
    """Show any error raised inside as a plain-language message, never a traceback."""
    try:
        yield
    except Exception as exc:  # the UI must not crash; the message says what to do
        st.error(f"Could not {action}: {services.explain(exc)}")


def kpi_cards(kpis: pl.DataFrame) -> None:
    """One metric card per KPI row (columns: kpi, label, value, low, high, unit)."""
    cols = st.columns(max(kpis.height, 1))
    for col, row in zip(cols, kpis.iter_rows(named=True), strict=False):
        fmt = services.format_value
        col.metric(row["label"], fmt(row["value"], row["unit"]), border=True,
                   help=f"95% confidence interval: {fmt(row['low'], row['unit'])} to "
                        f"{fmt(row['high'], row['unit'])}")
        col.caption(f"95% CI {fmt(row['low'], row['unit'])} – {fmt(row['high'], row['unit'])}")


def daily_chart(daily: pl.DataFrame, value: str, title: str) -> alt.Chart:
    """Treatment versus control per day (long table: day, arm, <value>)."""
    return (alt.Chart(daily.to_pandas(), title=title)
            .mark_line(point=False)
            .encode(x=alt.X("day:Q", title="day"), y=alt.Y(f"{value}:Q", title=value),
                    color=alt.Color("arm:N", title="arm"),
                    tooltip=["day", "arm", alt.Tooltip(f"{value}:Q", format=",.1f")]))


def heatmap(grid: pl.DataFrame, x: str, y: str, value: str, title: str) -> alt.LayerChart:
    """A heat map of ``value`` over ``x`` × ``y`` with the numbers printed in the cells."""
    rows = max(1, grid[y].n_unique())
    base = alt.Chart(grid.to_pandas(), title=title, height=max(120, 48 * rows)).encode(
        x=alt.X(f"{x}:O", title=x, axis=alt.Axis(labelAngle=0)), y=alt.Y(f"{y}:N", title=y))
    cells = base.mark_rect().encode(
        color=alt.Color(f"{value}:Q", title=value, scale=alt.Scale(scheme="redyellowgreen")),
        tooltip=[x, y, alt.Tooltip(f"{value}:Q", format=".2f")])
    text = base.mark_text(baseline="middle").encode(text=alt.Text(f"{value}:Q", format=".2f"))
    return cells + text


def owner_picker(world: Path, *, key: str) -> str | None:
    """Choose a data owner of the world; returns its folder."""
    with guard("list the owners"):
        table = services.merchants(str(world))
        labels = {r["merchant_id"]: f"{r['name']} ({r['merchant_id']}, {r['type']})"
                  for r in table.iter_rows(named=True)}
        chosen = st.selectbox("Data owner", list(labels), format_func=labels.__getitem__,
                              key=key)
        return str(table.filter(pl.col("merchant_id") == chosen)["folder"][0])
    return None


def budget_gauge(state: BudgetState) -> None:
    """Spent and remaining ε at δ: a bar gauge and the numbers."""
    share = min(1.0, state.spent_epsilon / state.cap_epsilon) if state.cap_epsilon else 1.0
    cols = st.columns(4)
    cols[0].metric("Spent ε", f"{state.spent_epsilon:.3g}", border=True)
    cols[1].metric("Remaining ε", f"{state.remaining_epsilon:.3g}", border=True)
    cols[2].metric("Cap ε", f"{state.cap_epsilon:.3g}", border=True)
    cols[3].metric("δ", f"{state.delta:.0e}", border=True)
    st.progress(share, text=f"{100 * share:.0f}% of the {state.period} budget spent")


def segment_chart(segments: pl.DataFrame) -> alt.Chart:
    """Incremental margin by segment, as bars."""
    return (alt.Chart(segments.to_pandas(), title="Incremental margin by segment")
            .mark_bar()
            .encode(x=alt.X("incremental_margin:Q", title="SEK"),
                    y=alt.Y("segment:N", sort="-x", title=None),
                    tooltip=["segment", alt.Tooltip("incremental_margin:Q", format=",.0f"),
                             alt.Tooltip("roi:Q", format=".2f")]))


def forecast_chart(daily: pl.DataFrame) -> alt.Chart:
    """Mean daily revenue without an offer."""
    return (alt.Chart(daily.to_pandas(), title="Business as usual: revenue per day")
            .mark_area(opacity=0.6)
            .encode(x=alt.X("day:Q"), y=alt.Y("revenue:Q", title="SEK"),
                    tooltip=["day", alt.Tooltip("revenue:Q", format=",.0f")]))
