"""The whole story in two calls: :func:`prepare_demo`, then :func:`run_demo`.

``prepare_demo`` plays every data owner of a small world, idempotently:

1. **world**: generate the small synthetic world if ``world.json`` is missing (nature);
2. **ledgers**: create each owner's privacy ledger if missing (default cap ε = 2 per year);
3. **releases**: each owner makes ONE twin release, charged to its ledger before anything
   leaves, and keeps a copy in ``<merchant>/releases/<release_id>.json`` (where the app
   looks). An owner that already keeps a twin release is skipped: nothing is charged again;
4. **fitting**: the hub fits every release with the app's settings (:func:`fit_settings`,
   the ``TWINSIM_SYNTHESISER`` knob, default the mixture synthesiser, fit seed 0) into the
   on-disk cache of :func:`twins.hub.fit_release` (``TWINSIM_CACHE`` or ``~/.cache/twinsim``),
   so the app opens on pre-fitted models;
5. a summary goes to ``<world>/demo.json`` (the Makefile's "prepared" marker).

``run_demo`` is the hub side of the story: the small organic deli (``deli_1``, Stockholm)
trials three offers on twins of its own customers (from its own release) plus twins of
organic-leaning shoppers from the two grocers' releases (``grocery_1``, ``grocery_2``),
mixed in proportion to their DP-estimated sizes, and compares them with
:func:`simulation.run_experiment` (treatment vs control, common random numbers, 95% CIs).
The hub side reads releases only; the owner labels shown beside the pseudonyms are known
here because the demo plays every role.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from privacy.budget import LEDGER_FILE, PrivacyBudget
from privacy.release import Release
from retail.catalogue import default_catalogue
from retail.merchant import read_merchant_info, read_world
from retail.offers import Offer
from simulation import ExperimentResult, params_from_twins, run_experiment
from twins.hub import Cohort, estimate_cohort_size, fit_release, twins_from_releases
from twins.release import MARGINAL_PREFIX, release_owner, write_release
from twins.synth import MIN_COHORT
from twinsim.errors import CohortTooSmall

__all__ = [
    "COHORT_OWNERS",
    "COHORT_WHERE",
    "DEMO_EPSILON",
    "DEMO_FILE",
    "DEMO_MERCHANT",
    "DEMO_OFFERS",
    "RELEASES_DIR",
    "SYNTHESISER_ENV",
    "DemoResult",
    "DemoState",
    "OwnerRelease",
    "Progress",
    "demo_offers",
    "fit_settings",
    "kept_release",
    "prepare_demo",
    "run_demo",
]

SYNTHESISER_ENV = "TWINSIM_SYNTHESISER"  # the app's knob too (app_pages.trials.fit_settings)
DEMO_EPSILON = 1.0  # per owner, half the default yearly cap: the app can still release
DEMO_MERCHANT = "deli_1"
COHORT_OWNERS: tuple[str, ...] = ("grocery_1", "grocery_2")
COHORT_WHERE = "organic_share>=medium"
RELEASES_DIR = "releases"
DEMO_FILE = "demo.json"
REQUESTER = "twinsim demo"
KPI_COLUMNS: tuple[str, ...] = ("reach", "redemption_rate", "incremental_revenue",
                                "incremental_margin", "net_profit", "roi")

# (stage, done, total, message); stages: world, releases, fitting, twins, offers
Progress = Callable[[str, int, int, str], None]

DEMO_OFFERS: tuple[dict[str, Any], ...] = (
    {"name": "15% off organic meat for eco-premium shoppers", "kind": "discount", "pct": 15,
     "categories": ["meat"], "organic_only": True, "days": 30,
     "target": ["organic_share>=high", "tier=premium"]},
    {"name": "Cheese buyers: 20% off bread and drinks", "kind": "cross_sell", "pct": 20,
     "trigger_categories": ["cheese"], "categories": ["bakery", "beverages"], "days": 30},
    {"name": "Deli club: 10% off everything for 49 kr a month", "kind": "membership",
     "monthly_fee": 49, "pct": 10, "days": 60},
)


def _quiet(stage: str, done: int, total: int, message: str) -> None:
    """The default progress callback: say nothing."""


def fit_settings(synthesiser: str | None = None) -> dict[str, Any]:
    """How releases are fitted: exactly the app's settings, so both share one cache entry
    (:func:`twins.hub.fit_release` keys the cache on synthesiser, options and fit seed)."""
    return {"synthesiser": synthesiser or os.environ.get(SYNTHESISER_ENV) or "mixture"}


def demo_offers(merchant_type: str = "organic_deli") -> tuple[Offer, ...]:
    """The three offers the deli compares (:data:`DEMO_OFFERS`), validated."""
    return tuple(Offer.from_dict(o, merchant_type=merchant_type) for o in DEMO_OFFERS)


@dataclass(frozen=True, kw_only=True)
class OwnerRelease:
    """One owner's twin release and its budget after the demo's preparation."""

    merchant_id: str
    merchant_type: str
    owner: str  # the pseudonym the release carries
    release_id: str
    path: Path
    charged_now: bool  # this run made (and charged) the release
    epsilon: float  # the release's own privacy loss at δ
    spent_epsilon: float
    remaining_epsilon: float
    cap_epsilon: float
    ledger_entries: int

    def to_dict(self) -> dict[str, Any]:
        return {k: str(v) if isinstance(v, Path) else v for k, v in self.__dict__.items()}


@dataclass(frozen=True, kw_only=True)
class DemoState:
    """What :func:`prepare_demo` left behind: the world, one release per owner, the fits."""

    world_dir: Path
    generated: bool
    owners: tuple[OwnerRelease, ...]
    fit: Mapping[str, Any]
    cache: Path | None = None  # None: TWINSIM_CACHE or ~/.cache/twinsim, as the app
    seconds: Mapping[str, float] = field(default_factory=dict)

    def owner(self, merchant_id: str) -> OwnerRelease:
        for o in self.owners:
            if o.merchant_id == merchant_id:
                return o
        raise ValueError(f"demo: no owner {merchant_id!r} in {self.world_dir}; owners: "
                         f"{[o.merchant_id for o in self.owners]}")

    def release(self, merchant_id: str) -> Release:
        return Release.from_json(self.owner(merchant_id).path.read_text(encoding="utf-8"))

    def to_dict(self) -> dict[str, Any]:
        return {"world": str(self.world_dir), "generated": self.generated,
                "fit": dict(self.fit), "cache": None if self.cache is None else str(self.cache),
                "seconds": dict(self.seconds),
                "owners": [o.to_dict() for o in self.owners]}


# -- preparation (owner side, then the hub's fits) --------------------------------------

def kept_release(owner_dir: str | Path) -> tuple[Release, Path] | None:
    """The owner's latest kept twin release (with marginals) and its file, or None."""
    found = []
    for path in sorted((Path(owner_dir) / RELEASES_DIR).glob("*.json")):
        try:
            rel = Release.from_json(path.read_text(encoding="utf-8"))
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"{path}: not a readable twinsim release ({exc}); move it out "
                             "of the releases folder and rerun") from None
        if any(m.name.startswith(MARGINAL_PREFIX) for m in rel.measurements):
            found.append((rel.ledger_entry_id, rel, path))
    if not found:
        return None
    _, rel, path = max(found, key=lambda t: t[0])
    return rel, path


