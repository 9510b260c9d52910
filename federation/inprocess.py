"""The embedded federation: every owner of a world folder as an in-process node.

This is the default deployment (``make run``, the tests): the hub loop of
:func:`federation.rounds.run_training` calls each :class:`~federation.node.DataOwner`
directly. An owner that raises mid-round is treated exactly like a Flower node that
disconnected: left out of that round's average; the run goes on.

After training, :func:`owner_quality` scores the global model on each owner's held-out
customers. It runs *at the owner*, for the operator of the embedded federation; in a real
deployment those figures stay with each owner (they are not DP and never cross to the hub).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from federation.budget import dpsgd_spent
from federation.evaluation import qini_coefficient, redemption_auc
from federation.hub import Hub
from federation.model import build_model, predict, set_weights
from federation.node import DataOwner, ModelUpdate, OwnerDescription, TrainingRequest
from federation.rounds import RoundRecord, TrainingResult, new_run_id, run_training
from federation.training import RoundSettings
from retail.merchant import read_world

__all__ = ["InProcessFederation", "OwnerReport", "owner_quality"]


@dataclass(frozen=True, kw_only=True)
class OwnerReport:
    """Per owner, for the operator: what it paid, whether it took part, how the model does."""

    merchant: str
    owner: str
    merchant_type: str
    rounds_taken: int
    rounds_refused: int
    rounds_failed: int
    epsilon_charged: float  # this run's DP-SGD rounds, the ledger's RDP accountant
    epsilon_pld: float  # the same rounds by PLD (dp-accounting), tighter
    epsilon_opacus: float  # the same rounds by Opacus's RDP accountant
    spent_epsilon: float  # everything the owner has spent this period
    cap_epsilon: float
    holdout_qini: float
    holdout_redeem_auc: float
    holdout_rows: int

    def to_dict(self) -> dict[str, Any]:
        return {k: (None if isinstance(v, float) and math.isnan(v) else v)
                for k, v in asdict(self).items()}


def owner_quality(owner: DataOwner, weights: Mapping[str, np.ndarray],
                  settings: RoundSettings) -> dict[str, float]:
    """Qini (incremental scaled spend) and redemption AUC on the owner's held-out customers."""
    pool = owner._data.holdout
    if len(pool.x) == 0 or pool.treated.min() == pool.treated.max():
        return {"qini": float("nan"), "redeem_auc": float("nan"), "rows": float(len(pool.x))}
    model = build_model(settings.model)
    set_weights(model, weights)
    pred = predict(model, pool.x)
    t = pool.treated.astype(bool)
    return {"qini": qini_coefficient(pred.lift, t, pool.spend),
            "redeem_auc": redemption_auc(pred.p_redeem[t], pool.redeemed[t]),
            "rows": float(len(pool.x))}


class InProcessFederation:
    """A hub and its owners in one process."""

    def __init__(self, owners: Mapping[str, DataOwner], *, hub: Hub | None = None) -> None:
        if not owners:
            raise ValueError("InProcessFederation: no owners")
        self.owners = dict(owners)
        self.hub = hub
        self._desc: dict[str, OwnerDescription] = {}

    @classmethod
    def from_world(cls, world_dir: str | Path, *, merchants: Sequence[str] | None = None,
                   hub_path: str | Path | None = None, seed: int | None = None,
                   caps: Mapping[str, float] | None = None) -> InProcessFederation:
        """One owner per merchant folder of a world (or the named ``merchants``)."""
        world = read_world(world_dir)
        names = list(merchants) if merchants is not None else list(world.merchant_dirs)
        unknown = sorted(set(names) - set(world.merchant_dirs))
        if unknown:
            raise ValueError(f"merchants: {unknown} not in {world.root}; known: "
                             f"{sorted(world.merchant_dirs)}")
        caps = caps or {}
        owners = {n: DataOwner(world.merchant_dirs[n], requester="in-process hub",
                               seed=None if seed is None else seed + i, cap_epsilon=caps.get(n))
                  for i, n in enumerate(names)}
        return cls(owners, hub=Hub(hub_path) if hub_path is not None else None)

    def describe(self) -> dict[str, OwnerDescription]:
        if not self._desc:
            self._desc = {n: o.describe() for n, o in self.owners.items()}
            if self.hub is not None:
                for d in self._desc.values():
                    self.hub.register_owner(d)
        return self._desc

    def _ask(self, run_id: str, settings: RoundSettings) -> Callable[
            [int, dict[str, np.ndarray]], dict[str, ModelUpdate | BaseException]]:
        desc = self.describe()

        def ask(round_no: int, weights: dict[str, np.ndarray]
                ) -> dict[str, ModelUpdate | BaseException]:
            replies: dict[str, ModelUpdate | BaseException] = {}
            for name, owner in self.owners.items():
                req = TrainingRequest(run_id=run_id, round_no=round_no, settings=settings,
                                      weights={k: v.copy() for k, v in weights.items()})
                try:
                    replies[desc[name].pseudonym] = owner.answer_training_round(req)
                except Exception as exc:  # a node failing mid-round == a disconnect
                    replies[desc[name].pseudonym] = exc
            if self.hub is not None:
                self.hub.record_round(r for r in replies.values() if isinstance(r, ModelUpdate))
            return replies

        return ask

    def train(self, settings: RoundSettings, *, run_id: str | None = None,
              on_round: Callable[[RoundRecord], None] | None = None) -> TrainingResult:
        run_id = run_id or new_run_id()
        weights = {d.pseudonym: d.averaging_weight for d in self.describe().values()}
        return run_training(self._ask(run_id, settings), weights, settings, run_id=run_id,
                            on_round=on_round)

    def report(self, result: TrainingResult) -> list[OwnerReport]:
        """Per-owner report of a finished run (accounting from each owner's own ledger)."""
        out = []
        for name, owner in self.owners.items():
            p = self.describe()[name].pseudonym
            spent = dpsgd_spent(owner.ledger, result.run_id)
            head = owner.ledger.head()
            q = owner_quality(owner, result.weights, result.settings)
            out.append(OwnerReport(
                merchant=name, owner=p, merchant_type=self.describe()[name].merchant_type,
                rounds_taken=result.rounds_taken(p),
                rounds_refused=sum(p in r.refused for r in result.rounds),
                rounds_failed=sum(p in r.failed for r in result.rounds),
                epsilon_charged=spent["rdp"], epsilon_pld=spent["pld"],
                epsilon_opacus=owner.opacus_epsilon(result.run_id),
                spent_epsilon=head.spent_epsilon, cap_epsilon=head.cap_epsilon,
                holdout_qini=q["qini"], holdout_redeem_auc=q["redeem_auc"],
                holdout_rows=int(q["rows"])))
        return out
