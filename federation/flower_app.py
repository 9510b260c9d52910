"""Flower deployment: a ``ServerApp`` at the hub and a ``ClientApp`` per owner (Message API).

* ClientApp (runs under one SuperNode per owner; ``--node-config "merchant-folder='DIR'"``
  is the only data it can see): ``query`` → the owner's public description; ``train`` → one
  DP-SGD round through :meth:`DataOwner.answer_training_round`, charged before it replies.
* ServerApp (runs under the SuperLink): describes the nodes, then runs the same transport-free
  loop as the embedded federation (:func:`federation.rounds.run_training`), one
  ``send_and_receive`` per round with a timeout. A node that does not answer in time, or
  answers with an error, is a failed node for that round; the run goes on.

Run config keys (``pyproject.toml`` of the Flower app, see docs/FEDERATION.md):
``rounds``, ``target-epsilon``, ``expected-batch``, ``steps-per-round``, ``weighting``
(FedAvg weighting of owners: ``examples`` | ``sqrt`` | ``equal``; if absent,
``RoundSettings.weighting``), ``round-timeout``, ``min-nodes``, ``out-dir`` (where the
ServerApp writes ``result.json``, ``weights.npz`` and, for audits and tests,
``replies.jsonl`` — the content of every reply that crossed), ``secure-aggregation``
(``true``: FedAvg through Flower's SecAgg+, :mod:`federation.flower_secagg`, with
``secagg-threshold`` and ``secagg-clipping-range``).

Node config keys: ``merchant-folder`` (required) and ``seed`` (optional, the owner's own
choice: fixes its sampling and DP noise, for reproducible tests and benchmarks only).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from flwr.app import Array, ArrayRecord, ConfigRecord, Context, Message, RecordDict
from flwr.client.mod import secaggplus_mod
from flwr.clientapp import ClientApp
from flwr.clientapp.typing import ClientAppCallable
from flwr.common.secure_aggregation.secaggplus_constants import RECORD_KEY_CONFIGS
from flwr.serverapp import Grid, ServerApp

from federation.budget import open_ledger
from federation.messages import (
    ModelUpdate,
    OwnerDescription,
    TrainingRequest,
    describe_owner,
)
from federation.settings import RoundSettings

if TYPE_CHECKING:
    from federation.node import DataOwner
    from federation.rounds import TrainingResult

__all__ = ["client_app", "decode_update", "encode_update", "server_app"]


def _secagg_when_asked(msg: Message, context: Context, call_next: ClientAppCallable) -> Message:
    """Route SecAgg+ messages through Flower's ``secaggplus_mod``; plain rounds pass by."""
    if msg.metadata.message_type == "train" and RECORD_KEY_CONFIGS in msg.content:
        return secaggplus_mod(msg, context, call_next)
    return call_next(msg, context)


client_app = ClientApp(mods=[_secagg_when_asked])
server_app = ServerApp()
_OWNERS: dict[str, DataOwner] = {}
_STATE_KEY = "twinsim-noise"  # per-node, per-run state: calibrated σ, so it is computed once


# -- wire format -------------------------------------------------------------------------------

def _arrays(weights: Mapping[str, np.ndarray]) -> ArrayRecord:
    return ArrayRecord({k: Array(np.ascontiguousarray(v)) for k, v in weights.items()})


def _weights(record: ArrayRecord) -> dict[str, np.ndarray]:
    return {k: record[k].numpy() for k in record}


def encode_update(u: ModelUpdate) -> RecordDict:
    meta = ConfigRecord({"owner": u.owner, "run_id": u.run_id, "round_no": u.round_no,
                         "took_part": u.took_part, "round_epsilon": u.round_epsilon,
                         "spent_epsilon": u.spent_epsilon, "digest": u.digest,
                         "reason": u.reason})
    out = RecordDict({"update": meta})
    if u.weights is not None:
        out["arrays"] = _arrays(u.weights)
    return out


