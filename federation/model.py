"""The response model: a small torch network that learns uplift from randomised campaign logs.

Input: the public encoding of a customer and an offer (:mod:`federation.encoding`). Output,
from one shared trunk:

* ``redeem_logit`` — log-odds that a *treated* customer redeems;
* ``base`` — expected scaled spend in the window without the offer (control arm);
* ``lift`` — the offer's effect on scaled spend (treatment minus control), parameterised as
  ``P(redeem) × per_redeemer``: the offer moves spend through the customers who take it up.

Training sees each logged exposure with its arm ``t``: spend is fitted as ``base + t·lift``,
redemption on treated rows only. Because the arms were randomised, ``lift`` estimates the
incremental spend (uplift), not merely who spends.

Why the product (a two-part, "hurdle" uplift model): in campaign logs the spend difference
between arms is a small mean shift buried in spend noise, so a free lift head is fitted to
little more than noise — worse under DP-SGD, where every step adds Gaussian noise. Who
redeems is a far stronger, per-row signal and transfers between merchants. Tying the lift to
the redemption probability lets the weak spend signal set only the size of the effect per
redeemer, while the ranking of customers draws on the redemption evidence too. The cost: an
effect on customers who never redeem (pure awareness) is not represented.
Only layers Opacus supports per-sample (Linear, ReLU) are used.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from federation.encoding import FEATURE_DIM  # noqa: F401  (re-exported layout constant)
from federation.settings import ModelConfig

__all__ = [
    "ModelConfig",
    "Prediction",
    "UpliftNet",
    "build_model",
    "get_weights",
    "per_example_loss",
    "predict",
    "set_weights",
]


class UpliftNet(nn.Module):
    """Shared trunk with three heads: redemption logit, base spend, spend lift.

    The third output is the lift itself, ``sigmoid(redeem_logit) × per_redeemer`` (the last
    linear unit is the per-redeemer incremental spend), so every consumer of column 2 reads
    the incremental spend directly.
    """

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        width = config.input_dim
        for h in config.hidden:
            layers += [nn.Linear(width, h), nn.ReLU()]
            width = h
        self.trunk = nn.Sequential(*layers)
        self.head = nn.Linear(width, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.head(self.trunk(x))
        lift = torch.sigmoid(out[:, 0]) * out[:, 2]
        return torch.stack([out[:, 0], out[:, 1], lift], dim=1)


def build_model(config: ModelConfig | None = None) -> UpliftNet:
    """A freshly initialised network; the same seed gives the same weights everywhere."""
    config = config or ModelConfig()
    gen_state = torch.random.get_rng_state()
    torch.manual_seed(config.seed)
    try:
        return UpliftNet(config)
    finally:
        torch.random.set_rng_state(gen_state)


def per_example_loss(out: torch.Tensor, treated: torch.Tensor, redeemed: torch.Tensor,
                     spend: torch.Tensor) -> torch.Tensor:
    """Loss of each example (no reduction): Huber on spend plus BCE on treated redemption."""
    spend_hat = out[:, 1] + treated * out[:, 2]
    l_spend = nn.functional.huber_loss(spend_hat, spend, reduction="none", delta=1.0)
    l_redeem = nn.functional.binary_cross_entropy_with_logits(
        out[:, 0], redeemed, reduction="none") * treated
    return l_spend + l_redeem


def get_weights(model: nn.Module) -> dict[str, np.ndarray]:
    """The parameters as plain float32 arrays (what a model update carries)."""
    return {k.removeprefix("_module."): v.detach().cpu().numpy().astype(np.float32).copy()
            for k, v in model.state_dict().items()}


def set_weights(model: nn.Module, weights: Mapping[str, np.ndarray]) -> None:
    """Load arrays produced by :func:`get_weights`; names and shapes must match exactly."""
    own = model.state_dict()
    if set(own) != set(weights):
        raise ValueError(f"weights: names {sorted(weights)} do not match the model's "
                         f"{sorted(own)}")
    for k, v in weights.items():
        if tuple(own[k].shape) != tuple(np.shape(v)):
            raise ValueError(f"weights[{k!r}]: shape {np.shape(v)} != {tuple(own[k].shape)}")
    model.load_state_dict({k: torch.as_tensor(np.asarray(v)) for k, v in weights.items()})


@dataclass(frozen=True, kw_only=True)
class Prediction:
    """Per-row predictions on the model's scales (probability; scaled spend)."""

    p_redeem: np.ndarray
    base_spend: np.ndarray
    lift: np.ndarray


def predict(model: nn.Module, x: np.ndarray, *, batch: int = 65536) -> Prediction:
    """Predict for a design matrix (rows from :func:`federation.encoding.design_matrix`)."""
    model.eval()
    outs = []
    with torch.no_grad():
        for i in range(0, len(x), batch):
            outs.append(model(torch.as_tensor(x[i:i + batch])).numpy())
    out = np.concatenate(outs) if outs else np.zeros((0, 3), dtype=np.float32)
    return Prediction(p_redeem=1.0 / (1.0 + np.exp(-out[:, 0])), base_spend=out[:, 1],
                      lift=out[:, 2])
