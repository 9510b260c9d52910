"""Worlds for the app tests, made through the package functions (never by hand-written rows).

``bare_world``: merchant metadata only. ``add_release``: an owner ledger and one real release
of noisy counts (charged, noised by OpenDP, recorded), its copy kept in the owner's folder.
"""

from __future__ import annotations

import shutil
from datetime import date
from pathlib import Path

import numpy as np

from app_pages.services import make_twin_release, release_path
from privacy.budget import PrivacyBudget
from privacy.release import CountQuery, Release, measure_and_release

MERCHANTS = (("grocery_1", "grocery"), ("pet_1", "pet_shop"))


def bare_world(root: Path) -> Path:
    from retail.merchant import MerchantInfo, WorldInfo, write_merchant_info, write_world_info

    for mid, mtype in MERCHANTS:
        write_merchant_info(root / mid, MerchantInfo(
            merchant_id=mid, name=mid.replace("_", " ").title(), merchant_type=mtype,
            regions=("Stockholm",), currency="SEK", period_start=date(2024, 1, 1),
            period_end=date(2024, 12, 31)))
    write_world_info(root, WorldInfo(kind="synthetic", merchants=tuple(m for m, _ in MERCHANTS)))
    return root


def add_release(owner: Path, *, epsilon: float = 0.5) -> Release:
    """Open the owner's ledger (if needed) and make one release of a region histogram."""
    if not (owner / "ledger.sqlite").exists():
        PrivacyBudget.init_owner(owner, period="2024", cap_epsilon=2.0, delta=1e-8)
    budget = PrivacyBudget.for_owner(owner)
    counts = np.array([120, 80, 40], dtype=np.int64)
    release = measure_and_release(
        budget, requester="app test", purpose="twin release", epsilon=epsilon,
        domain={"tier": ("budget", "standard", "premium")},
        queries=[CountQuery(name="tier", attributes=("tier",), counts=counts)])
    path = release_path(str(owner), release)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(release.to_json(), encoding="utf-8")
    return release


RELEASED = ("grocery_1", "grocery_2", "pet_1", "deli_1")


def prepared_world(small_world: Path, base: Path) -> Path:
    """A copy of the session's small world where some owners made a twin release (ε = 1).

    Built once per test session (a marker file makes later calls reuse it), through the
    same service the Data owners page calls; the shared ``small_world`` is never modified.
    """
    root = base / "app_world"
    if (root / ".ready").exists():
        return root
    if root.exists():
        shutil.rmtree(root)
    shutil.copytree(small_world, root)
    for owner in RELEASED:
        make_twin_release(str(root / owner), 1.0, requester="app tests")
    (root / ".ready").touch()
    return root
