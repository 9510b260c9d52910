"""Privacy accounting: pure maths, no state.

Three kinds of event are charged to an owner (see :class:`DpEvent`):

* ``gaussian`` — an exact integer Gaussian release, ρ-zCDP (OpenDP's own ``map``);
* ``laplace`` — an exact integer Laplace release, pure ε-DP;
* ``dpsgd`` — ``steps`` rounds of Poisson-subsampled Gaussian DP-SGD (noise multiplier σ,
  sampling rate q), as run by Opacus.

Composition of a list of events at the owner's δ is the *smaller* of two valid bounds
(both are upper bounds on the true privacy loss, so the smaller is still one):

A. everything in Rényi DP — Gaussian releases as ``ZCDpEvent(ρ)``, Laplace releases as
   ``ZCDpEvent(ε²/2)`` (ε-DP implies ε²/2-zCDP), DP-SGD as subsampled Gaussian events —
   composed by dp-accounting's ``RdpAccountant``;
B. basic composition: Σ ε of the Laplace releases plus route A over the rest.

When only zCDP events are present, route A is computed two ways — the exact
Canonne–Kamath–Steinke conversion (the one OpenDP's ``make_zCDP_to_approxDP`` uses) on the
continuous order, and dp-accounting's RDP conversion on a dense grid of orders — and the
*larger* is kept: a guard against numerical error in either. Every reported ε is rounded up
to a multiple of :data:`EPS_GRID` (1e-9).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Literal

import dp_accounting as dpa
import numpy as np
from dp_accounting import pld, rdp

__all__ = [
    "EPS_GRID",
    "DpEvent",
    "EventTotals",
    "calibrate_dpsgd_noise",
    "compose_epsilon",
    "dpsgd_epsilon_pld",
    "dpsgd_epsilon_rdp",
    "round_down",
    "round_up",
    "validate_delta",
    "validate_epsilon",
    "zcdp_delta",
    "zcdp_epsilon",
    "zcdp_rho_for_epsilon",
]

EPS_GRID = 1e-9
EventKind = Literal["gaussian", "laplace", "dpsgd"]

# Dense orders for zCDP-only composition (cheap: the RDP of a zCDP event is closed form).
_DENSE_ORDERS: tuple[float, ...] = tuple(np.unique(np.concatenate([
    np.linspace(1.01, 12.0, 150), np.arange(12.0, 64.0, 0.25), np.arange(64.0, 256.0, 1.0),
    np.geomspace(256.0, 1e6, 200),
])).tolist())
# Integer-heavy orders for subsampled Gaussians (fractional orders there are slow and unstable).
_SGD_ORDERS: tuple[float, ...] = tuple(sorted(set(
    [1.0 + x / 10.0 for x in range(1, 100)] + list(range(11, 64)) + list(range(64, 257, 4))
    + [320, 384, 512, 768, 1024]
)))


def validate_epsilon(epsilon: float, name: str = "epsilon", *, allow_zero: bool = False) -> float:
    """Refuse NaN, infinite, negative (and by default zero) ε with a clear message."""
    if isinstance(epsilon, bool) or not isinstance(epsilon, (int, float)):
        raise ValueError(f"{name}: must be a number (got {epsilon!r})")
    value = float(epsilon)
    if not math.isfinite(value) or value < 0 or (value == 0 and not allow_zero):
        rule = "≥ 0" if allow_zero else "> 0"
        raise ValueError(f"{name}: must be a finite number {rule} (got {epsilon!r})")
    return value


def validate_delta(delta: float, name: str = "delta", *, allow_zero: bool = True) -> float:
    """Refuse NaN, δ < 0 and δ ≥ 1."""
    if isinstance(delta, bool) or not isinstance(delta, (int, float)):
        raise ValueError(f"{name}: must be a number (got {delta!r})")
    value = float(delta)
    if not math.isfinite(value) or value < 0 or value >= 1 or (value == 0 and not allow_zero):
        raise ValueError(f"{name}: must satisfy 0 {'≤' if allow_zero else '<'} δ < 1 "
                         f"(got {delta!r})")
    return value


def round_up(x: float, grid: float = EPS_GRID) -> float:
    """Smallest multiple of ``grid`` (a power of ten, as a decimal) that is ≥ x."""
    if math.isinf(x):
        return x
    exponent = round(math.log10(grid))
    k = math.floor(x / grid) - 1
    while float(f"{k}e{exponent}") < x:  # exact decimal comparison, idempotent on the grid
        k += 1
    return float(f"{k}e{exponent}")


def round_down(x: float, grid: float = EPS_GRID) -> float:
    """Largest multiple of ``grid`` that is ≤ x (for 'remaining' figures)."""
    return -round_up(-x, grid) + 0.0  # + 0.0 turns -0.0 into 0.0


@dataclass(frozen=True, kw_only=True)
class DpEvent:
    """One charged event. ``rho`` for gaussian, ``epsilon`` for laplace, the rest for dpsgd."""

    kind: EventKind
    rho: float = 0.0
    epsilon: float = 0.0
    noise_multiplier: float = 0.0
    sampling_rate: float = 0.0
    steps: int = 0

    def __post_init__(self) -> None:
        if self.kind == "gaussian":
            validate_epsilon(self.rho, "rho")
        elif self.kind == "laplace":
            validate_epsilon(self.epsilon, "epsilon")
        elif self.kind == "dpsgd":
            validate_epsilon(self.noise_multiplier, "noise_multiplier")
            q = self.sampling_rate
            if not (isinstance(q, (int, float)) and math.isfinite(q) and 0 < q <= 1):
                raise ValueError(f"sampling_rate: must be in (0, 1] (got {q!r})")
            if isinstance(self.steps, bool) or not isinstance(self.steps, int) or self.steps < 1:
                raise ValueError(f"steps: must be a positive integer (got {self.steps!r})")
        else:
            raise ValueError(f"kind: must be gaussian, laplace or dpsgd (got {self.kind!r})")

    def to_json_dict(self) -> dict[str, Any]:
        keys = {"gaussian": ("rho",), "laplace": ("epsilon",),
                "dpsgd": ("noise_multiplier", "sampling_rate", "steps")}[self.kind]
        return {"kind": self.kind, **{k: getattr(self, k) for k in keys}}

    @classmethod
    def from_json_dict(cls, data: dict[str, Any]) -> DpEvent:
        return cls(**data)


# --- exact zCDP -> (ε, δ) conversion (Canonne, Kamath, Steinke 2020, Prop. 12) ---------------

def zcdp_delta(rho: float, epsilon: float) -> float:
    """Smallest δ such that ρ-zCDP implies (ε, δ)-DP, optimising the Rényi order α.

    δ = exp((α-1)(αρ-ε) + α·ln(1-1/α)) / (α-1); any α > 1 gives a valid bound, so a slightly
    sub-optimal α only makes δ larger (safe).
    """
    if rho < 0 or epsilon < 0:
        raise ValueError(f"zcdp_delta: rho and epsilon must be ≥ 0 (got {rho!r}, {epsilon!r})")
    if rho == 0:
        return 0.0
    lo, hi = 1.0 + 1e-9, (epsilon + 1.0) / (2.0 * rho) + 2.0
    for _ in range(64):  # the derivative in α is increasing: bisect for its root
        alpha = (lo + hi) / 2.0
        if (2.0 * alpha - 1.0) * rho - epsilon + math.log1p(-1.0 / alpha) < 0:
            lo = alpha
        else:
            hi = alpha
    alpha = hi
    log_delta = (alpha - 1.0) * (alpha * rho - epsilon) + alpha * math.log1p(-1.0 / alpha)
    return min(1.0, math.exp(log_delta - math.log(alpha - 1.0)))


def zcdp_epsilon(rho: float, delta: float) -> float:
    """Smallest ε (rounded up to 1e-9) such that ρ-zCDP implies (ε, δ)-DP."""
    validate_delta(delta)
    if rho < 0 or math.isnan(rho):
        raise ValueError(f"rho: must be ≥ 0 (got {rho!r})")
    if rho == 0:
        return 0.0
    if delta == 0:
        return math.inf
    lo, hi = 0.0, rho + 2.0 * math.sqrt(rho * math.log(1.0 / delta)) + 1.0  # classic bound
    for _ in range(64):
        mid = (lo + hi) / 2.0
        if zcdp_delta(rho, mid) <= delta:
            hi = mid
        else:
            lo = mid
    return round_up(hi)


def zcdp_rho_for_epsilon(epsilon: float, delta: float) -> float:
    """Largest ρ whose ledger ε at δ (:func:`compose_epsilon` of one ρ event) is ≤ ``epsilon``.

    The inverse of the same conservative conversion the ledger charges with.
    """
    validate_epsilon(epsilon)
    validate_delta(delta, allow_zero=False)
    lo, hi = 0.0, epsilon
    for _ in range(50):
        mid = (lo + hi) / 2.0
        if mid > 0 and round_up(_route_a(mid, (), delta)) <= epsilon:
            lo = mid
        else:
            hi = mid
    return lo


# --- dp-accounting routes ---------------------------------------------------------------------

def _sgd_event(noise_multiplier: float, sampling_rate: float) -> dpa.DpEvent:
    return dpa.PoissonSampledDpEvent(sampling_rate, dpa.GaussianDpEvent(noise_multiplier))


def _rdp_epsilon(events: Iterable[dpa.DpEvent], delta: float, orders: Sequence[float]) -> float:
    accountant = rdp.RdpAccountant(orders=list(orders))
    for event in events:
        accountant.compose(event)
    return float(accountant.get_epsilon(delta))


def _grouped_sgd(sgd: tuple[tuple[float, float, int], ...]) -> list[dpa.DpEvent]:
    return [dpa.SelfComposedDpEvent(_sgd_event(s, q), n) for s, q, n in sgd]


def _route_a(rho: float, sgd: tuple[tuple[float, float, int], ...], delta: float) -> float:
    if not sgd:
        if rho == 0:
            return 0.0
        exact = zcdp_epsilon(rho, delta)
        dense = _rdp_epsilon([dpa.ZCDpEvent(rho)], delta, _DENSE_ORDERS)
        return max(exact, dense)
    events = _grouped_sgd(sgd) + ([dpa.ZCDpEvent(rho)] if rho > 0 else [])
    return _rdp_epsilon(events, delta, _SGD_ORDERS)


@lru_cache(maxsize=256)
def _epsilon_of_totals(gauss_rho: float, lap_sum: float, lap_rho: float,
                       sgd: tuple[tuple[float, float, int], ...], delta: float) -> float:
    if delta == 0:
        return math.inf if gauss_rho > 0 or sgd else round_up(lap_sum)
    route_a = _route_a(gauss_rho + lap_rho, sgd, delta)
    if lap_sum == 0:
        return round_up(route_a)
    return round_up(min(route_a, lap_sum + _route_a(gauss_rho, sgd, delta)))


class EventTotals:
    """Running sums of a sequence of events: all the composition needs (append-only).

    Sums are exact-rounded (``math.fsum``) over the stored values, so the result does not
    depend on how the sequence was built; identical (σ, q) DP-SGD rounds are grouped so the
    accountant computes each RDP curve once.
    """

    def __init__(self, events: Iterable[DpEvent] = ()) -> None:
        self._rho: list[float] = []
        self._lap: list[float] = []
        self._sgd: Counter[tuple[float, float]] = Counter()
        for event in events:
            self.add(event)

    def add(self, event: DpEvent) -> None:
        if event.kind == "gaussian":
            self._rho.append(event.rho)
        elif event.kind == "laplace":
            self._lap.append(event.epsilon)
        else:
            self._sgd[(event.noise_multiplier, event.sampling_rate)] += event.steps

    def epsilon(self, delta: float) -> float:
        """Conservative ε at δ of the composition (see the module doc), rounded up."""
        sgd = tuple((s, q, n) for (s, q), n in sorted(self._sgd.items()))
        return _epsilon_of_totals(math.fsum(self._rho), math.fsum(self._lap),
                                  math.fsum(x * x / 2.0 for x in self._lap), sgd,
                                  validate_delta(delta))


def compose_epsilon(events: Iterable[DpEvent], delta: float) -> float:
    """Conservative ε at δ of the composition of ``events`` (see module doc), rounded up."""
    return EventTotals(events).epsilon(delta)


# --- DP-SGD: both directions over the same accountant ----------------------------------------

def dpsgd_epsilon_rdp(noise_multiplier: float, sampling_rate: float, steps: int,
                      delta: float) -> float:
    """ε of ``steps`` Poisson-subsampled Gaussian rounds, RDP accountant (the ledger's)."""
    event = DpEvent(kind="dpsgd", noise_multiplier=noise_multiplier,
                    sampling_rate=sampling_rate, steps=steps)
    return compose_epsilon([event], validate_delta(delta, allow_zero=False))


def dpsgd_epsilon_pld(noise_multiplier: float, sampling_rate: float, steps: int,
                      delta: float, discretization: float = 1e-4) -> float:
    """The same ε by privacy-loss distributions (tighter; a cross-check, not for charging)."""
    accountant = pld.PLDAccountant(value_discretization_interval=discretization)
    accountant.compose(_sgd_event(noise_multiplier, sampling_rate), steps)
    return float(accountant.get_epsilon(validate_delta(delta, allow_zero=False)))


def calibrate_dpsgd_noise(target_epsilon: float, sampling_rate: float, steps: int,
                          delta: float, *, tol: float = 1e-3,
                          epsilon_fn: Callable[[float, float, int, float], float] | None = None,
                          ) -> float:
    """Smallest noise multiplier σ (to ``tol``) whose ε over ``steps`` rounds is ≤ target."""
    validate_epsilon(target_epsilon, "target_epsilon")
    fn = epsilon_fn or dpsgd_epsilon_rdp
    lo, hi = 0.05, 1.0
    while fn(hi, sampling_rate, steps, delta) > target_epsilon:
        lo, hi = hi, hi * 2.0
        if hi > 1e4:
            raise ValueError(f"target_epsilon {target_epsilon} unreachable with σ ≤ 1e4")
    while hi - lo > tol:
        mid = (lo + hi) / 2.0
        if fn(mid, sampling_rate, steps, delta) > target_epsilon:
            lo = mid
        else:
            hi = mid
    return hi
