"""Public settings of a federated training run (pure values; no torch import).

Kept apart from the model and training code so the light parts of a deployment (a Flower
``query`` handler, the hub catalogue) can read them without importing torch or Opacus.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from federation.encoding import FEATURE_DIM

__all__ = ["WEIGHTINGS", "ModelConfig", "RoundSettings", "averaging_weight"]

# How FedAvg weighs owners, from public inputs only (the size bucket, never a private count):
# "examples" = the bucket's weight (≈ proportional to customers), "sqrt" = its square root,
# "equal" = one per owner. docs/FEDERATION.md has what each measured on the medium world.
WEIGHTINGS: tuple[str, ...] = ("examples", "sqrt", "equal")


def averaging_weight(size_weight: float, weighting: str) -> float:
    """An owner's FedAvg weight under ``weighting``, from its public size-bucket weight.

    >>> [averaging_weight(4.0, w) for w in WEIGHTINGS]
    [4.0, 2.0, 1.0]
    """
    if not (math.isfinite(size_weight) and size_weight > 0):
        raise ValueError(f"averaging_weight: size_weight must be finite and > 0 "
                         f"(got {size_weight!r})")
    if weighting == "examples":
        return float(size_weight)
    if weighting == "sqrt":
        return math.sqrt(size_weight)
    if weighting == "equal":
        return 1.0
    raise ValueError(f"weighting: must be one of {', '.join(WEIGHTINGS)} (got {weighting!r})")


@dataclass(frozen=True, kw_only=True)
class ModelConfig:
    """Architecture. Public: every owner builds the same network from it."""

    input_dim: int = FEATURE_DIM
    # small: DP-SGD noise grows with the number of parameters (one hidden layer of 16 ranked
    # held-out redemptions best at ε = 1 on the medium world; docs/FEDERATION.md)
    hidden: tuple[int, ...] = (16,)
    seed: int = 0

    def __post_init__(self) -> None:
        if self.input_dim < 1:
            raise ValueError(f"ModelConfig.input_dim: must be >= 1 (got {self.input_dim!r})")
        if not self.hidden or any(h < 1 for h in self.hidden):
            raise ValueError(f"ModelConfig.hidden: positive layer widths (got {self.hidden!r})")


@dataclass(frozen=True, kw_only=True)
class RoundSettings:
    """What the hub asks for in every round. All public; ε is per owner for the whole run."""

    rounds: int
    target_epsilon: float
    delta: float = 1e-8
    expected_batch: int = 256
    steps_per_round: int = 32
    max_grad_norm: float = 1.0
    learning_rate: float = 0.5
    # FedAvg weighting of owners (WEIGHTINGS; see averaging_weight)
    weighting: str = "examples"
    model: ModelConfig = field(default_factory=ModelConfig)

    def __post_init__(self) -> None:
        _pos_int(self.rounds, "rounds")
        _pos_int(self.expected_batch, "expected_batch")
        _pos_int(self.steps_per_round, "steps_per_round")
        for name in ("target_epsilon", "max_grad_norm", "learning_rate"):
            v = getattr(self, name)
            if not (isinstance(v, int | float) and math.isfinite(v) and v > 0):
                raise ValueError(f"RoundSettings.{name}: must be a finite number > 0 (got {v!r})")
        if not (0 < self.delta < 1):
            raise ValueError(f"RoundSettings.delta: must be in (0, 1) (got {self.delta!r})")
        if self.weighting not in WEIGHTINGS:
            raise ValueError(f"RoundSettings.weighting: must be one of "
                             f"{', '.join(map(repr, WEIGHTINGS))} (got {self.weighting!r})")

    def to_config(self) -> dict[str, float | int | str]:
        """Flat scalars (for a Flower ConfigRecord); inverse of :meth:`from_config`."""
        return {"rounds": self.rounds, "target_epsilon": self.target_epsilon,
                "delta": self.delta, "expected_batch": self.expected_batch,
                "steps_per_round": self.steps_per_round, "max_grad_norm": self.max_grad_norm,
                "learning_rate": self.learning_rate, "weighting": self.weighting,
                "hidden": ",".join(map(str, self.model.hidden)), "model_seed": self.model.seed}

    @classmethod
    def from_config(cls, c: Mapping[str, Any]) -> RoundSettings:
        hidden = tuple(int(h) for h in str(c["hidden"]).split(","))
        return cls(rounds=int(c["rounds"]), target_epsilon=float(c["target_epsilon"]),
                   delta=float(c["delta"]), expected_batch=int(c["expected_batch"]),
                   steps_per_round=int(c["steps_per_round"]),
                   max_grad_norm=float(c["max_grad_norm"]),
                   learning_rate=float(c["learning_rate"]),
                   weighting=str(c["weighting"]),
                   model=ModelConfig(hidden=hidden, seed=int(c["model_seed"])))


def _pos_int(v: object, name: str) -> None:
    if isinstance(v, bool) or not isinstance(v, int) or v < 1:
        raise ValueError(f"RoundSettings.{name}: must be a positive integer (got {v!r})")


