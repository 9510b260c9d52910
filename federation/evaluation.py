"""Uplift ranking quality: Qini curves from randomised logs or from known true uplift.

Pure functions of arrays. :func:`qini_coefficient` judges a ranking on randomised data
(treatment and control rows of held-out customers): the Qini curve at a fraction φ of the
ranked rows is ``Y_t(φ) − Y_c(φ)·N_t(φ)/N_c(φ)``; the coefficient is its mean height above
the random-ranking diagonal, per treated row. :func:`uplift_auc_truth` does the same with each
row's true uplift (nature's counterfactual) instead of the arms. Both are 0 for a random
ranking and positive when the model puts high-uplift rows first.
"""

from __future__ import annotations

import numpy as np

__all__ = ["FRACTIONS", "qini_coefficient", "qini_curve", "redemption_auc",
           "uplift_auc_truth"]

FRACTIONS: np.ndarray = np.linspace(0.05, 1.0, 20)


def _order(score: np.ndarray) -> np.ndarray:
    # Stable sort on -score: ties keep input order, so results are deterministic.
    return np.argsort(-np.asarray(score, dtype=np.float64), kind="stable")


def qini_curve(score: np.ndarray, treated: np.ndarray, outcome: np.ndarray,
               fractions: np.ndarray = FRACTIONS) -> np.ndarray:
    """Incremental outcome among the top fraction of rows ranked by ``score``."""
    if not (len(score) == len(treated) == len(outcome)):
        raise ValueError("qini_curve: score, treated and outcome must have equal lengths")
    o = _order(score)
    t = np.asarray(treated, dtype=bool)[o]
    y = np.asarray(outcome, dtype=np.float64)[o]
    yt, yc = np.cumsum(y * t), np.cumsum(y * ~t)
    nt, nc = np.cumsum(t), np.cumsum(~t)
    k = np.clip(np.ceil(fractions * len(o)).astype(int) - 1, 0, max(len(o) - 1, 0))
    return yt[k] - yc[k] * nt[k] / np.maximum(nc[k], 1)


def qini_coefficient(score: np.ndarray, treated: np.ndarray, outcome: np.ndarray,
                     fractions: np.ndarray = FRACTIONS) -> float:
    """Mean height of the Qini curve above the random diagonal, per treated row."""
    n_t = int(np.sum(np.asarray(treated, dtype=bool)))
    if n_t == 0 or n_t == len(treated):
        raise ValueError("qini_coefficient: needs both treated and control rows")
    q = qini_curve(score, treated, outcome, fractions)
    return float(np.mean(q - fractions * q[-1]) / n_t)


def uplift_auc_truth(score: np.ndarray, true_uplift: np.ndarray,
                     fractions: np.ndarray = FRACTIONS) -> float:
    """Mean cumulative true uplift of the top fraction above random, per row."""
    if len(score) != len(true_uplift) or len(score) == 0:
        raise ValueError("uplift_auc_truth: score and true_uplift must be equal and non-empty")
    u = np.asarray(true_uplift, dtype=np.float64)[_order(score)]
    c = np.cumsum(u)
    k = np.clip(np.ceil(fractions * len(u)).astype(int) - 1, 0, len(u) - 1)
    return float(np.mean(c[k] - fractions * c[-1]) / len(u))


def redemption_auc(p: np.ndarray, redeemed: np.ndarray) -> float:
    """ROC AUC of redemption probabilities (Mann–Whitney, ties averaged); NaN if one class."""
    y = np.asarray(redeemed, dtype=bool)
    n1, n0 = int(y.sum()), int((~y).sum())
    if n1 == 0 or n0 == 0:
        return float("nan")
    order = np.argsort(p, kind="stable")
    ranks = np.empty(len(p), dtype=np.float64)
    sp = np.asarray(p)[order]
    ranks[order] = np.arange(1, len(p) + 1)
    # average ranks over ties
    _, inv, counts = np.unique(sp, return_inverse=True, return_counts=True)
    sums = np.bincount(inv, weights=ranks[order])
    ranks[order] = (sums / counts)[inv]
    return float((ranks[y].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))
