"""The learned model as a simulation response model (``simulation.response.ResponseModel``).

:class:`LearnedResponse` reads what the simulation already gives a parametric model — the
twins' public attribute codes (``TwinParams.attributes``) and the offer's ``OfferFeatures``
(depth, relevance, geo, fee burden) — builds the same design rows the owners trained on, and
maps the model's outputs onto the simulation's ``Response``:

* ``p_redeem``: the model predicts redemption over the whole window; per-visit kinds get the
  per-visit probability ``1 − (1 − p)^(1/visits)`` with ``visits = visit_rate·days``;
* ``visit_lift``: predicted incremental spend over predicted base spend (clipped to [0, 2]),
  all of it attributed to extra visits (the logs measure spend, not its split);
* ``basket_lift`` 0, ``pull_forward`` 0, ``churn_mult`` from the parametric defaults (the
  campaign logs say nothing about churn).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from federation.encoding import PairTerms, design_matrix
from federation.model import build_model, predict, set_weights
from federation.settings import ModelConfig
from simulation.params import TwinParams
from simulation.response import OfferFeatures, ParametricResponse, Response, register

__all__ = ["LearnedResponse", "load_model", "register_learned", "save_model"]

_PER_VISIT = ("discount", "cross_sell", "membership", "points")


@dataclass(frozen=True, kw_only=True, eq=False)
class LearnedResponse:
    """A trained federated model behind the ``ResponseModel`` protocol."""

    weights: Mapping[str, np.ndarray] = field(repr=False)
    config: ModelConfig = field(default_factory=ModelConfig)
    name: str = "learned"
    max_lift: float = 2.0

    def __post_init__(self) -> None:
        model = build_model(self.config)
        set_weights(model, self.weights)  # raises naming a mismatched parameter
        object.__setattr__(self, "_model", model)

    def respond(self, params: TwinParams, features: OfferFeatures) -> Response:
        if params.attributes is None:
            raise ValueError("LearnedResponse: TwinParams.attributes (the twins' attribute "
                             "codes) is required; build params with params_from_twins")
        terms = PairTerms(depth=features.depth, relevance=features.relevance, geo=features.geo,
                          fee_burden=features.fee_burden)
        x = design_matrix(params.attributes, kind=features.kind, days=features.days,
                          merchant_type=params.merchant_type, terms=terms)
        pred = predict(self._model, x)  # type: ignore[attr-defined]
        p = np.clip(pred.p_redeem.astype(np.float64), 0.0, 1.0)
        if features.kind in _PER_VISIT:
            visits = np.maximum(params.visit_rate.astype(np.float64) * features.days, 1.0)
            p = 1.0 - np.power(1.0 - np.minimum(p, 1 - 1e-9), 1.0 / visits)
        lift = np.clip(pred.lift / np.maximum(pred.base_spend, 0.05), 0.0, self.max_lift)
        n = params.n
        churn = ParametricResponse().churn_mult.get(features.kind, 1.0)
        return Response(p_redeem=p.astype(np.float32), visit_lift=lift.astype(np.float32),
                        basket_lift=np.zeros(n, np.float32), pull_forward=np.zeros(n, np.float32),
                        churn_mult=np.full(n, churn, dtype=np.float32))


def save_model(path: str | Path, weights: Mapping[str, np.ndarray],
               config: ModelConfig | None = None) -> Path:
    """Write weights and architecture to one ``.npz`` file."""
    config = config or ModelConfig()
    meta = np.array([config.input_dim, config.seed, *config.hidden], dtype=np.int64)
    path = Path(path)
    arrays: dict[str, Any] = {"__config__": meta, **{k: np.asarray(v) for k, v in weights.items()}}
    np.savez(path, **arrays)
    return path


def load_model(path: str | Path) -> LearnedResponse:
    with np.load(Path(path)) as npz:
        meta = npz["__config__"].tolist()
        weights = {k: npz[k] for k in npz.files if k != "__config__"}
    config = ModelConfig(input_dim=int(meta[0]), seed=int(meta[1]),
                         hidden=tuple(int(h) for h in meta[2:]))
    return LearnedResponse(weights=weights, config=config)


def register_learned(path: str | Path, name: str = "learned") -> None:
    """Make a saved model available to the simulation as ``get_response_model(name)``."""
    register(name, lambda: load_model(path))
