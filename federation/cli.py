"""``twinsim federate``: train the response model over every owner of a world folder.

Thin: options → :class:`~federation.inprocess.InProcessFederation` (default) or a loopback
Flower deployment (:class:`~federation.flower_local.LocalFlower`), then one line per owner:
privacy loss charged, rounds taken part in, held-out quality (computed at each owner).
"""

from __future__ import annotations

import json
import math
import tempfile
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer

from federation.settings import WEIGHTINGS, RoundSettings

__all__ = ["federate"]


def _split(text: str | None) -> list[str] | None:
    return [m.strip() for m in text.split(",") if m.strip()] if text else None


def _flower(world: Path, merchants: list[str] | None, settings: RoundSettings,
            round_timeout: float, secagg: bool) -> tuple[Any, Any]:
    from federation.flower_local import LocalFlower
    from federation.inprocess import InProcessFederation

    fed = InProcessFederation.from_world(world, merchants=merchants)  # for the owners' report
    folders = {n: o.folder for n, o in fed.owners.items()}
    with tempfile.TemporaryDirectory(prefix="twinsim-flower-") as tmp, \
            LocalFlower(folders, Path(tmp) / "deploy") as fl:
        summary = fl.run(settings, out_dir=Path(tmp) / "out", round_timeout=round_timeout,
                         secure_aggregation=secagg)
        with np.load(Path(tmp) / "out" / "weights.npz") as npz:
            weights = {k: npz[k] for k in npz.files}
    return fed, (summary, weights)


def _rows(fed: Any, result: Any) -> list[dict[str, Any]]:
    return [r.to_dict() for r in fed.report(result)]


def _print_table(rows: list[dict[str, Any]], rounds: int) -> None:
    typer.echo(f"{'merchant':<12} {'type':<13} {'rounds':>6} {'eps charged':>11} "
               f"{'eps (PLD)':>9} {'spent/cap':>11} {'qini':>8} {'redeem AUC':>10}")
    for r in rows:
        took = f"{r['rounds_taken']}/{rounds}"
        qini = "n/a" if r["holdout_qini"] is None else f"{r['holdout_qini']:.4f}"
        auc = "n/a" if r["holdout_redeem_auc"] is None else f"{r['holdout_redeem_auc']:.3f}"
        typer.echo(f"{r['merchant']:<12} {r['merchant_type']:<13} {took:>6} "
                   f"{r['epsilon_charged']:>11.4f} {r['epsilon_pld']:>9.4f} "
                   f"{r['spent_epsilon']:>5.2f}/{r['cap_epsilon']:<5.2f} {qini:>8} {auc:>10}")


def federate(
    world: Annotated[Path, typer.Option("--world", exists=True, file_okay=False,
                                        help="World folder (one merchant folder per owner).")],
    rounds: Annotated[int, typer.Option("--rounds", min=1, help="Federated rounds.")] = 5,
    epsilon: Annotated[float, typer.Option(
        "--epsilon", min=0.0, help="ε each owner spends on the whole run (at its δ).")] = 1.0,
    deployment: Annotated[str, typer.Option(
        "--deployment", help="inprocess (embedded) or flower (loopback SuperLink).")
    ] = "inprocess",
    merchants: Annotated[str | None, typer.Option(
        "--merchants", help="Comma-separated merchant ids (default: all).")] = None,
    batch: Annotated[int, typer.Option("--batch", min=1,
                                       help="Expected Poisson batch size.")] = 256,
    steps: Annotated[int, typer.Option("--steps", min=1, help="DP-SGD steps per round.")] = 32,
    weighting: Annotated[str, typer.Option(
        "--weighting", help="FedAvg weighting of owners by public size bucket: "
        "examples, sqrt or equal (docs/FEDERATION.md).")] = RoundSettings.weighting,
    round_timeout: Annotated[float, typer.Option(
        "--round-timeout", help="Flower: seconds to wait for a round's replies.")] = 300.0,
    secagg: Annotated[bool, typer.Option(
        "--secagg", help="Flower: aggregate through SecAgg+ (the hub sees only the sum; "
        "docs/FEDERATION.md).")] = False,
    hub: Annotated[Path | None, typer.Option(
        "--hub", help="Hub catalogue (SQLite) to record owners and rounds in.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON, not a table.")] = False,
) -> None:
    """Train the federated DP-SGD response model and report privacy loss per owner."""
    from federation.inprocess import InProcessFederation
    from federation.rounds import RoundRecord, TrainingResult

    if deployment not in ("inprocess", "flower"):
        raise typer.BadParameter("--deployment must be 'inprocess' or 'flower'")
    if secagg and deployment != "flower":
        raise typer.BadParameter("--secagg needs --deployment flower")
    if not (epsilon > 0 and math.isfinite(epsilon)):
        raise typer.BadParameter("--epsilon must be a finite number > 0")
    if weighting not in WEIGHTINGS:
        raise typer.BadParameter(f"--weighting must be one of {', '.join(WEIGHTINGS)} "
                                 f"(got {weighting!r})")
    settings = RoundSettings(rounds=rounds, target_epsilon=epsilon, expected_batch=batch,
                             steps_per_round=steps, weighting=weighting)
    if deployment == "inprocess":
        fed = InProcessFederation.from_world(world, merchants=_split(merchants), hub_path=hub)
        result = fed.train(settings)
    else:
        fed, (summary, weights) = _flower(world, _split(merchants), settings, round_timeout,
                                          secagg)
        result = TrainingResult(
            run_id=summary["run_id"], settings=settings, weights=weights, updates=(),
            rounds=tuple(RoundRecord(round_no=r["round_no"], took_part=tuple(r["took_part"]),
                                     refused=r["refused"], failed=r["failed"])
                         for r in summary["rounds"]))
    rows = _rows(fed, result)
    if as_json:
        typer.echo(json.dumps({"run_id": result.run_id, "deployment": deployment,
                               "secure_aggregation": secagg,
                               "settings": settings.to_config(), "owners": rows,
                               "rounds": [{"round_no": r.round_no, "took_part": len(r.took_part),
                                           "refused": len(r.refused), "failed": len(r.failed)}
                                          for r in result.rounds]}, indent=2))
    else:
        typer.echo(f"run {result.run_id} ({deployment}): {rounds} rounds, ε = {epsilon} per owner")
        _print_table(rows, rounds)