def _ensure_world(world_dir: Path, seed: int, progress: Progress) -> bool:
    if (world_dir / "world.json").is_file():
        progress("world", 1, 1, f"world {world_dir} already there")
        return False
    from retail.world import generate_world  # nature: only when a world must be made

    progress("world", 0, 1, f"generating the small world (seed {seed})")
    generate_world(world_dir, scale="small", seed=seed,
                   progress=lambda mid, d, n: progress("world", 0, 1, f"{mid}: day {d}/{n}"))
    progress("world", 1, 1, f"generated {world_dir}")
    return True


def _release_once(folder: Path, merchant_id: str, epsilon: float) -> OwnerRelease:
    """Init the ledger if missing; release once (skipped when a release is kept)."""
    if not (folder / LEDGER_FILE).is_file():
        PrivacyBudget.init_owner(folder, period=str(read_merchant_info(folder).period_end.year))
    kept = kept_release(folder)
    charged = kept is None
    if kept is None:
        rel = release_owner(folder, epsilon=epsilon, requester=REQUESTER,
                            purpose="twin synthesis (demo federation)")
        path = folder / RELEASES_DIR / f"{rel.release_id}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        write_release(rel, path)
    else:
        rel, path = kept
    state = PrivacyBudget.for_owner(folder).state()
    return OwnerRelease(merchant_id=merchant_id, merchant_type=rel.merchant_type,
                        owner=rel.owner, release_id=rel.release_id, path=path,
                        charged_now=charged, epsilon=float(rel.privacy_loss["epsilon"]),
                        spent_epsilon=state.spent_epsilon,
                        remaining_epsilon=state.remaining_epsilon,
                        cap_epsilon=state.cap_epsilon, ledger_entries=state.n_entries)