def decode_update(content: RecordDict) -> ModelUpdate:
    m = content["update"]
    return ModelUpdate(owner=str(m["owner"]), run_id=str(m["run_id"]),
                       round_no=int(m["round_no"]), took_part=bool(m["took_part"]),  # type: ignore[arg-type]
                       weights=_weights(content["arrays"]) if "arrays" in content else None,  # type: ignore[arg-type]
                       round_epsilon=float(m["round_epsilon"]),  # type: ignore[arg-type]
                       spent_epsilon=float(m["spent_epsilon"]),  # type: ignore[arg-type]
                       digest=str(m["digest"]), reason=str(m["reason"]))


# -- ClientApp (owner side) --------------------------------------------------------------------

def _floats(rec: object) -> dict[str, float]:
    if not isinstance(rec, ConfigRecord):
        return {}
    return {str(k): float(v) for k, v in rec.items()}  # type: ignore[arg-type]


def _folder(context: Context) -> str:
    return str(context.node_config["merchant-folder"])


def _owner(context: Context) -> DataOwner:
    from federation.node import DataOwner  # torch/Opacus only where training happens

    folder = _folder(context)
    if folder not in _OWNERS:  # one DataOwner per process and folder
        noise = context.state.get(_STATE_KEY)
        seed = context.node_config.get("seed")
        _OWNERS[folder] = DataOwner(folder, requester="flower hub", noise=_floats(noise),
                                    seed=None if seed is None else int(seed))  # type: ignore[arg-type]
    return _OWNERS[folder]


def _remember_noise(context: Context, owner: DataOwner) -> None:
    context.state[_STATE_KEY] = ConfigRecord(dict(owner.noise_cache))


@client_app.query()
def describe(msg: Message, context: Context) -> Message:
    folder = _folder(context)
    d = describe_owner(folder, open_ledger(folder))
    return Message(RecordDict({"owner": _describe_record(d)}), reply_to=msg)


@client_app.train()
def train(msg: Message, context: Context) -> Message:
    if "fitins.parameters" in msg.content:  # a SecAgg+ round (legacy FitIns layout)
        from federation.flower_secagg import train_secure

        return train_secure(msg, context)
    cfg = msg.content["config"]
    req = TrainingRequest(run_id=str(cfg["run_id"]), round_no=int(cfg["round_no"]),  # type: ignore[arg-type]
                          weights=_weights(msg.content["arrays"]),  # type: ignore[arg-type]
                          settings=RoundSettings.from_config(cfg))  # type: ignore[arg-type]
    owner = _owner(context)
    update = owner.answer_training_round(req)
    _remember_noise(context, owner)
    content = encode_update(update)
    content["owner"] = _describe_record(owner.describe())
    return Message(content, reply_to=msg)


# -- ServerApp (hub side) ----------------------------------------------------------------------

def _settings(run_config: Mapping[str, Any]) -> RoundSettings:
    return RoundSettings(rounds=int(run_config["rounds"]),
                         target_epsilon=float(run_config["target-epsilon"]),
                         expected_batch=int(run_config["expected-batch"]),
                         steps_per_round=int(run_config["steps-per-round"]),
                         weighting=str(run_config.get("weighting", RoundSettings.weighting)))


def _content_json(content: RecordDict) -> dict[str, Any]:
    """Everything a reply carried, as plain JSON (arrays as lists) — for the audit log."""
    out: dict[str, Any] = {}
    for name, rec in content.items():
        if isinstance(rec, ArrayRecord):
            out[name] = {k: rec[k].numpy().tolist() for k in rec}
        else:
            out[name] = {k: v for k, v in rec.items()}
    return out


class _Recorder:
    def __init__(self, out_dir: Path) -> None:
        out_dir.mkdir(parents=True, exist_ok=True)
        self.path = out_dir / "replies.jsonl"

    def __call__(self, replies: Iterable[Message]) -> None:
        with self.path.open("a", encoding="utf-8") as f:
            for r in replies:
                body = {"error": str(r.error)} if r.has_error() else _content_json(r.content)
                f.write(json.dumps({"src": r.metadata.src_node_id,
                                    "type": r.metadata.message_type, "content": body}) + "\n")


def _wait_for_nodes(grid: Grid, n: int, timeout: float) -> list[int]:
    deadline = time.monotonic() + timeout
    while True:
        ids = sorted(grid.get_node_ids())
        if len(ids) >= n or time.monotonic() > deadline:
            return ids
        time.sleep(0.5)


