"""Accounting cross-checks: ledger ε vs OpenDP, RDP vs PLD for DP-SGD, both directions."""

from __future__ import annotations

import math

import opendp.prelude as dp
import pytest

from privacy.accounting import (
    DpEvent,
    calibrate_dpsgd_noise,
    compose_epsilon,
    dpsgd_epsilon_pld,
    dpsgd_epsilon_rdp,
    round_down,
    round_up,
    zcdp_delta,
    zcdp_epsilon,
    zcdp_rho_for_epsilon,
)
from privacy.mechanisms import calibrate_scale, loss_for_scale

dp.enable_features("contrib")


def _gauss(scale: float) -> dp.Measurement:
    return dp.m.make_gaussian(dp.vector_domain(dp.atom_domain(T="i64"), size=1),
                              dp.l2_distance(T="i64"), scale=scale)


@pytest.mark.parametrize("scales", [[1.0], [3.0] * 5, [10.0, 20.0, 50.0], [300.0] * 8,
                                    [2.0, 7.5, 40.0, 40.0]])
@pytest.mark.parametrize("delta", [1e-8, 1e-5])
def test_ledger_epsilon_matches_opendp_zcdp_to_approxdp(scales: list[float], delta: float):
    meas = [_gauss(s) for s in scales]
    opendp_eps = dp.c.make_zCDP_to_approxDP(dp.c.make_composition(meas)).map(1).epsilon(delta)
    events = [DpEvent(kind="gaussian", rho=m.map(1)) for m in meas]
    ledger_eps = compose_epsilon(events, delta)
    assert ledger_eps >= opendp_eps  # conservative
    assert ledger_eps <= opendp_eps * (1 + 5e-4) + 2e-9  # and tight
    # the exact conversion alone agrees with OpenDP to the rounding grid
    assert abs(zcdp_epsilon(sum(e.rho for e in events), delta) - opendp_eps) < 2e-9


def test_zcdp_delta_is_inverse_of_epsilon():
    for rho in (0.001, 0.05, 0.5):
        eps = zcdp_epsilon(rho, 1e-8)
        assert zcdp_delta(rho, eps) <= 1e-8 < zcdp_delta(rho, eps - 1e-6)


def test_rho_for_epsilon_is_the_inverse_of_the_ledger_conversion():
    rho = zcdp_rho_for_epsilon(1.0, 1e-8)
    assert compose_epsilon([DpEvent(kind="gaussian", rho=rho)], 1e-8) <= 1.0
    assert compose_epsilon([DpEvent(kind="gaussian", rho=rho * 1.001)], 1e-8) > 1.0


def test_laplace_composes_by_the_better_of_pure_sum_and_zcdp():
    three = [DpEvent(kind="laplace", epsilon=0.5)] * 3
    assert compose_epsilon(three, 1e-8) == 1.5
    assert compose_epsilon(three, 0.0) == 1.5
    many = [DpEvent(kind="laplace", epsilon=0.01)] * 400  # zCDP route wins for many small ones
    assert compose_epsilon(many, 1e-8) < 4.0
    mixed = compose_epsilon([DpEvent(kind="laplace", epsilon=0.2),
                             DpEvent(kind="gaussian", rho=0.01)], 1e-8)
    assert mixed <= 0.2 + compose_epsilon([DpEvent(kind="gaussian", rho=0.01)], 1e-8) + 1e-9


def test_gaussian_with_pure_delta_is_infinite():
    assert math.isinf(compose_epsilon([DpEvent(kind="gaussian", rho=0.1)], 0.0))


@pytest.mark.parametrize(("sigma", "q", "steps"), [(1.1, 0.01, 1000), (0.8, 0.05, 200),
                                                   (2.0, 0.001, 5000)])
def test_dpsgd_rdp_is_conservative_against_pld(sigma: float, q: float, steps: int):
    rdp_eps = dpsgd_epsilon_rdp(sigma, q, steps, 1e-6)
    pld_eps = dpsgd_epsilon_pld(sigma, q, steps, 1e-6)
    assert pld_eps <= rdp_eps <= pld_eps * 1.6  # the ledger charges the larger


def test_dpsgd_composes_with_gaussian_releases_in_rdp():
    sgd = DpEvent(kind="dpsgd", noise_multiplier=1.0, sampling_rate=0.01, steps=100)
    gauss = DpEvent(kind="gaussian", rho=0.01)
    both = compose_epsilon([sgd, gauss], 1e-8)
    assert both > max(compose_epsilon([sgd], 1e-8), compose_epsilon([gauss], 1e-8))
    assert both <= compose_epsilon([sgd], 1e-8) + compose_epsilon([gauss], 1e-8)


def test_calibrate_dpsgd_noise_both_directions():
    sigma = calibrate_dpsgd_noise(1.0, 0.01, 300, 1e-8)
    assert dpsgd_epsilon_rdp(sigma, 0.01, 300, 1e-8) <= 1.0
    assert dpsgd_epsilon_rdp(sigma - 2e-3, 0.01, 300, 1e-8) > 1.0


@pytest.mark.parametrize("mechanism", ["gaussian", "laplace"])
@pytest.mark.parametrize("sensitivity", [1, 7, 50_000])
def test_mechanism_calibration_both_directions(mechanism, sensitivity):
    scale = calibrate_scale(mechanism, 0.1, sensitivity)
    assert loss_for_scale(mechanism, scale, sensitivity) <= 0.1
    assert loss_for_scale(mechanism, scale * 0.999, sensitivity) > 0.1


def test_rounding_is_conservative_and_idempotent():
    for x in (0.1, 1.0000000001, 6.0861635970000005, 1e-12, 2.0):
        up = round_up(x)
        assert up >= x and round_up(up) == up and up - x < 1e-9 + 1e-15
        assert round_down(x) <= x
    assert round_down(-0.0) == 0.0


@pytest.mark.parametrize("bad", [-0.1, float("nan"), float("inf"), 0.0, "1"])
def test_bad_epsilon_refused(bad):
    with pytest.raises(ValueError, match="epsilon"):
        DpEvent(kind="laplace", epsilon=bad)


@pytest.mark.parametrize("bad", [1.0, 1.5, -1e-9, float("nan")])
def test_bad_delta_refused(bad):
    with pytest.raises(ValueError, match="delta"):
        compose_epsilon([DpEvent(kind="gaussian", rho=0.1)], bad)


@pytest.mark.parametrize("bad", [0, -1, 1.5, True])
def test_bad_sensitivity_refused(bad):
    with pytest.raises(ValueError, match="sensitivity"):
        calibrate_scale("gaussian", 0.1, bad)


def test_bad_dpsgd_parameters_refused():
    with pytest.raises(ValueError, match="sampling_rate"):
        DpEvent(kind="dpsgd", noise_multiplier=1.0, sampling_rate=0.0, steps=1)
    with pytest.raises(ValueError, match="steps"):
        DpEvent(kind="dpsgd", noise_multiplier=1.0, sampling_rate=0.1, steps=0)
    with pytest.raises(ValueError, match="noise_multiplier"):
        DpEvent(kind="dpsgd", noise_multiplier=-1.0, sampling_rate=0.1, steps=1)
