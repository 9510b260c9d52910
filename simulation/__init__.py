"""simulation: twins shopping day by day, offers, and controlled experiments.

- ``params``: :class:`TwinParams` (per-twin behaviour arrays) from the public twin table.
- ``behaviour``: the pure decision rules (the specification both engines apply).
- ``response``: the :class:`ResponseModel` protocol, the parametric default, a registry.
- ``effects``: an :class:`retail.offers.Offer` as per-twin effect arrays (targeting, geo).
- ``model``: the Mesa :class:`MarketModel` with a reference and a vectorised engine.
- ``experiment`` / ``forecast``: treatment vs control with CRN and 95% intervals.
"""

from simulation.behaviour import OfferTerms, agent_day
from simulation.effects import OfferEffect, build_effect, margin_rate, target_mask
from simulation.experiment import (
    METRICS,
    Estimate,
    ExperimentResult,
    replication_seed,
    run_experiment,
)
from simulation.forecast import Forecast, forecast
from simulation.model import ENGINES, MarketModel, RunResult
from simulation.params import TwinParams, params_from_twins
from simulation.response import (
    OfferFeatures,
    ParametricResponse,
    Response,
    ResponseModel,
    get_response_model,
    register,
    response_models,
)
from simulation.synthetic import synthetic_twins

__all__ = [
    "ENGINES",
    "METRICS",
    "Estimate",
    "ExperimentResult",
    "Forecast",
    "MarketModel",
    "OfferEffect",
    "OfferFeatures",
    "OfferTerms",
    "ParametricResponse",
    "Response",
    "ResponseModel",
    "RunResult",
    "TwinParams",
    "agent_day",
    "build_effect",
    "forecast",
    "get_response_model",
    "margin_rate",
    "params_from_twins",
    "register",
    "replication_seed",
    "response_models",
    "run_experiment",
    "synthetic_twins",
    "target_mask",
]
