"""Pure parts of the federated model: encoding, Qini, FedAvg, DP-SGD rounds, the adapter."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from federation.encoding import CUSTOMER_DIM, FEATURE_DIM, PairTerms, customer_matrix, design_matrix
from federation.evaluation import qini_coefficient, redemption_auc, uplift_auc_truth
from federation.model import build_model, get_weights, predict, set_weights
from federation.response import LearnedResponse, load_model, save_model
from federation.settings import RoundSettings
from federation.training import Examples, fedavg, fit_nonprivate, local_round, new_engine
from privacy.accounting import dpsgd_epsilon_rdp
from simulation.params import TwinParams
from simulation.response import OfferFeatures, ResponseModel
from twins.schema import SCHEMA


def _codes(n: int, seed: int = 0) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    return pl.DataFrame({a.name: rng.integers(0, a.cardinality, n).astype(np.uint8)
                         for a in SCHEMA.attributes})


def _terms(n: int, relevance: np.ndarray | None = None) -> PairTerms:
    return PairTerms(depth=np.full(n, 0.2), relevance=np.ones(n) if relevance is None
                     else relevance, geo=np.ones(n), fee_burden=np.zeros(n))


def test_customer_one_hot_has_one_level_per_attribute() -> None:
    m = customer_matrix(_codes(50))
    assert m.shape == (50, CUSTOMER_DIM) and (m.sum(axis=1) == len(SCHEMA)).all()
    bad = _codes(3).with_columns(pl.lit(250, pl.UInt8).alias("region"))
    with pytest.raises(ValueError, match="region"):
        customer_matrix(bad)


def test_design_rows_differ_by_offer_kind_and_terms() -> None:
    codes = _codes(4)
    a = design_matrix(codes, kind="discount", days=30, merchant_type="cafe", terms=_terms(4))
    b = design_matrix(codes, kind="membership", days=30, merchant_type="cafe", terms=_terms(4))
    assert a.shape == (4, FEATURE_DIM) and not np.array_equal(a, b)
    np.testing.assert_array_equal(a[:, :CUSTOMER_DIM], b[:, :CUSTOMER_DIM])
    with pytest.raises(ValueError, match="merchant_type"):
        design_matrix(codes, kind="discount", days=30, merchant_type="bank", terms=_terms(4))


def test_qini_rewards_the_right_ranking_and_is_zero_for_constant_scores() -> None:
    rng = np.random.default_rng(1)
    n = 4000
    tau = rng.random(n)
    treated = rng.random(n) < 0.5
    y = rng.normal(1.0, 0.1, n) + treated * 2 * tau
    good, bad = qini_coefficient(tau, treated, y), qini_coefficient(-tau, treated, y)
    assert good > 0.1 > -0.1 > bad
    assert uplift_auc_truth(tau, tau) > 0 > uplift_auc_truth(-tau, tau)
    assert uplift_auc_truth(np.zeros(n), tau) == pytest.approx(0, abs=0.02)
    assert redemption_auc(np.array([0.1, 0.9, 0.2, 0.8]), np.array([0, 1, 0, 1])) == 1.0


def test_fedavg_uses_public_weights_and_refuses_bad_input() -> None:
    a, b = {"w": np.zeros(3, np.float32)}, {"w": np.full(3, 3.0, np.float32)}
    np.testing.assert_allclose(fedavg([a, b], [2.0, 1.0])["w"], 1.0)
    with pytest.raises(ValueError):
        fedavg([a, b], [1.0])
    with pytest.raises(ValueError):
        fedavg([], [])


def _examples(n: int, seed: int) -> tuple[np.ndarray, Examples]:
    """Planted uplift: treated customers spend more the more relevant the offer is."""
    rng = np.random.default_rng(seed)
    codes = _codes(n, seed)
    x = design_matrix(codes, kind="discount", days=30, merchant_type="grocery",
                      terms=_terms(n, rng.random(n)))
    tau = x[:, FEATURE_DIM - 3]  # the relevance column of the pair terms
    t = (rng.random(n) < 0.5).astype(np.float32)
    spend = (0.5 + t * 2.0 * tau + rng.normal(0, 0.1, n)).astype(np.float32)
    redeemed = (t * (rng.random(n) < tau)).astype(np.float32)
    return tau, Examples(x=x, treated=t, redeemed=redeemed, spend=spend)


def test_dp_round_is_accounted_like_the_ledger_and_learns_uplift() -> None:
    settings = RoundSettings(rounds=6, target_epsilon=4.0, expected_batch=256,
                             steps_per_round=10, learning_rate=0.5)
    tau, ex = _examples(3000, 0)
    engine, w = new_engine(), get_weights(build_model(settings.model))
    for r in range(settings.rounds):
        w = local_round(w, ex, settings=settings, noise_multiplier=0.8, engine=engine, seed=r)
    q = 1 / np.ceil(3000 / 256)
    ledger_eps = dpsgd_epsilon_rdp(0.8, q, 60, 1e-8)
    assert engine.accountant.get_epsilon(1e-8) == pytest.approx(ledger_eps, rel=0.03)
    model = build_model(settings.model)
    set_weights(model, w)
    assert uplift_auc_truth(predict(model, ex.x).lift, tau) > 0.02


def test_learned_model_drives_the_simulation_through_the_protocol(tmp_path) -> None:  # type: ignore[no-untyped-def]
    settings = RoundSettings(rounds=1, target_epsilon=1.0)
    _, ex = _examples(2000, 3)
    weights = fit_nonprivate(ex, settings, epochs=60)
    learned = load_model(save_model(tmp_path / "m.npz", weights, settings.model))
    assert isinstance(learned, ResponseModel) and learned.name == "learned"
    params = TwinParams.synthetic(200, "grocery", seed=1)
    n = params.n
    feats = OfferFeatures(kind="discount", days=30, depth=np.full(n, 0.2),
                          relevance=np.linspace(0, 1, n), geo=np.ones(n), fee_burden=np.zeros(n))
    resp = learned.respond(params, feats)
    assert resp.p_redeem.shape == (n,) and (0 <= resp.p_redeem).all() and (resp.p_redeem <= 1).all()
    assert (resp.visit_lift >= 0).all()
    # more relevant offers lift more (what the model learned from the planted uplift)
    assert resp.visit_lift[n // 2:].mean() > resp.visit_lift[: n // 2].mean()
    with pytest.raises(ValueError, match="weights"):
        LearnedResponse(weights={"x": np.zeros(1)})
