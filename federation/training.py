"""Local DP-SGD rounds (Opacus) and federated averaging. Pure of any ledger or transport.

A local round takes the global weights and one owner's training examples — exactly one per
customer, so Opacus's example-level guarantee is a customer-level guarantee — and runs
``steps`` DP-SGD steps with Poisson sampling at rate ``q``, per-example clipping at
``max_grad_norm`` and Gaussian noise ``noise_multiplier × max_grad_norm``. The privacy cost
of the round is that of ``steps`` Poisson-subsampled Gaussian mechanisms, which the caller
charges to the owner's ledger *before* calling :func:`local_round`.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from opacus import PrivacyEngine
from torch.utils.data import DataLoader, TensorDataset

from federation.model import build_model, get_weights, per_example_loss, set_weights
from federation.settings import RoundSettings

__all__ = [
    "Examples",
    "RoundSettings",
    "check_update",
    "fedavg",
    "fit_nonprivate",
    "local_round",
    "new_engine",
    "sampling_rate",
]

Weights = dict[str, np.ndarray]


@dataclass(frozen=True, kw_only=True)
class Examples:
    """One training example per customer: design row, arm, redemption, scaled spend."""

    x: np.ndarray
    treated: np.ndarray
    redeemed: np.ndarray
    spend: np.ndarray

    def __post_init__(self) -> None:
        n = len(self.x)
        for name in ("treated", "redeemed", "spend"):
            if len(getattr(self, name)) != n:
                raise ValueError(f"Examples.{name}: {len(getattr(self, name))} rows != {n}")

    def __len__(self) -> int:
        return len(self.x)


def sampling_rate(n: int, expected_batch: int) -> float:
    """Opacus's Poisson rate for ``n`` examples at batch size B: 1 / ceil(n / B)."""
    if n < 1:
        raise ValueError(f"n: no training examples (got {n})")
    return 1.0 / math.ceil(n / expected_batch)


def new_engine() -> PrivacyEngine:
    """An Opacus engine with the RDP accountant (one per owner and run)."""
    with warnings.catch_warnings():
        # "Secure RNG turned off": torchcsprng is not available here (documented gap).
        warnings.simplefilter("ignore", UserWarning)
        return PrivacyEngine(accountant="rdp")


def _loader(ex: Examples, batch: int) -> DataLoader:
    t = TensorDataset(torch.as_tensor(ex.x, dtype=torch.float32),
                      torch.as_tensor(ex.treated, dtype=torch.float32),
                      torch.as_tensor(ex.redeemed, dtype=torch.float32),
                      torch.as_tensor(ex.spend, dtype=torch.float32))
    return DataLoader(t, batch_size=batch)


def local_round(weights: Mapping[str, np.ndarray], ex: Examples, *, settings: RoundSettings,
                noise_multiplier: float, engine: PrivacyEngine,
                seed: int | None = None) -> Weights:
    """One owner's DP-SGD round from ``weights``; returns the new weights.

    ``engine`` is the owner's persistent Opacus ``PrivacyEngine`` (accountant ``rdp``), so its
    accountant sums this owner's rounds — the independent cross-check of the ledger.
    ``seed`` fixes sampling and noise for tests only; in service leave it ``None``.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a tiny MLP: one thread is fastest and leaves the cores to others
    try:
        return _local_round(weights, ex, settings, noise_multiplier, engine, seed)
    finally:
        torch.set_num_threads(threads)


def _local_round(weights: Mapping[str, np.ndarray], ex: Examples, settings: RoundSettings,
                 noise_multiplier: float, engine: PrivacyEngine, seed: int | None) -> Weights:
    model = build_model(settings.model)
    set_weights(model, weights)
    model.train()
    opt = torch.optim.SGD(model.parameters(), lr=settings.learning_rate)
    gen = torch.Generator().manual_seed(seed) if seed is not None else None
    with warnings.catch_warnings():
        # Opacus warns that secure_mode is off (no torchcsprng here) — documented gap.
        warnings.simplefilter("ignore")
        dp_model, dp_opt, loader = engine.make_private(
            module=model, optimizer=opt, data_loader=_loader(ex, settings.expected_batch),
            noise_multiplier=noise_multiplier, max_grad_norm=settings.max_grad_norm,
            poisson_sampling=True, noise_generator=gen)
        if gen is not None:
            loader.batch_sampler.generator = gen
        _steps(dp_model, dp_opt, loader, settings.steps_per_round)
    return get_weights(dp_model)


def _steps(model: torch.nn.Module, opt: torch.optim.Optimizer, loader: DataLoader,
           steps: int) -> None:
    done = 0
    while done < steps:  # a "round" is a fixed number of steps, not an epoch
        for x, t, r, s in loader:
            opt.zero_grad()
            per_example_loss(model(x), t, r, s).mean().backward()
            opt.step()
            done += 1
            if done >= steps:
                return


def check_update(weights: Mapping[str, np.ndarray], reference: Mapping[str, np.ndarray]) -> None:
    """Refuse an update whose names, shapes or values (NaN/inf) do not fit the global model."""
    if set(weights) != set(reference):
        raise ValueError(f"update: parameter names {sorted(weights)} != {sorted(reference)}")
    for k, v in weights.items():
        arr = np.asarray(v)
        if arr.shape != np.shape(reference[k]):
            raise ValueError(f"update[{k!r}]: shape {arr.shape} != {np.shape(reference[k])}")
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"update[{k!r}]: non-finite values")


def fedavg(updates: Sequence[Mapping[str, np.ndarray]],
           public_weights: Sequence[float]) -> Weights:
    """Federated averaging with public weights (size buckets, never private counts)."""
    if not updates:
        raise ValueError("fedavg: no updates to average")
    if len(updates) != len(public_weights) or min(public_weights) <= 0:
        raise ValueError(f"fedavg: need one positive weight per update (got {public_weights})")
    w = np.asarray(public_weights, dtype=np.float64) / float(np.sum(public_weights))
    return {k: np.sum([wi * np.asarray(u[k], dtype=np.float64) for wi, u in zip(w, updates,
                                                                              strict=True)],
                      axis=0).astype(np.float32)
            for k in updates[0]}


def fit_nonprivate(ex: Examples, settings: RoundSettings, *, epochs: int = 20,
                   batch: int = 512, lr: float = 3e-3, seed: int = 0) -> Weights:
    """Reference (NOT private) fit on pooled examples: the upper bound in benchmarks only."""
    gen = torch.Generator().manual_seed(seed)
    model = build_model(settings.model)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    x, t, r, s = (torch.as_tensor(a, dtype=torch.float32)
                  for a in (ex.x, ex.treated, ex.redeemed, ex.spend))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny MLP: more threads only spin against each other
    try:
        model.train()
        for _ in range(epochs):
            order = torch.randperm(len(x), generator=gen)
            for i in range(0, len(x), batch):  # index batches: no per-row Python
                idx = order[i:i + batch]
                opt.zero_grad()
                per_example_loss(model(x[idx]), t[idx], r[idx], s[idx]).mean().backward()
                opt.step()
    finally:
        torch.set_num_threads(threads)
    return get_weights(model)
