"""Plan one settlement from its own inputs: the unit of work that runs in parallel.

A :class:`SettlementTask` holds everything one settlement needs: its units, its
territory, the barriers and crossings near it, the streets around it, the norms and
the seed. :func:`plan_task` turns it into a :class:`SettlementOutcome` (its unit graph,
its districts and its warnings) without touching anything else. So a settlement
gives the same result in this process, in a worker process or on a Dask cluster.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import asdict, dataclass, field

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from districting import __version__
from districting.config import Config
from districting.errors import DistrictingError
from districting.graph import SettlementGraph, build_settlement_graph
from districting.hierarchy import SettlementPlan, plan_settlement
from districting.network import StreetNetwork, Walks
from districting.workload import walking_minutes

#: Streets this far beyond a settlement's bounding box are kept for its walks (metres).
STREET_MARGIN_M = 2_000.0
#: Unit columns a settlement's planning reads.
TASK_COLUMNS = ("unit_id", "building_id", "address", "function", "residents", "households",
                "workload", "footprint")


@dataclass
class SettlementTask:
    """The inputs of one settlement's plan; ``units`` is numbered ``0..n-1``."""

    settlement_id: str
    units: gpd.GeoDataFrame
    polygon: shapely.Geometry
    barriers: np.ndarray
    crossings: np.ndarray
    network: StreetNetwork | None
    config: Config
    seed: int

    @property
    def size(self) -> int:
        return len(self.units)

    def fingerprint(self) -> str:
        """A digest of every input, so a checkpoint is reused only for the same task."""
        digest = hashlib.sha256()
        digest.update(f"{__version__}\x1f{self.settlement_id}\x1f{self.seed}".encode())
        digest.update(json.dumps(asdict(self.config), sort_keys=True, default=str).encode())
        plain = self.units.drop(columns=[self.units.geometry.name, "footprint"],
                                errors="ignore")
        digest.update(pd.util.hash_pandas_object(plain, index=True).to_numpy().tobytes())
        digest.update(b"".join(shapely.to_wkb(self.units.geometry.to_numpy())))
        if "footprint" in self.units.columns:
            digest.update(b"".join(shapely.to_wkb(self.units["footprint"].to_numpy())))
        digest.update(shapely.to_wkb(self.polygon))
        for array in (self.barriers, self.crossings):
            digest.update(b"".join(shapely.to_wkb(array)) if len(array) else b"-")
        if self.network is not None:
            digest.update(self.network.node_xy.tobytes())
            digest.update(self.network.segment_ends.tobytes())
        return digest.hexdigest()


@dataclass
class SettlementOutcome:
    """One settlement's unit graph and districts, or why it failed (``error``)."""

    settlement_id: str
    graph: SettlementGraph | None = None
    plan: SettlementPlan | None = None
    #: The territory its tiles cover (a piece of the polygon no tile reaches is left out).
    territory: shapely.Geometry | None = None
    warnings: list[str] = field(default_factory=list)
    error: str = ""
    seconds: float = 0.0
    units: int = 0

    @property
    def ok(self) -> bool:
        return not self.error


def plan_task(task: SettlementTask) -> SettlementOutcome:
    """Plan one settlement; a failure is returned as the outcome's ``error``, not raised.

    A :class:`~districting.errors.DistrictingError` (bad data, impossible norms) keeps
    its own message; any other exception is named with its type, since it is a bug.
    """
    started = time.monotonic()
    try:
        outcome = _plan(task)
    except DistrictingError as error:
        outcome = SettlementOutcome(task.settlement_id, error=str(error))
    except Exception as error:  # a bug: reported for this settlement, the others go on
        outcome = SettlementOutcome(task.settlement_id,
                                    error=f"internal error: {type(error).__name__}: {error}")
    outcome.seconds = time.monotonic() - started
    outcome.units = task.size
    return outcome


def _plan(task: SettlementTask) -> SettlementOutcome:
    config, units, code = task.config, task.units, task.settlement_id
    n = len(units)
    graph = build_settlement_graph(
        code, np.arange(n), units.geometry.to_numpy(), units["residents"].to_numpy(),
        task.polygon, barriers=task.barriers, crossings=task.crossings,
        crossing_radius_m=config.graph.crossing_radius_m, network=task.network,
        max_detour=config.graph.max_detour, detour_slack_m=config.graph.detour_slack_m,
        contiguity=config.graph.contiguity, footprints=units["footprint"].to_numpy(),
        building_ids=units["building_id"].to_numpy(),
    )
    warnings = []
    covered = shapely.union_all(graph.tiles)
    lost = float(task.polygon.area - covered.area)
    if lost > 1.0 and config.graph.contiguity == "tiles":
        warnings.append(f"settlement {code}: {lost:,.0f} m² of its polygon holds no "
                        "building and is left out of every district")
    # CDs are drawn with each unit's walk from its nearest neighbour; each CD's own
    # walking tour then replaces it in the workload (see plan_settlement).
    proxy = walking_minutes(graph.nearest_walk(), units["households"].to_numpy(),
                            norms=config.workload)
    walks = Walks(shapely.get_coordinates(units.geometry.to_numpy()), task.network)
    plan = plan_settlement(graph, units, config=config, seed=task.seed, walk_proxy=proxy,
                           walks=walks)
    for note in graph.components:
        warnings.append(f"settlement {code}: a part of {note.size} unit(s) and "
                        f"{note.residents} residents was cut off by a barrier; {note.action}")
    warnings.extend(plan.notes)
    return SettlementOutcome(code, graph=graph, plan=plan, territory=covered,
                             warnings=warnings)


def settlement_tasks(
    units: gpd.GeoDataFrame,
    polygons: gpd.GeoDataFrame,
    *,
    barriers: np.ndarray,
    crossings: np.ndarray,
    network: StreetNetwork | None,
    config: Config,
    seed: int,
) -> list[SettlementTask]:
    """One task per settlement of ``polygons``, in their order, with the barriers,
    crossings and streets near each."""
    columns = [c for c in TASK_COLUMNS if c in units.columns]
    codes = units["settlement_id"].to_numpy()
    barrier_tree = shapely.STRtree(barriers) if len(barriers) else None
    crossing_tree = shapely.STRtree(crossings) if len(crossings) else None
    tasks = []
    for code, polygon in zip(polygons["settlement_id"], polygons.geometry, strict=True):
        positions = np.flatnonzero(codes == code)
        local = gpd.GeoDataFrame(units.iloc[positions][columns].reset_index(drop=True),
                                 geometry=units.geometry.to_numpy()[positions], crs=units.crs)
        margin = config.graph.crossing_radius_m
        near = shapely.box(*shapely.buffer(polygon, margin).bounds)
        tasks.append(SettlementTask(
            settlement_id=str(code), units=local, polygon=polygon,
            barriers=barriers[np.sort(barrier_tree.query(near))] if barrier_tree is not None
            else barriers,
            crossings=crossings[np.sort(crossing_tree.query(near))]
            if crossing_tree is not None else crossings,
            network=network.within(shapely.bounds(polygon), margin=STREET_MARGIN_M)
            if network is not None else None,
            config=config, seed=seed,
        ))
    return tasks
