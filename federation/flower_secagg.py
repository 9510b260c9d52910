"""Secure aggregation (Flower SecAgg+) for the Flower deployment: the hub sees only the sum.

Opt-in with the run-config key ``secure-aggregation = true`` (``twinsim federate
--deployment flower --secagg``). The owner side is unchanged: each owner's node charges its
ledger for the round *before* it trains, runs the same Opacus DP-SGD round
(:meth:`DataOwner.answer_training_round`), and refuses when over budget. What changes is how
the update leaves: the ClientApp's ``secaggplus_mod`` quantises the owner's weighted *model
delta* (DP weights − global weights), masks it with pairwise and private masks, and only
the masked integers cross; the ServerApp's :class:`SecAggPlusWorkflow` unmasks the sum.

Weights. SecAgg+ (legacy ``FitRes`` path) sums ``num_examples × params`` and divides by
``Σ num_examples``, so the public FedAvg weights survive: an owner reports its public
averaging weight (:func:`federation.settings.averaging_weight` of its size bucket) scaled by
:data:`WEIGHT_SCALE` as ``num_examples``; a refusing owner still takes part in the protocol
with weight 0 and a zero delta (so nobody has to be recovered as a dropout). The result is
the FedAvg of the deltas up to SecAgg+'s stochastic quantisation (under one step
``2 × clipping_range / 2**22`` per owner on its delta × weight/:data:`MAX_WEIGHT`, then
divided by Σ weight/:data:`MAX_WEIGHT`) and the rounding of the weights to
1/:data:`WEIGHT_SCALE`.

What the hub sees per reply: the masked vector and the public metadata (owner pseudonym,
took part, ε of the round, total spent, update hash, refusal reason, size bucket, how many
coordinates the clipping range cut). It cannot check an individual update any more (finite,
in range): only the aggregate is checked.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import numpy as np
from flwr.app import ArrayRecord, ConfigRecord, Context, Message
from flwr.common import (
    Code,
    EvaluateIns,
    EvaluateRes,
    FitIns,
    FitRes,
    Parameters,
    Scalar,
    Status,
    ndarrays_to_parameters,
    parameters_to_ndarrays,
)
from flwr.compat.common import recorddict_compat as compat
from flwr.serverapp import Grid

from federation.messages import ModelUpdate, OwnerDescription, TrainingRequest
from federation.settings import RoundSettings, averaging_weight

__all__ = ["MAX_WEIGHT", "WEIGHT_SCALE", "SecureSettings", "run_secure", "train_secure"]

WEIGHT_SCALE = 1000  # num_examples is an int: public weights travel as round(w × 1000)
MAX_WEIGHT = 16.0  # the largest public size weight (bucket xl); SecAgg+ scales by w / max


@dataclass(frozen=True, kw_only=True)
class SecureSettings:
    """SecAgg+ protocol parameters (public). Every owner shares its keys with every other."""

    # fraction of an owner's key shares needed to unmask; more = safer, fewer dropouts survive
    threshold: float = 0.67
    # |delta| bound of the quantiser; a coordinate outside is cut (counted in "clipped")
    clipping_range: float = 8.0

    def __post_init__(self) -> None:
        if not (0 < self.threshold <= 1):
            raise ValueError(f"SecureSettings.threshold: must be in (0, 1] "
                             f"(got {self.threshold!r})")
        if not (math.isfinite(self.clipping_range) and self.clipping_range > 0):
            raise ValueError(f"SecureSettings.clipping_range: must be a finite number > 0 "
                             f"(got {self.clipping_range!r})")

    @classmethod
    def from_run_config(cls, cfg: Mapping[str, Any]) -> SecureSettings:
        return cls(threshold=float(cfg.get("secagg-threshold", cls.threshold)),
                   clipping_range=float(cfg.get("secagg-clipping-range", cls.clipping_range)))


# -- ClientApp (owner side): the handler secaggplus_mod calls in its "collect" stage ----------

def _names(settings: RoundSettings) -> list[str]:
    from federation.model import build_model, get_weights

    return list(get_weights(build_model(settings.model)))


def _metrics(u: ModelUpdate, d: OwnerDescription, clipped: int) -> dict[str, Scalar]:
    return {"owner": u.owner, "run_id": u.run_id, "round_no": u.round_no,
            "took_part": u.took_part, "round_epsilon": u.round_epsilon,
            "spent_epsilon": u.spent_epsilon, "digest": u.digest, "reason": u.reason,
            "clipped": clipped, "pseudonym": d.pseudonym, "merchant_type": d.merchant_type,
            "regions": json.dumps(list(d.regions)), "size_bucket": d.size_bucket,
            "period": d.period, "averaging_weight": d.averaging_weight}


def train_secure(msg: Message, context: Context) -> Message:
    """One DP-SGD round whose delta goes into SecAgg+ (called under ``secaggplus_mod``)."""
    from federation.flower_app import _owner, _remember_noise

    fitins = compat.recorddict_to_fitins(msg.content, keep_input=True)
    cfg = fitins.config
    settings = RoundSettings.from_config(cfg)
    names = _names(settings)
    glob = dict(zip(names, parameters_to_ndarrays(fitins.parameters), strict=True))
    owner = _owner(context)
    update = owner.answer_training_round(TrainingRequest(
        run_id=str(cfg["run_id"]), round_no=int(cfg["round_no"]), weights=glob,
        settings=settings))
    _remember_noise(context, owner)
    desc = owner.describe()
    if update.took_part and update.weights is not None:
        delta = [update.weights[n] - glob[n] for n in names]
        weight = averaging_weight(desc.averaging_weight, settings.weighting)
    else:  # a refusal still joins the protocol, adding nothing: no dropout to recover
        delta, weight = [np.zeros_like(glob[n]) for n in names], 0.0
    bound = float(cfg["secagg_clipping_range"])
    clipped = int(sum(np.count_nonzero(np.abs(d) > bound) for d in delta))
    fitres = FitRes(status=Status(code=Code.OK, message=""),
                    parameters=ndarrays_to_parameters(delta),
                    num_examples=round(weight * WEIGHT_SCALE),
                    metrics=_metrics(update, desc, clipped))
    return Message(compat.fitres_to_recorddict(fitres, keep_input=False), reply_to=msg)


# -- ServerApp (hub side) ----------------------------------------------------------------------

def _owner_of(m: Mapping[str, Scalar]) -> dict[str, Any]:
    return {"pseudonym": str(m["pseudonym"]), "merchant_type": str(m["merchant_type"]),
            "regions": json.loads(str(m["regions"])), "size_bucket": str(m["size_bucket"]),
            "period": str(m["period"]), "averaging_weight": float(m["averaging_weight"])}


@dataclass
class _Round:
    """What the hub learnt in one round: who took part, who refused or failed, the sum."""

    round_no: int
    took_part: list[str] = field(default_factory=list)
    refused: dict[str, str] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)
    clipped: dict[str, int] = field(default_factory=dict)
    delta: list[np.ndarray] | None = None


def _strategy(node_ids: list[int], grid: Grid, run_id: str, settings: RoundSettings,
              secure: SecureSettings) -> Any:
    """A legacy ``Strategy`` that only feeds SecAgg+ and reads what comes out of it."""
    from flwr.server.compat.grid_client_proxy import GridClientProxy
    from flwr.server.strategy import Strategy

    class _SecureRounds(Strategy):
        def __init__(self) -> None:
            self.owners: dict[int, dict[str, Any]] = {}
            self.current = _Round(0)

        def key(self, node: int) -> str:
            o = self.owners.get(node)
            return str(o["pseudonym"]) if o is not None else f"node-{node}"

        def initialize_parameters(self, client_manager: Any) -> Parameters | None:
            return None

        def configure_fit(self, server_round: int, parameters: Parameters,
                          client_manager: Any) -> list[tuple[Any, FitIns]]:
            cfg: dict[str, Scalar] = {**settings.to_config(), "run_id": run_id,
                                      "round_no": server_round,
                                      "secagg_clipping_range": secure.clipping_range}
            return [(GridClientProxy(n, grid, 0), FitIns(parameters, cfg)) for n in node_ids]

        def aggregate_fit(self, server_round: int, results: list[tuple[Any, FitRes]],
                          failures: Sequence[Any]) -> tuple[Parameters | None, dict[str, Scalar]]:
            rnd = self.current
            replied, stale = set(), False
            for proxy, res in results:
                self.owners[proxy.node_id] = _owner_of(res.metrics)
                replied.add(proxy.node_id)
                m, k = res.metrics, self.key(proxy.node_id)
                rnd.clipped[k] = int(m["clipped"])
                if m["run_id"] != run_id or m["round_no"] != server_round:
                    rnd.failed[k] = f"stale reply (run {m['run_id']!r}, round {m['round_no']!r})"
                    stale = True  # its vector is in the sum: the sum cannot be used
                elif bool(m["took_part"]):
                    rnd.took_part.append(k)
                else:
                    rnd.refused[k] = str(m["reason"])
            rnd.failed.update({self.key(n): "no masked update (dropped out of SecAgg+)"
                               for n in node_ids if n not in replied})
            # a dropout is fine (SecAgg+ removed its masks; its update is not in the sum)
            if rnd.took_part and not stale:
                delta = parameters_to_ndarrays(results[0][1].parameters)
                if all(np.isfinite(d).all() for d in delta):
                    rnd.delta = delta
                else:
                    rnd.failed["aggregate"] = "unmasked sum not finite"
            return None, {}  # the loop in run_secure applies the delta

        def configure_evaluate(self, server_round: int, parameters: Parameters,
                               client_manager: Any) -> list[tuple[Any, EvaluateIns]]:
            return []

        def aggregate_evaluate(self, server_round: int, results: list[tuple[Any, EvaluateRes]],
                               failures: Sequence[Any]
                               ) -> tuple[float | None, dict[str, Scalar]]:
            return None, {}

        def evaluate(self, server_round: int, parameters: Parameters
                     ) -> tuple[float, dict[str, Scalar]] | None:
            return None

    return _SecureRounds()


def _jsonable(rec: object) -> dict[str, Any]:
    """A record as JSON for the audit log; bytes (masked vectors, keys) as their length."""
    if isinstance(rec, ArrayRecord):
        return {k: rec[k].numpy().tolist() for k in rec}
    out: dict[str, Any] = {}
    for k, v in cast(Mapping[str, Any], rec).items():
        if isinstance(v, bytes):
            out[k] = {"bytes": len(v)}
        elif isinstance(v, list) and v and isinstance(v[0], bytes):
            out[k] = [{"bytes": len(b)} for b in v]
        else:
            out[k] = v
    return out


class _RecordingGrid:
    """The Grid the workflow talks to: forwards, and logs every reply that crossed."""

    def __init__(self, grid: Grid, path: Path) -> None:
        self._grid, self.path = grid, path

    def __getattr__(self, name: str) -> Any:
        return getattr(self._grid, name)

    def send_and_receive(self, messages: Iterable[Message], *,
                         timeout: float | None = None) -> Iterable[Message]:
        replies = list(self._grid.send_and_receive(messages, timeout=timeout))
        with self.path.open("a", encoding="utf-8") as f:
            for r in replies:
                body = ({"error": str(r.error)} if r.has_error() else
                        {name: _jsonable(rec) for name, rec in r.content.items()})
                f.write(json.dumps({"src": r.metadata.src_node_id,
                                    "type": r.metadata.message_type, "content": body}) + "\n")
        return replies


def _workflow(secure: SecureSettings, timeout: float) -> Any:
    from flwr.server.workflow import SecAggPlusWorkflow

    return SecAggPlusWorkflow(num_shares=1.0, reconstruction_threshold=secure.threshold,
                              max_weight=MAX_WEIGHT * WEIGHT_SCALE,
                              clipping_range=secure.clipping_range, timeout=timeout)


def run_secure(grid: Grid, context: Context) -> None:
    """The ServerApp's main under ``secure-aggregation = true``: FedAvg through SecAgg+."""
    from flwr.server import ServerConfig
    from flwr.server.compat.legacy_context import LegacyContext
    from flwr.server.workflow.constant import MAIN_CONFIGS_RECORD, MAIN_PARAMS_RECORD
    from flwr.server.workflow.constant import Key as WorkflowKey

    from federation.flower_app import _settings, _wait_for_nodes, _write_result
    from federation.model import build_model, get_weights
    from federation.rounds import RoundRecord, TrainingResult, new_run_id

    cfg = context.run_config
    settings, secure = _settings(cfg), SecureSettings.from_run_config(cfg)
    out_dir = Path(str(cfg["out-dir"]))
    out_dir.mkdir(parents=True, exist_ok=True)
    timeout = float(cfg.get("round-timeout", 120.0))
    node_ids = _wait_for_nodes(grid, int(cfg.get("min-nodes", 1)), timeout)
    run_id = new_run_id()
    rgrid = cast(Grid, _RecordingGrid(grid, out_dir / "replies.jsonl"))
    strategy = _strategy(node_ids, rgrid, run_id, settings, secure)
    legacy = LegacyContext(context, config=ServerConfig(num_rounds=settings.rounds),
                           strategy=strategy)
    workflow = _workflow(secure, timeout)
    weights = get_weights(build_model(settings.model))
    names = list(weights)
    history: dict[str, Any] = {}
    records: list[RoundRecord] = []
    clipped: list[dict[str, int]] = []
    elapsed: list[float] = []
    started = time.monotonic()
    for r in range(1, settings.rounds + 1):
        strategy.current = _Round(r)
        legacy.state.config_records[MAIN_CONFIGS_RECORD] = ConfigRecord(
            {WorkflowKey.CURRENT_ROUND: r})
        legacy.state.array_records[MAIN_PARAMS_RECORD] = compat.parameters_to_arrayrecord(
            ndarrays_to_parameters([weights[n] for n in names]), keep_input=True)
        workflow(rgrid, legacy)
        rnd: _Round = strategy.current
        if rnd.delta is None and not (rnd.took_part or rnd.refused):
            rnd.failed = {strategy.key(n): "secure aggregation halted" for n in node_ids}
        if rnd.delta is not None:
            weights = {n: (weights[n] + d).astype(weights[n].dtype)
                       for n, d in zip(names, rnd.delta, strict=True)}
        history.update({f"{r}/{n}": w for n, w in weights.items()})
        records.append(RoundRecord(round_no=r, took_part=tuple(rnd.took_part),
                                   refused=rnd.refused, failed=rnd.failed,
                                   aggregated=rnd.delta is not None))
        clipped.append(rnd.clipped)
        elapsed.append(time.monotonic() - started)
    np.savez(out_dir / "rounds.npz", **history)  # global model after each round (hub's own)
    result = TrainingResult(run_id=run_id, settings=settings, weights=weights,
                            rounds=tuple(records), updates=())
    _write_result(out_dir, result, {n: ConfigRecord(o) for n, o in strategy.owners.items()},
                  elapsed, extra={"secure_aggregation": {
                      "protocol": "SecAgg+", "threshold": secure.threshold,
                      "clipping_range": secure.clipping_range,
                      "weight_scale": WEIGHT_SCALE, "max_weight": MAX_WEIGHT,
                      "clipped_per_round": clipped}})