def _write_summary(state: DemoState) -> None:
    path = state.world_dir / DEMO_FILE
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(state.to_dict(), indent=2, ensure_ascii=False) + "\n",
                   encoding="utf-8")
    os.replace(tmp, path)


def prepare_demo(world_dir: str | Path, *, seed: int = 7, epsilon: float = DEMO_EPSILON,
                 synthesiser: str | None = None, cache: str | Path | None = None,
                 progress: Progress | None = None) -> DemoState:
    """Make the demo federation ready (idempotent; see the module doc).

    ``seed`` seeds the world (when generated); ``epsilon`` is what each owner's one release
    spends; ``synthesiser`` overrides ``TWINSIM_SYNTHESISER``; ``cache`` overrides
    ``TWINSIM_CACHE``. A second call charges nothing and refits nothing already cached.
    """
    tell = progress or _quiet
    root = Path(world_dir)
    seconds: dict[str, float] = {}
    t0 = time.perf_counter()
    generated = _ensure_world(root, seed, tell)
    seconds["world"] = time.perf_counter() - t0
    dirs = read_world(root).merchant_dirs
    owners = []
    t0 = time.perf_counter()
    for i, (mid, folder) in enumerate(dirs.items()):
        tell("releases", i, len(dirs), f"{mid}: releasing at ε={epsilon:g}")
        owners.append(_release_once(Path(folder), mid, epsilon))
        o = owners[-1]
        tell("releases", i + 1, len(dirs),
             f"{mid}: {'charged' if o.charged_now else 'kept'} ε={o.epsilon:g}, spent "
             f"{o.spent_epsilon:.3f} of {o.cap_epsilon:g}")
    seconds["releases"] = time.perf_counter() - t0
    fit = fit_settings(synthesiser)
    t0 = time.perf_counter()
    for i, o in enumerate(owners):
        tell("fitting", i, len(owners), f"{o.merchant_id}: fitting {fit['synthesiser']}")
        fit_release(Release.from_json(o.path.read_text(encoding="utf-8")), cache=cache, **fit)
        tell("fitting", i + 1, len(owners), f"{o.merchant_id}: fitted")
    seconds["fitting"] = time.perf_counter() - t0
    state = DemoState(world_dir=root, generated=generated, owners=tuple(owners), fit=fit,
                      cache=None if cache is None else Path(cache), seconds=seconds)
    _write_summary(state)
    return state


# -- the story (hub side) ---------------------------------------------------------------

@dataclass(frozen=True, kw_only=True, eq=False)
class DemoResult:
    """The deli's offer comparison: who the twins are and each offer's experiment."""

    merchant_id: str
    merchant_type: str
    cohort: str
    sizes: Mapping[str, float]  # DP-estimated size per population part
    twins: Mapping[str, int]  # twins drawn per population part
    notes: tuple[str, ...]
    days: int
    replications: int
    seed: int
    experiments: tuple[tuple[str, ExperimentResult], ...]

    def table(self) -> pl.DataFrame:
        """One row per offer: mean and 95% CI (``_low``/``_high``) of each KPI."""
        rows = []
        for name, res in self.experiments:
            row: dict[str, Any] = {"offer": name, "kind": res.offer["kind"]}
            for k in KPI_COLUMNS:
                e = res.overall[k]
                row.update({k: e.mean, f"{k}_low": e.low, f"{k}_high": e.high})
            rows.append(row)
        return pl.DataFrame(rows)

    def to_dict(self) -> dict[str, Any]:
        rows = [{k: (None if isinstance(v, float) and math.isnan(v) else v)
                 for k, v in r.items()} for r in self.table().to_dicts()]
        return {"merchant": self.merchant_id, "merchant_type": self.merchant_type,
                "cohort": self.cohort, "sizes": dict(self.sizes), "twins": dict(self.twins),
                "notes": list(self.notes), "days": self.days,
                "replications": self.replications, "seed": self.seed, "offers": rows}


