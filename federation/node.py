"""The data owner: one merchant's raw data, consents and ledger behind three questions.

A :class:`DataOwner` answers exactly three kinds of request and nothing else leaves it:

* :meth:`DataOwner.describe` — public metadata (pseudonym, merchant type, regions, size
  bucket, period);
* :meth:`DataOwner.answer_release` — a DP ``Release`` (charged by the privacy core);
* :meth:`DataOwner.answer_training_round` — a DP model update (:class:`ModelUpdate`), the
  round charged to the ledger before the owner reads its data for it.

Held-out customers (a fixed public hash of the id) are never trained on; they let the owner
judge the global model on its own data (:mod:`federation.evaluation`) without it leaving.
"""

from __future__ import annotations

import hashlib
import secrets
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
from opacus import PrivacyEngine

from federation.budget import (
    RoundCharge,
    charge_round,
    noise_for_run,
    open_ledger,
    record_update,
    update_hash,
)
from federation.data import OwnerData, load_owner_data
from federation.messages import (
    SIZE_BUCKETS,
    ModelUpdate,
    OwnerDescription,
    TrainingRequest,
    describe_owner,
    size_bucket,
)
from federation.model import build_model, get_weights
from federation.training import (
    RoundSettings,
    check_update,
    local_round,
    new_engine,
    sampling_rate,
)
from privacy.budget import PrivacyBudget
from privacy.ledger import Ledger
from twinsim.errors import BudgetExceeded

__all__ = ["SIZE_BUCKETS", "DataOwner", "ModelUpdate", "OwnerDescription", "TrainingRequest",
           "size_bucket"]

class DataOwner:
    """One merchant folder behind the boundary. Not thread-safe; one per process or thread."""

    def __init__(self, folder: str | Path, *, requester: str = "hub",
                 seed: int | None = None, cap_epsilon: float | None = None,
                 noise: dict[str, float] | None = None) -> None:
        self.folder = Path(folder)
        self._requester = requester
        self._seed = seed
        self._cap = cap_epsilon
        self._engines: dict[str, PrivacyEngine] = {}
        self.noise_cache: dict[str, float] = dict(noise or {})  # "run|q" -> calibrated σ

    # -- private state -------------------------------------------------------------------
    @cached_property
    def _data(self) -> OwnerData:
        return load_owner_data(self.folder)

    @cached_property
    def budget(self) -> PrivacyBudget:
        kw: dict[str, Any] = {} if self._cap is None else {"cap_epsilon": self._cap}
        return open_ledger(self.folder, **kw)

    @property
    def ledger(self) -> Ledger:
        return self.budget.ledger

    def _rng(self, run_id: str, round_no: int) -> np.random.Generator:
        if self._seed is None:
            return np.random.default_rng(secrets.randbits(128))
        key = hashlib.sha256(f"{self._seed}/{run_id}/{round_no}".encode()).digest()
        return np.random.default_rng(int.from_bytes(key[:8], "big"))

    # -- the outward interface ------------------------------------------------------------
    def describe(self) -> OwnerDescription:
        return describe_owner(self.folder, self.budget)

    def answer_release(self, request: Any) -> Any:
        """A DP release for ``request`` (charged by the privacy core before anything leaves)."""
        from federation.releases import answer_release  # the twins/privacy pipeline, lazily

        return answer_release(self.folder, request, budget=self.budget)

    def answer_training_round(self, request: TrainingRequest) -> ModelUpdate:
        """Charge the round, run local DP-SGD, record the update's hash, return it."""
        s = request.settings
        # refuse a malformed global model before paying for a round with it
        check_update(request.weights, get_weights(build_model(s.model)))
        ex_pool = self._data.train
        q = sampling_rate(ex_pool.n_customers, s.expected_batch)
        sigma = self._sigma(request.run_id, s, q)
        try:
            charge = charge_round(self.budget, run_id=request.run_id, round_no=request.round_no,
                                  noise_multiplier=sigma, sampling_rate=q,
                                  steps=s.steps_per_round, max_grad_norm=s.max_grad_norm,
                                  requester=self._requester)
        except BudgetExceeded as exc:
            return self._refusal(request, f"budget exceeded: {exc}")
        examples = ex_pool.one_per_customer(self._rng(request.run_id, request.round_no))
        engine = self._engines.setdefault(request.run_id, new_engine())
        weights = local_round(request.weights, examples, settings=s, noise_multiplier=sigma,
                              engine=engine, seed=self._round_seed(request))
        check_update(weights, request.weights)
        return self._update(request, weights, charge)

    # -- helpers ---------------------------------------------------------------------------
    def _sigma(self, run_id: str, s: RoundSettings, q: float) -> float:
        key = f"{run_id}|{q!r}"
        if key not in self.noise_cache:
            self.noise_cache[key] = noise_for_run(s.target_epsilon, q,
                                                  s.rounds * s.steps_per_round,
                                                  self.ledger.head().delta)
        return self.noise_cache[key]

    def _round_seed(self, request: TrainingRequest) -> int | None:
        if self._seed is None:
            return None
        return int(self._rng(request.run_id, request.round_no).integers(2**62))

    def _refusal(self, request: TrainingRequest, reason: str) -> ModelUpdate:
        return ModelUpdate(owner=self.ledger.pseudonym, run_id=request.run_id,
                           round_no=request.round_no, took_part=False,
                           spent_epsilon=self.ledger.head().spent_epsilon, reason=reason)

    def _update(self, request: TrainingRequest, weights: dict[str, np.ndarray],
                charge: RoundCharge) -> ModelUpdate:
        digest = update_hash(weights)
        record_update(self.budget, charge, digest, requester=self._requester)
        return ModelUpdate(owner=self.ledger.pseudonym, run_id=request.run_id,
                           round_no=request.round_no, took_part=True, weights=weights,
                           round_epsilon=charge.round_epsilon,
                           spent_epsilon=charge.spent_epsilon, digest=digest)

    def opacus_epsilon(self, run_id: str) -> float:
        """Opacus's own RDP accountant's ε for this owner's rounds of ``run_id`` (cross-check)."""
        engine = self._engines.get(run_id)
        if engine is None or not engine.accountant.history:
            return 0.0
        return float(engine.accountant.get_epsilon(self.ledger.head().delta))

    def __repr__(self) -> str:
        return f"DataOwner({self.folder.name!r})"

