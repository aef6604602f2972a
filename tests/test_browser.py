"""The plan map (map.html) in a real browser: headless Debian Chromium through Playwright.

The machine has no internet: every CDN request of the page is served from the
local npm packages that ``make test`` installs (see ``web_assets.py``). Skipped
when Chromium or those packages are missing, except under CI, where that fails.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from plan_fixtures import grid_plan
from web_assets import (
    CHROMIUM,
    CHROMIUM_ARGS,
    OfflineAssets,
    offline_assets,
    require_browser,
    save_artifact,
)

from districting.layers import PlanLayers
from districting.outputs.maps import CLASS_NAMES, LAYER_NAMES, SEARCH_PLACEHOLDER, write_map

VIEWPORT = {"width": 1280, "height": 800}
TIMEOUT_MS = 5000


@dataclass
class MapPage:
    """An opened map page with everything it complained about."""

    page: Any
    assets: OfflineAssets
    errors: list[str] = field(default_factory=list)

    def assert_clean(self) -> None:
        """No page error, no console error, no request left unanswered."""
        assert self.errors == []
        assert self.assets.aborted == []


@pytest.fixture(scope="module")
def layers() -> PlanLayers:
    return PlanLayers(**grid_plan())


@pytest.fixture(scope="module")
def map_file(layers: PlanLayers, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("browser") / "map.html"
    write_map(layers, path, title="Grid plan (synthetic test data)")
    return path


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    require_browser()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def opened(browser: Any, map_file: Path) -> Iterator[MapPage]:
    """A fresh page (own context) with map.html loaded and its shapes drawn."""
    context = browser.new_context(viewport=VIEWPORT)
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    assets = offline_assets()
    result = MapPage(page=page, assets=assets)
    page.on("pageerror", lambda exc: result.errors.append(f"pageerror: {exc}"))
    page.on("console", lambda msg: result.errors.append(f"console: {msg.text}")
            if msg.type == "error" else None)
    page.route("**/*", assets.handle)
    try:
        page.goto(map_file.as_uri(), wait_until="load")
        page.wait_for_selector(f"path.{CLASS_NAMES['counting_districts']}", state="attached")
        yield result
    finally:
        context.close()


def _count(page: Any, layer: str) -> int:
    return int(page.locator(f"path.{CLASS_NAMES[layer]}").count())


def test_every_district_is_drawn_once(opened: MapPage, layers: PlanLayers) -> None:
    page = opened.page
    assert _count(page, "counting_districts") == len(layers.counting_districts)
    assert _count(page, "instructor_districts") == len(layers.instructor_districts)
    assert _count(page, "registration_districts") == len(layers.registration_districts)
    assert _count(page, "registration_points") == len(layers.registration_points)
    assert _count(page, "settlements") == len(layers.settlements)
    assert _count(page, "units") == 0  # the units layer is off at start
    assert page.locator(".leaflet-tile").count() == 0  # no tile server
    served = " ".join(opened.assets.served)
    assert "leaflet@1.9.3/dist/leaflet.js" in served
    assert "leaflet-search@2.9.7/dist/leaflet-search.min.js" in served
    opened.assert_clean()


def test_hovering_a_cd_shows_its_code(opened: MapPage, layers: PlanLayers) -> None:
    from playwright.sync_api import expect

    page = opened.page
    shapes = page.locator(f"path.{CLASS_NAMES['counting_districts']}")
    codes = layers.counting_districts["cd_code"].tolist()  # drawn in layer order
    for i, code in enumerate(codes):
        shapes.nth(i).hover()
        tooltip = page.locator(".leaflet-tooltip")
        expect(tooltip).to_have_count(1)
        expect(tooltip).to_contain_text(f"CD {code}")
        expect(tooltip).to_contain_text("Utilization")
    opened.assert_clean()


def test_layer_control_toggles_counting_districts(opened: MapPage, layers: PlanLayers) -> None:
    from playwright.sync_api import expect

    page = opened.page
    n_cds = len(layers.counting_districts)
    n_ids = len(layers.instructor_districts)
    control = page.locator(".leaflet-control-layers")
    control.hover()  # expands it when collapsed
    for name in LAYER_NAMES.values():
        expect(control.locator("label", has_text=name)).to_have_count(1)
    checkbox = control.locator("label", has_text=LAYER_NAMES["counting_districts"]).locator(
        "input[type=checkbox]")
    expect(checkbox).to_be_checked()
    cd_paths = page.locator(f"path.{CLASS_NAMES['counting_districts']}")
    checkbox.click()
    expect(cd_paths).to_have_count(0)
    assert _count(page, "instructor_districts") == n_ids  # the other layers stay
    checkbox.click()
    expect(cd_paths).to_have_count(n_cds)
    opened.assert_clean()


def test_search_finds_a_cd_code_and_an_address(opened: MapPage, layers: PlanLayers) -> None:
    from playwright.sync_api import expect

    page = opened.page
    box = page.locator(".leaflet-control-search input.search-input")
    expect(box).to_have_attribute("placeholder", SEARCH_PLACEHOLDER)
    code = str(layers.counting_districts["cd_code"].iloc[-1])
    box.click()
    box.press_sequentially(code)
    tips = page.locator(".leaflet-control-search .search-tip")
    exact = tips.filter(has_text=f"CD {code}").first
    expect(exact).to_be_visible()
    exact.click()
    expect(page.locator(".leaflet-popup-content")).to_contain_text(f"CD {code}")

    unit = layers.units.iloc[-1]
    box.fill("")
    box.press_sequentially(str(unit["address"]))
    hit = tips.filter(has_text=f"{unit['address']} · CD {unit['cd_code']}")
    expect(hit).to_have_count(1)
    hit.click()
    popup = page.locator(".leaflet-popup-content")
    expect(popup).to_have_count(1)  # the CD's popup closed (it fades out first)
    expect(popup).to_contain_text(str(unit["address"]))
    opened.assert_clean()


def test_map_screenshot(opened: MapPage, tmp_path: Path) -> None:
    page = opened.page
    page.wait_for_timeout(300)  # let the opening fitBounds settle
    shot = tmp_path / "map.png"
    page.screenshot(path=str(shot))
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(data) > 20_000  # a drawn map, not a blank page
    save_artifact(shot, "map.png")
    opened.assert_clean()


@pytest.fixture(scope="module")
def planned_map(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, PlanLayers]:
    """map.html of a plan the pipeline made from a two-settlement register."""
    from conftest import two_settlement_register

    from districting.config import config_from_dict
    from districting.pipeline import plan_from_file

    folder = tmp_path_factory.mktemp("planned")
    register = folder / "register.gpkg"
    two_settlement_register().to_file(register, layer="buildings", engine="pyogrio")
    config = config_from_dict({"counting": {"hours_per_day": 1.0, "tolerance": 0.3},
                               "registration": {"residents_per_point": 3000}})
    result, _ = plan_from_file(register, config=config, progress=False)
    path = folder / "map.html"
    write_map(result.layers, path, title="Two settlements")
    return path, result.layers


def test_a_pipeline_plan_draws_every_district(browser: Any,
                                              planned_map: tuple[Path, PlanLayers]) -> None:
    path, plan = planned_map
    context = browser.new_context(viewport=VIEWPORT)
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    opened = MapPage(page=page, assets=offline_assets())
    page.on("pageerror", lambda exc: opened.errors.append(f"pageerror: {exc}"))
    page.route("**/*", opened.assets.handle)
    try:
        page.goto(path.as_uri(), wait_until="load")
        page.wait_for_selector(f"path.{CLASS_NAMES['counting_districts']}", state="attached")
        assert _count(page, "counting_districts") == len(plan.counting_districts)
        assert _count(page, "instructor_districts") == len(plan.instructor_districts)
        assert _count(page, "registration_districts") == len(plan.registration_districts)
        assert _count(page, "registration_points") == len(plan.registration_points)
        shot = path.with_suffix(".png")
        page.screenshot(path=str(shot))
        save_artifact(shot, "map-pipeline.png")
        opened.assert_clean()
    finally:
        context.close()
