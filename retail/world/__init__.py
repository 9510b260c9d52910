"""Nature: the ground-truth retail world generator and its counterfactual oracle.

Nothing outside ``retail/world`` may import this package except tests, benchmarks and the
evaluation module: the twin pipeline must never see nature's parameters
(``tests/test_architecture.py`` enforces it for the hub-side packages).

- :func:`generate_world` writes a world folder (``world.json``, one folder per merchant with
  the four tables of :mod:`retail.schema`, and the hidden truth in ``_truth/``).
- :func:`counterfactual` answers "what would really happen with this offer" for the same
  customers after the observed period (common random numbers); :func:`forecast_truth` is
  its no-offer arm.
"""

from __future__ import annotations

from retail.world.counterfactual import Counterfactual, counterfactual, forecast_truth
from retail.world.generate import MerchantSummary, generate_world

__all__ = ["Counterfactual", "MerchantSummary", "counterfactual", "forecast_truth",
           "generate_world"]