def _split(n: int, sizes: Mapping[str, float]) -> dict[str, int]:
    """``n`` twins over the parts in proportion to their DP-estimated sizes."""
    total = math.fsum(sizes.values())
    counts = {k: round(n * v / total) for k, v in sizes.items()}
    last = max(sizes, key=lambda k: sizes[k])
    counts[last] += n - sum(counts.values())
    return counts


def _population(state: DemoState, n: int, seed: int
                ) -> tuple[pl.DataFrame, dict[str, float], dict[str, int], list[str]]:
    """Own twins (the deli's release) + organic-leaning twins of the grocers' releases."""
    fit = {**state.fit, "cache": state.cache}
    own_label = f"{DEMO_MERCHANT} own customers"
    cohort_label = f"{' + '.join(COHORT_OWNERS)}: {COHORT_WHERE}"
    own = [state.release(DEMO_MERCHANT)]
    grocers = [state.release(m) for m in COHORT_OWNERS]
    cohort = Cohort(merchant_types=("grocery",), where=COHORT_WHERE)
    sizes = {own_label: estimate_cohort_size(own, **fit).total,
             cohort_label: estimate_cohort_size(grocers, cohort, **fit).total}
    notes = []
    if sizes[own_label] < MIN_COHORT:  # a tiny shop: its own twins are not simulated
        notes.append(f"{DEMO_MERCHANT}'s own cohort is estimated at {sizes[own_label]:.0f} "
                     f"customers, below the minimum {MIN_COHORT}; only the grocers' cohort "
                     "is simulated.")
        del sizes[own_label]
    counts = _split(n, sizes)
    parts = [twins_from_releases(own, n=counts[own_label], seed=seed, **fit)
             if label == own_label else
             twins_from_releases(grocers, n=counts[label], seed=seed + 1, cohort=cohort, **fit)
             for label in counts if counts[label] > 0]
    # own and other merchant types carry different catshare_<category> columns: missing -> null
    return pl.concat(parts, how="diagonal"), sizes, counts, notes


def run_demo(state: DemoState, *, n_twins: int = 5000, days: int = 90, replications: int = 10,
             seed: int = 7, offers: tuple[Offer, ...] | None = None,
             progress: Progress | None = None) -> DemoResult:
    """The deli compares offers on its own and the grocers' organic-leaning twins.

    Results are segmented by ``merchant_type`` (the deli's own twins vs the grocers').
    ``CohortTooSmall`` when even the grocers' cohort is below the minimum.
    """
    tell = progress or _quiet
    mtype = state.owner(DEMO_MERCHANT).merchant_type
    offers = offers if offers is not None else demo_offers(mtype)
    tell("twins", 0, 1, f"synthesising {n_twins} twins")
    twins, sizes, counts, notes = _population(state, n_twins, seed)
    if twins.height == 0:
        raise CohortTooSmall("demo: no twins could be drawn for the deli's population")
    params = params_from_twins(twins, mtype, seed=seed)
    tell("twins", 1, 1, ", ".join(f"{v} twins: {k}" for k, v in counts.items()))
    catalogue = default_catalogue(mtype)
    runs = []
    for i, offer in enumerate(offers):
        tell("offers", i, len(offers), offer.name)
        runs.append((offer.name, run_experiment(
            params, offer, catalogue=catalogue, days=days, replications=replications,
            seed=seed, segments="merchant_type")))
        tell("offers", i + 1, len(offers), offer.name)
    return DemoResult(merchant_id=DEMO_MERCHANT, merchant_type=mtype,
                      cohort=f"{DEMO_MERCHANT} (own release) + {' + '.join(COHORT_OWNERS)} "
                             f"({COHORT_WHERE})", sizes=sizes, twins=counts,
                      notes=tuple(notes), days=days, replications=replications, seed=seed,
                      experiments=tuple(runs))
