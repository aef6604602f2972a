"""Shared fixtures: small, real-shaped registers built in code."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import shapely

from districting.checkpoints import KEY_ENV
from districting.config import Config, config_from_dict

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
UTM41N = "EPSG:32641"
ORIGIN = (331_000.0, 5_054_000.0)  # near Baikonur in UTM 41N


@pytest.fixture(autouse=True, scope="session")
def checkpoint_key(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Runs sign their checkpoints with a key of this test session, not the user's."""
    path = tmp_path_factory.mktemp("checkpoint-key") / "checkpoint.key"
    before = os.environ.get(KEY_ENV)
    os.environ[KEY_ENV] = str(path)
    yield path
    if before is None:
        os.environ.pop(KEY_ENV, None)
    else:
        os.environ[KEY_ENV] = before


def grid_buildings(
    *,
    settlement_id: str,
    name: str,
    nx: int,
    ny: int,
    origin: tuple[float, float] = ORIGIN,
    spacing: float = 60.0,
    seed: int = 0,
    prefix: str = "B",
) -> gpd.GeoDataFrame:
    """A grid of residential buildings with varied sizes, one school per 40 buildings."""
    rng = np.random.default_rng(seed)
    rows = []
    for j in range(ny):
        for i in range(nx):
            n = len(rows)
            dwellings = int(rng.choice([1, 1, 1, 12, 30, 45, 60]))
            residents = round(dwellings * rng.uniform(1.8, 2.8))
            rows.append({
                "building_id": f"{prefix}{n:05d}",
                "settlement_id": settlement_id,
                "settlement_name": name,
                "address": f"ул. Тестовая, {n + 1}",
                "kind": "residential",
                "dwellings": dwellings,
                "residents": residents,
                "function": "",
                "geometry": shapely.Point(origin[0] + i * spacing + rng.uniform(-5, 5),
                                          origin[1] + j * spacing + rng.uniform(-5, 5)),
            })
    frame = gpd.GeoDataFrame(rows, crs=UTM41N)
    schools = frame.index[::40]
    frame.loc[schools, ["kind", "dwellings", "residents", "function"]] = [
        "non_residential", 0, 0, "school"]
    return frame


def two_settlement_register() -> gpd.GeoDataFrame:
    """A town of 20×15 buildings and a village of 8×6, in EPSG:4326."""
    town = grid_buildings(settlement_id="431010000", name="Город", nx=20, ny=15, seed=1)
    village = grid_buildings(settlement_id="431030100", name="Село", nx=8, ny=6, seed=2,
                             origin=(ORIGIN[0] + 5000, ORIGIN[1]), prefix="V")
    frame = gpd.GeoDataFrame(
        gpd.pd.concat([town, village], ignore_index=True), crs=UTM41N
    )
    return frame.to_crs("EPSG:4326")


@pytest.fixture
def small_config() -> Config:
    """Norms sized so that the small register gives a few dozen CDs."""
    return small_norms()


def small_norms() -> Config:
    """The norms of the ``small_config`` fixture, for module-scoped fixtures."""
    return config_from_dict({
        "name": "test",
        "seed": 7,
        "time_limit": 10.0,
        "counting": {"working_days": 30, "hours_per_day": 1.0, "tolerance": 0.15},
        "registration": {"residents_per_point": 3000},
    })


@pytest.fixture
def register_file(tmp_path: Path) -> Path:
    """The two-settlement register written as a GeoPackage."""
    path = tmp_path / "register.gpkg"
    two_settlement_register().to_file(path, layer="buildings", engine="pyogrio")
    return path


@pytest.fixture
def shared_data() -> Path:
    """The shared reference data folder; tests using it skip when it is absent."""
    if not SHARED_DATA.exists():
        pytest.skip("../shared/data is not present")
    return SHARED_DATA
