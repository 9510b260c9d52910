"""Fidelity of twins: total variation distance over all 1-way and 2-way marginals.

Pure functions of two code tables (real feature table vs twins). The 2-way marginals of one
attribute against all others are counted with a single ``np.bincount`` over a combined index,
so ~20 attributes (190+ pairs) on 100k rows take well under a second.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import polars as pl

from twins.schema import Domain

__all__ = ["marginal_tvd", "tvd"]


def tvd(p: np.ndarray, q: np.ndarray) -> float:
    """Total variation distance between two count (or probability) vectors of one shape."""
    p = np.asarray(p, dtype=float).ravel()
    q = np.asarray(q, dtype=float).ravel()
    if p.shape != q.shape:
        raise ValueError(f"tvd: shapes differ, {p.shape} vs {q.shape}")
    return 0.5 * float(np.abs(p / p.sum() - q / q.sum()).sum())


def _codes(table: pl.DataFrame, names: Sequence[str]) -> np.ndarray:
    missing = [n for n in names if n not in table.columns]
    if missing:
        raise ValueError(f"marginal_tvd: table lacks attribute columns {missing}")
    return table.select(names).to_numpy().astype(np.int64)


def _cards(real: np.ndarray, synth: np.ndarray, names: Sequence[str],
           domain: Domain | None) -> np.ndarray:
    if domain is not None:
        return np.array([domain[n].cardinality for n in names], dtype=np.int64)
    return np.maximum(real.max(axis=0), synth.max(axis=0)).astype(np.int64) + 1


def _pair_counts(x: np.ndarray, i: int, others: np.ndarray, cmax: int) -> np.ndarray:
    """Joint counts of attribute ``i`` with each of ``others``: one bincount, padded cells."""
    block = cmax * cmax
    idx = x[:, i : i + 1] * cmax + x[:, others] + np.arange(others.size) * block
    return np.bincount(idx.ravel(), minlength=block * others.size).reshape(others.size, block)


def _pair_tvds(real: np.ndarray, synth: np.ndarray, cards: np.ndarray) -> np.ndarray:
    """TVD of every pair (i < j), in the order of ``itertools.combinations``."""
    d = cards.size
    cmax = int(cards.max())
    out: list[np.ndarray] = []
    for i in range(d - 1):
        others = np.arange(i + 1, d)
        p = _pair_counts(real, i, others, cmax) / real.shape[0]
        q = _pair_counts(synth, i, others, cmax) / synth.shape[0]
        out.append(0.5 * np.abs(p - q).sum(axis=1))
    return np.concatenate(out) if out else np.zeros(0)


def marginal_tvd(real: pl.DataFrame, synth: pl.DataFrame, domain: Domain | None = None,
                 names: Sequence[str] | None = None) -> dict[str, float]:
    """Mean and max TVD over all 1-way and all 2-way marginals of the attribute columns.

    ``names`` defaults to the domain's attributes (or the columns common to both tables,
    minus ``customer_id``/``owner``). Returns ``tvd_1way_mean``, ``tvd_1way_max``,
    ``tvd_2way_mean`` and ``tvd_2way_max``.
    """
    if names is None:
        if domain is not None:
            names = list(domain.names)
        else:
            skip = {"customer_id", "owner"}
            names = [c for c in real.columns if c in synth.columns and c not in skip]
    if real.height == 0 or synth.height == 0:
        raise ValueError("marginal_tvd: both tables need at least one row")
    r, s = _codes(real, names), _codes(synth, names)
    cards = _cards(r, s, names, domain)
    one = np.array([tvd(np.bincount(r[:, j], minlength=c), np.bincount(s[:, j], minlength=c))
                    for j, c in enumerate(cards)])
    two = _pair_tvds(r, s, cards)
    return {"tvd_1way_mean": float(one.mean()), "tvd_1way_max": float(one.max()),
            "tvd_2way_mean": float(two.mean()) if two.size else 0.0,
            "tvd_2way_max": float(two.max()) if two.size else 0.0}
