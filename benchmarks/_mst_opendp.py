"""OpenDP's own MST, run in the separate venv ``data/bench/venv-mst`` (opendp[mbi] pins mbi
1.1 + jax, which must not enter the main environment). Called by ``benchmarks/fidelity.py``.

Usage: ``venv-mst/bin/python _mst_opendp.py IN.parquet OUT.parquet KEYS.json RHO N``
(columns are level labels; KEYS maps column -> public level list; pure zCDP, δ = 0).
"""

from __future__ import annotations

import json
import sys
import time

import opendp.prelude as dp
import polars as pl


def release(df: pl.DataFrame, keys: dict[str, list[str]], rho: float) -> object:
    ctx = dp.Context.compositor(data=df.lazy(), privacy_unit=dp.unit_of(contributions=1),
                                privacy_loss=dp.loss_of(rho=rho), split_evenly_over=1)
    return (ctx.query().select(list(keys))
            .contingency_table(keys=keys, algorithm=dp.mbi.MST()).release())


def probe_rho(tiny: pl.DataFrame, keys: dict[str, list[str]], rho: float) -> tuple[float, int]:
    """MST's own budget split can fail on float rounding ("insufficient budget for query:
    a > b", a and b a few ulps apart; FINDINGS.md). The split is data-independent, so find a
    ρ within 1e-10 (relative) below the target that passes, on 300 rows, before the real run.
    """
    for j in range(100):
        cand = rho * (1 - j * 1e-12)
        try:
            release(tiny, keys, cand)
            return cand, j + 1
        except dp.OpenDPException as exc:
            if "insufficient budget" not in str(exc):
                raise
    raise SystemExit("MST: every probed rho failed OpenDP's budget split")


def main() -> None:
    src, dst, keys_path, rho, n = sys.argv[1:6]
    keys = json.loads(open(keys_path, encoding="utf-8").read())
    df = pl.read_parquet(src).select(list(keys))
    dp.enable_features("contrib")
    t0 = time.perf_counter()
    used, tries = probe_rho(df.head(300), keys, float(rho))
    table = release(df, keys, used)
    t1 = time.perf_counter()
    synth = table.synthesize(rows=int(n), method="sample")
    t2 = time.perf_counter()
    synth.write_parquet(dst)
    print(json.dumps({"fit_s": round(t1 - t0, 1), "sample_s": round(t2 - t1, 1),
                      "rho_used": used, "tries": tries}))


if __name__ == "__main__":
    main()
