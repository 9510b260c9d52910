"""The server side of federated training, independent of transport (in-process or Flower).

Each round the server asks every owner for an update from the current global weights; an
owner may refuse (over budget) or fail (disconnect, crash, malformed reply). Only checked
updates enter federated averaging; if none arrives the global model is left unchanged. A
failure therefore never corrupts the global model, and the owners' ledgers are append-only,
so they cannot be corrupted by it either (a charge without an update is wasted budget).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np

from federation.model import build_model, get_weights
from federation.node import ModelUpdate
from federation.settings import averaging_weight
from federation.training import RoundSettings, check_update, fedavg

__all__ = ["Ask", "RoundRecord", "TrainingResult", "new_run_id", "run_training"]

Weights = dict[str, np.ndarray]
# ask(round_no, global weights) -> one reply per owner: an update or the exception it raised.
Ask = Callable[[int, Weights], Mapping[str, "ModelUpdate | BaseException"]]


def new_run_id() -> str:
    return "run-" + uuid.uuid4().hex[:12]


@dataclass(frozen=True, kw_only=True)
class RoundRecord:
    round_no: int
    took_part: tuple[str, ...]
    refused: dict[str, str] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)
    aggregated: bool = True


@dataclass(frozen=True, kw_only=True)
class TrainingResult:
    run_id: str
    settings: RoundSettings
    weights: Weights = field(repr=False)
    rounds: tuple[RoundRecord, ...]
    updates: tuple[ModelUpdate, ...] = field(repr=False)

    def rounds_taken(self, owner: str) -> int:
        return sum(owner in r.took_part for r in self.rounds)


def _classify(owner: str, reply: ModelUpdate | BaseException, run_id: str, round_no: int,
              reference: Weights) -> tuple[str, str]:
    if isinstance(reply, BaseException):
        return "failed", f"{type(reply).__name__}: {reply}"
    if reply.run_id != run_id or reply.round_no != round_no:
        return "failed", f"stale reply (run {reply.run_id}, round {reply.round_no})"
    if not reply.took_part:
        return "refused", reply.reason
    try:
        check_update(reply.weights or {}, reference)
    except ValueError as exc:
        return "failed", f"malformed update: {exc}"
    return "ok", ""


def run_training(ask: Ask, size_weights: Mapping[str, float], settings: RoundSettings,
                 *, run_id: str | None = None, initial: Weights | None = None,
                 on_round: Callable[[RoundRecord], None] | None = None) -> TrainingResult:
    """Run ``settings.rounds`` rounds of FedAvg over whoever answers each round.

    ``size_weights``: each owner's public size-bucket weight
    (:attr:`OwnerDescription.averaging_weight`; 1 for an owner not listed), turned into its
    averaging weight by ``settings.weighting`` (:func:`federation.settings.averaging_weight`).
    """
    run_id = run_id or new_run_id()
    weights = initial if initial is not None else get_weights(build_model(settings.model))
    records: list[RoundRecord] = []
    kept: list[ModelUpdate] = []
    for r in range(1, settings.rounds + 1):
        replies = ask(r, weights)
        ok: list[ModelUpdate] = []
        refused: dict[str, str] = {}
        failed: dict[str, str] = {}
        for owner, reply in sorted(replies.items()):
            kind, why = _classify(owner, reply, run_id, r, weights)
            if kind == "ok":
                ok.append(reply)  # type: ignore[arg-type]
            else:
                (refused if kind == "refused" else failed)[owner] = why
        if ok:
            weights = fedavg([u.weights or {} for u in ok],
                             [averaging_weight(size_weights.get(u.owner, 1.0), settings.weighting)
                              for u in ok])
        rec = RoundRecord(round_no=r, took_part=tuple(u.owner for u in ok), refused=refused,
                          failed=failed, aggregated=bool(ok))
        records.append(rec)
        kept += [u for u in replies.values() if isinstance(u, ModelUpdate)]
        if on_round is not None:
            on_round(rec)
    return TrainingResult(run_id=run_id, settings=settings, weights=weights,
                          rounds=tuple(records), updates=tuple(kept))