def _describe_record(d: OwnerDescription) -> ConfigRecord:
    return ConfigRecord({"pseudonym": d.pseudonym, "merchant_type": d.merchant_type,
                         "regions": list(d.regions), "size_bucket": d.size_bucket,
                         "period": d.period, "averaging_weight": d.averaging_weight})


class _Ask:
    """One ``send_and_receive`` per round to every node; learns owners from their replies.

    Each train reply carries the owner's public description, so no separate ``query`` round
    is needed (one ClientApp process less per node). Averaging weights are filled in as
    owners first answer — before the server averages that round.
    """

    def __init__(self, grid: Grid, node_ids: list[int], settings: RoundSettings, run_id: str,
                 record: _Recorder, timeout: float) -> None:
        self.grid, self.node_ids, self.settings = grid, node_ids, settings
        self.run_id, self.record, self.timeout = run_id, record, timeout
        self.owners: dict[int, ConfigRecord] = {}
        self.averaging: dict[str, float] = {}

    def _key(self, node: int) -> str:
        o = self.owners.get(node)
        return str(o["pseudonym"]) if o is not None else f"node-{node}"

    def __call__(self, round_no: int, weights: dict[str, np.ndarray]) -> dict[str, Any]:
        cfg = ConfigRecord({**self.settings.to_config(), "run_id": self.run_id,
                            "round_no": round_no})
        msgs = [Message(RecordDict({"arrays": _arrays(weights), "config": cfg}),
                        dst_node_id=n, message_type="train", group_id=str(round_no))
                for n in self.node_ids]
        replies = list(self.grid.send_and_receive(msgs, timeout=self.timeout))
        self.record(replies)
        for r in replies:
            o = None if r.has_error() else r.content.get("owner")
            if isinstance(o, ConfigRecord):
                self.owners[r.metadata.src_node_id] = o
                self.averaging[str(o["pseudonym"])] = float(o["averaging_weight"])  # type: ignore[arg-type]
        out: dict[str, Any] = {self._key(n): TimeoutError("no reply in time")
                               for n in self.node_ids}
        for r in replies:
            k = self._key(r.metadata.src_node_id)
            out[k] = RuntimeError(str(r.error)) if r.has_error() else _decode_or_error(r.content)
        return out


def _decode_or_error(content: RecordDict) -> ModelUpdate | BaseException:
    try:
        return decode_update(content)
    except (KeyError, TypeError, ValueError) as exc:
        return exc


def _write_result(out_dir: Path, result: TrainingResult, owners: dict[int, ConfigRecord],
                  elapsed: list[float], extra: Mapping[str, Any] | None = None) -> None:
    arrays: dict[str, Any] = dict(result.weights)
    np.savez(out_dir / "weights.npz", **arrays)
    summary = {"run_id": result.run_id, "settings": result.settings.to_config(),
               "owners": [dict(o) for o in owners.values()],
               "rounds": [{"round_no": r.round_no, "took_part": list(r.took_part),
                           "refused": r.refused, "failed": r.failed, "elapsed_s": e}
                          for r, e in zip(result.rounds, elapsed, strict=True)],
               **(extra or {})}
    tmp = out_dir / "result.json.tmp"
    tmp.write_text(json.dumps(summary, indent=2), encoding="utf-8")
    tmp.replace(out_dir / "result.json")  # atomic: a reader sees all of it or nothing


@server_app.main()
def main(grid: Grid, context: Context) -> None:
    from federation.rounds import new_run_id, run_training

    cfg = context.run_config
    if bool(cfg.get("secure-aggregation", False)):
        from federation.flower_secagg import run_secure

        run_secure(grid, context)
        return
    settings = _settings(cfg)
    out_dir = Path(str(cfg["out-dir"]))
    timeout = float(cfg.get("round-timeout", 120.0))
    record = _Recorder(out_dir)
    node_ids = _wait_for_nodes(grid, int(cfg.get("min-nodes", 1)), timeout)
    run_id = new_run_id()
    ask = _Ask(grid, node_ids, settings, run_id, record, timeout)
    started = time.monotonic()
    elapsed: list[float] = []
    result = run_training(ask, ask.averaging, settings, run_id=run_id,
                          on_round=lambda _: elapsed.append(time.monotonic() - started))
    _write_result(out_dir, result, ask.owners, elapsed)
