"""End to end in headless Chromium: the served app, clicked like a person would.

Runs an offer in the Offer Lab (KPI cards and the daily chart appear), then opens Privacy &
Compliance and verifies the owner's ledger chain. Screenshots go to ``test-artifacts/``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from browser.harness import serve_app, wait_idle
from browser.worlds import prepared_world

from app_pages.trials import SYNTHESISER_ENV

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def app_url(small_world: Path, tmp_path_factory: pytest.TempPathFactory,
            artifacts: Path) -> Iterator[str]:
    world = prepared_world(small_world, tmp_path_factory.getbasetemp())
    cache = str(tmp_path_factory.getbasetemp() / "model_cache")
    yield from serve_app(world, artifacts / "streamlit.log",
                         **{SYNTHESISER_ENV: "independent", "TWINSIM_CACHE": cache})


def test_overview_renders(page, app_url: str, artifacts: Path) -> None:  # type: ignore[no-untyped-def]
    page.goto(app_url)
    page.get_by_text("Merchants in").wait_for()
    page.locator("[data-testid='stDataFrame']").wait_for()
    wait_idle(page)
    page.screenshot(path=str(artifacts / "overview.png"), full_page=True)
    assert page.get_by_role("link", name="Offer Lab").first.is_visible()


def test_offer_lab_then_verify_the_chain(page, app_url: str, artifacts: Path) -> None:  # type: ignore[no-untyped-def]
    page.goto(f"{app_url}/offer_lab")
    page.get_by_text("Estimated cohort size (DP)").wait_for()
    wait_idle(page)
    twins = page.get_by_label("Twins to simulate")
    twins.fill("1500")
    twins.press("Enter")
    wait_idle(page)
    page.get_by_role("button", name="Run trial").click()
    page.get_by_text("Results: Discount offer").wait_for(timeout=120_000)
    wait_idle(page)
    cards = page.get_by_test_id("stMetric")
    for label in ("Redemption", "Incremental revenue", "Incremental margin", "ROI"):
        assert cards.filter(has_text=label).count() == 1, label
    chart = page.locator("[data-testid='stVegaLiteChart']").first
    chart.wait_for()
    chart.scroll_into_view_if_needed()
    page.wait_for_timeout(500)  # let Vega finish drawing before the screenshot
    page.screenshot(path=str(artifacts / "offer_lab.png"), full_page=True)

    page.get_by_role("link", name="Privacy & Compliance").click()
    page.get_by_role("button", name="Verify chain").wait_for()
    wait_idle(page)
    page.get_by_role("button", name="Verify chain").click()
    page.get_by_text("Chain verified").wait_for()
    page.screenshot(path=str(artifacts / "privacy.png"), full_page=True)


@pytest.mark.parametrize(("path", "heading"), [("owners", "Data owners"),
                                               ("studio", "Simulation Studio")])
def test_other_pages_render(page, app_url: str, artifacts: Path, path: str,  # type: ignore[no-untyped-def]
                            heading: str) -> None:
    page.goto(f"{app_url}/{path}")
    page.get_by_role("heading", name=heading).wait_for()
    page.locator("[data-testid='stDataFrame'], [data-testid='stMetric']").first.wait_for()
    wait_idle(page)
    assert page.locator("[data-testid='stException']").count() == 0
    page.screenshot(path=str(artifacts / f"{path}.png"), full_page=True)
