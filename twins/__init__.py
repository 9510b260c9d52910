"""Twins: public attribute schema, owner-side features, marginal workloads, synthesis.

Owner side: ``features`` (one row of attribute codes per consenting customer),
``campaign_outcomes`` (pre-noise response tables), ``workload_counts`` (pre-noise marginal
counts). Hub side: synthesisers fitted to noisy marginals (``get_synthesiser``), cohort
mixing across owners (``mix_twins``) and fidelity scores (``marginal_tvd``).
"""

from twins.features import features
from twins.fidelity import marginal_tvd, tvd
from twins.outcomes import DEFAULT_RESPONSE_ATTRIBUTES, OutcomeTable, campaign_outcomes
from twins.schema import LIFE_TAGS, SCHEMA, Attribute, CohortFilter, Domain, structural_constants
from twins.synth import (
    SYNTHESISERS,
    FittedModel,
    IndependentSynthesiser,
    MixtureModel,
    MixtureSynthesiser,
    Synthesiser,
    cohort_sizes,
    get_synthesiser,
    mix_twins,
)
from twins.workload import (
    MARGINAL_SENSITIVITY,
    Measurement,
    Workload,
    default_workload,
    marginal_counts,
    workload_counts,
)

__all__ = [
    "DEFAULT_RESPONSE_ATTRIBUTES",
    "LIFE_TAGS",
    "MARGINAL_SENSITIVITY",
    "SCHEMA",
    "SYNTHESISERS",
    "Attribute",
    "CohortFilter",
    "Domain",
    "FittedModel",
    "IndependentSynthesiser",
    "Measurement",
    "MixtureModel",
    "MixtureSynthesiser",
    "OutcomeTable",
    "Synthesiser",
    "Workload",
    "campaign_outcomes",
    "cohort_sizes",
    "default_workload",
    "features",
    "get_synthesiser",
    "marginal_counts",
    "marginal_tvd",
    "mix_twins",
    "structural_constants",
    "tvd",
    "workload_counts",
]
