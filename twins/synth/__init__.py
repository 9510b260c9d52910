"""Twin synthesis from noisy marginals: a protocol, a registry, cohort mixing.

Registry names: ``"mixture"`` (latent-class model, ours) and ``"independent"`` (product of
noisy 1-way marginals, the baseline).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from twins.synth.base import (
    FittedModel,
    MixtureModel,
    Synthesiser,
    estimate_total,
    one_way_estimates,
    project_simplex,
)
from twins.synth.cohort import MIN_COHORT, cohort_sizes, mix_twins
from twins.synth.independent import IndependentSynthesiser
from twins.synth.mixture import MixtureSynthesiser

__all__ = [
    "MIN_COHORT",
    "SYNTHESISERS",
    "FittedModel",
    "IndependentSynthesiser",
    "MixtureModel",
    "MixtureSynthesiser",
    "Synthesiser",
    "cohort_sizes",
    "estimate_total",
    "get_synthesiser",
    "mix_twins",
    "one_way_estimates",
    "project_simplex",
]

SYNTHESISERS: dict[str, Callable[..., Synthesiser]] = {
    "mixture": MixtureSynthesiser,
    "independent": IndependentSynthesiser,
}


def get_synthesiser(name: str, **options: Any) -> Synthesiser:
    """A synthesiser by registry name, with keyword options for its constructor."""
    try:
        factory = SYNTHESISERS[name]
    except KeyError:
        raise ValueError(f"synthesiser: unknown name {name!r}; known: {sorted(SYNTHESISERS)}"
                         ) from None
    return factory(**options)
