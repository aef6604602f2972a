"""Plan one settlement from its own inputs: the unit of work that runs in parallel.

A :class:`SettlementTask` holds everything one settlement needs: its units, its
territory, the barriers and crossings near it, the streets around it, the norms and
the seed. :func:`plan_task` turns it into a :class:`SettlementOutcome` (its unit graph,
its districts and its warnings) without touching anything else. So a settlement
gives the same result in this process, in a worker process or on a Dask cluster.

A very large city (more than ``split_units`` units, or more than ``split_cds`` CDs'
worth of workload) is first cut into **blocks** of whole instructor districts, so that
it does not hold up the run as one long task. The planning effort of a block grows
with both its units and its CDs: a block of light private houses has many units and
few CDs, a block of flats the reverse. Each unit's effort is its share of a block of
``split_units`` units plus its workload's share of a block of :data:`BLOCK_CDS` CDs;
the city gets as many blocks as its effort sums to. The cut is recursive bisection along
the longer side each time, each cut near the share of the effort its side will
plan, moved to a whole ID's worth of workload. A
block's territory is the union of its units' Voronoi tiles in the city, and
each block is planned as its own task; :func:`merge_blocks` then joins the blocks'
districts into one plan of the city, numbered block by block. CDs, IDs and RDs never
cross a block's edge.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from dataclasses import asdict, dataclass, field, replace
from itertools import groupby
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from districting import __version__
from districting.config import Config
from districting.errors import DistrictingError
from districting.graph import SettlementGraph, build_settlement_graph, voronoi_tiles
from districting.hierarchy import SettlementPlan, plan_settlement, reading_order
from districting.network import StreetNetwork, Walks
from districting.territory import district_territories, merge
from districting.units import spread_duplicate_points
from districting.workload import district_target, walking_minutes

#: Streets this far beyond a settlement's bounding box are kept for its walks (metres).
STREET_MARGIN_M = 2_000.0
#: Settlements of more units than this are planned in blocks (see the module docstring).
SPLIT_UNITS = 4_000
#: ... and so are those of more CDs' worth of workload than this (the 2021 Baikonur
#: plan, 170 CDs, stays whole).
SPLIT_CDS = 200
#: A block holds about this many CDs' worth of workload (or ``SPLIT_UNITS`` units, or
#: a mix). Measured on a 700,000-resident city of 637 CDs, planned serially: blocks of
#: 200 CDs took 47 s in all (the longest 15 s), of 120 CDs 44 s (11 s), of 80 CDs
#: 40 s (6 s), with the same number of CDs.
BLOCK_CDS = 80
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
    #: For a block of a large city: its number and the count of blocks, and the rows of
    #: its units among the city's (in register order).
    block: int = 0
    blocks: int = 1
    rows: np.ndarray | None = None
    #: A block's units' tiles in the whole city, as WKB (a block re-tiled on its own
    #: can leave a tile touching the rest only at a corner).
    tiles_wkb: np.ndarray | None = None

    @property
    def size(self) -> int:
        return len(self.units)

    @property
    def effort(self) -> float:
        """How long the task is expected to take, in blocks' worth (see the module
        docstring): the runs start the longest tasks first, so that none is left for
        the end."""
        target = district_target(workload=self.config.workload, counting=self.config.counting)
        workload = (self.units["workload"].to_numpy(dtype=float) if "workload" in self.units
                    else np.zeros(self.size))
        return float(unit_effort(workload, split_units=SPLIT_UNITS, target=target).sum())

    @property
    def key(self) -> str:
        """The task's name: the settlement, and the block when the city is split."""
        return (self.settlement_id if self.blocks == 1
                else f"{self.settlement_id}.{self.block + 1:03d}")

    def fingerprint(self) -> str:
        """A digest of every input, so a checkpoint is reused only for the same task."""
        digest = hashlib.sha256()
        digest.update(f"{__version__}\x1f{self.key}\x1f{self.blocks}\x1f{self.seed}".encode())
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
        if self.tiles_wkb is not None:
            digest.update(b"".join(self.tiles_wkb))
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
    #: The task's key (see :attr:`SettlementTask.key`) and, for a block, its units' rows
    #: among the city's.
    key: str = ""
    rows: np.ndarray | None = None
    #: The task's :meth:`~SettlementTask.fingerprint`, when its checkpoint is kept.
    fingerprint: str = ""

    @property
    def ok(self) -> bool:
        return not self.error

    # An outcome travels from a worker and into a checkpoint by pickle. Its territories
    # go as WKB arrays, converted in one call each (pickling shapely objects one by one
    # took the main process seconds per hundred thousand units). Its units' tiles stay
    # behind once the territories are made from them: they are the largest part of an
    # outcome, and nothing after the districts needs them (``graph.tiles`` arrives empty).
    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        shipped = self.plan is not None and self.plan.territories is not None
        if self.graph is not None:
            state["graph"] = replace(self.graph, tiles=np.empty(0, dtype=object) if shipped
                                     else shapely.to_wkb(self.graph.tiles))
        if shipped:
            assert self.plan is not None and self.plan.territories is not None
            cds, ids, rds = (shapely.to_wkb(level) for level in self.plan.territories)
            state["plan"] = replace(self.plan, territories=(cds, ids, rds))
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        graph, plan = state.get("graph"), state.get("plan")
        if graph is not None:
            state["graph"] = replace(graph, tiles=shapely.from_wkb(graph.tiles))
        if plan is not None and plan.territories is not None:
            cds, ids, rds = (shapely.from_wkb(level) for level in plan.territories)
            state["plan"] = replace(plan, territories=(cds, ids, rds))
        self.__dict__.update(state)


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
    outcome.key = task.key
    outcome.rows = task.rows
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
        tiles=None if task.tiles_wkb is None else shapely.from_wkb(task.tiles_wkb),
    )
    warnings = []
    covered = merge(graph.tiles)
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
    # Dissolved here, so that a worker process does this share of the layers' work too.
    plan.territories = district_territories(
        graph.tiles, plan.cd_of_node, plan.id_of_cd, plan.rd_of_cd,
        ids=len(plan.id_exception), rds=len(plan.rd_point_name))
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
    split_units: int | None = SPLIT_UNITS,
    split_cds: int = SPLIT_CDS,
) -> list[SettlementTask]:
    """One task per settlement of ``polygons``, in their order, with the barriers,
    crossings and streets near each; a settlement of more than ``split_units`` units
    or ``split_cds`` CDs' workload (``split_units=None``: never) gives one task per
    block (see the module docstring)."""
    columns = [c for c in TASK_COLUMNS if c in units.columns]
    codes = units["settlement_id"].to_numpy()
    barrier_tree = shapely.STRtree(barriers) if len(barriers) else None
    crossing_tree = shapely.STRtree(crossings) if len(crossings) else None

    def task(code: str, positions: np.ndarray, polygon: shapely.Geometry,
             **block: Any) -> SettlementTask:
        local = gpd.GeoDataFrame(units.iloc[positions][columns].reset_index(drop=True),
                                 geometry=units.geometry.to_numpy()[positions], crs=units.crs)
        if "footprint" in local.columns:  # a geometry column pickles in one call, not per row
            local["footprint"] = gpd.GeoSeries(local["footprint"].to_numpy(), crs=units.crs)
        near = shapely.box(*shapely.buffer(polygon, config.graph.crossing_radius_m).bounds)
        return SettlementTask(
            settlement_id=str(code), units=local, polygon=polygon,
            barriers=barriers[np.sort(barrier_tree.query(near))] if barrier_tree is not None
            else barriers,
            crossings=crossings[np.sort(crossing_tree.query(near))]
            if crossing_tree is not None else crossings,
            network=network.within(shapely.bounds(polygon), margin=STREET_MARGIN_M)
            if network is not None else None,
            config=config, seed=seed, **block,
        )

    rows_of = pd.Series(np.arange(len(units))).groupby(codes, sort=False).indices
    empty = np.zeros(0, dtype=np.int64)
    workload = units["workload"].to_numpy(dtype=float)
    target = district_target(workload=config.workload, counting=config.counting)
    tasks = []
    for code, polygon in zip(polygons["settlement_id"], polygons.geometry, strict=True):
        positions = np.asarray(rows_of.get(code, empty), dtype=np.int64)
        mine = workload[positions]
        if (split_units is None or config.graph.contiguity != "tiles"
                or (len(positions) <= split_units and mine.sum() <= split_cds * target)):
            tasks.append(task(code, positions, polygon))
            continue
        effort = unit_effort(mine, split_units=split_units, target=target)
        points = units.geometry.to_numpy()[positions]
        parts = city_blocks(shapely.get_coordinates(points), mine, effort=effort,
                            blocks=max(2, math.ceil(effort.sum())), config=config)
        tiles = voronoi_tiles(np.asarray(spread_duplicate_points(points)), polygon)
        parts = contiguous_blocks(parts, tiles)
        for number, rows in enumerate(parts):
            tasks.append(task(code, positions[rows], shapely.union_all(tiles[rows]),
                              block=number, blocks=len(parts), rows=rows,
                              tiles_wkb=shapely.to_wkb(tiles[rows])))
    return tasks


def unit_effort(workload: np.ndarray, *, split_units: int, target: float) -> np.ndarray:
    """Each unit's planning effort, in blocks' worth (see the module docstring): its share
    of a block of ``split_units`` units plus its workload's share of :data:`BLOCK_CDS`
    CDs of ``target`` workload."""
    return 1.0 / split_units + np.asarray(workload, dtype=float) / (BLOCK_CDS * max(target, 1e-9))


def city_blocks(xy: np.ndarray, workload: np.ndarray, *, blocks: int, config: Config,
                effort: np.ndarray | None = None) -> list[np.ndarray]:
    """Rows of each block of a large city, in reading order of the blocks' centres.

    Recursive bisection along the longer side. Each cut gives each side about its
    share of the planning ``effort`` (per unit; default: the same for each unit),
    moved to the nearest whole instructor district of workload (``span_target`` CDs
    of the target workload), so that blocks end on whole IDs.
    """
    per_id = config.instructor.span_target * district_target(
        workload=config.workload, counting=config.counting)
    effort = np.ones(len(xy)) if effort is None else np.asarray(effort, dtype=float)

    def split(rows: np.ndarray, count: int) -> list[np.ndarray]:
        if count <= 1:
            return [rows]
        first = count // 2
        here = xy[rows]
        axis = int(np.ptp(here[:, 0]) < np.ptp(here[:, 1]))
        order = rows[np.lexsort((here[:, 1 - axis], here[:, axis]))]
        cumulative = np.cumsum(workload[order])
        total = float(cumulative[-1]) if len(cumulative) else 0.0
        ids = max(count, round(total / per_id)) if per_id > 0 else count
        # Cut near the effort share, moved to the nearest whole ID of workload.
        spent = np.cumsum(effort[order])
        share = int(np.searchsorted(spent, spent[-1] * first / count)) if len(order) else 0
        near = cumulative[min(share, len(order) - 1)] if len(order) else 0.0
        whole = min(max(round(ids * near / total), 1), ids - 1) if total > 0 else first
        cut = int(np.searchsorted(cumulative, total * whole / ids))
        cut = min(max(cut, first), len(order) - (count - first))
        return split(np.sort(order[:cut]), first) + split(np.sort(order[cut:]), count - first)

    parts = split(np.arange(len(xy)), blocks)
    centres = np.array([xy[rows].mean(axis=0) for rows in parts])
    return [parts[i] for i in reading_order(centres, band_m=2_000.0)]


def contiguous_blocks(parts: list[np.ndarray], tiles: np.ndarray) -> list[np.ndarray]:
    """The blocks (rows of units) made contiguous: a block's units whose tiles lie apart
    from the rest of its territory (or touch it only at a corner) join the block with
    which their piece shares the longest border. A district of a block could otherwise
    hold such a piece, and its territory would not be one polygon."""
    block_of = np.empty(len(tiles), dtype=np.int64)
    for number, rows in enumerate(parts):
        block_of[rows] = number
    inside = shapely.point_on_surface(tiles)
    for _ in range(len(parts)):  # each round moves pieces; a few rounds settle it
        shapes = [shapely.union_all(tiles[block_of == b]) for b in range(len(parts))]
        edges = shapely.boundary(np.array(shapes, dtype=object))
        moved = False
        for b, shape in enumerate(shapes):
            pieces = shapely.get_parts(shape)
            if len(pieces) <= 1:
                continue
            main = int(np.argmax(shapely.area(pieces)))
            rows = np.flatnonzero(block_of == b)
            for j, piece in enumerate(pieces):
                if j == main:
                    continue
                border = shapely.length(shapely.intersection(edges, piece.boundary))
                border[b] = 0.0
                target = int(np.argmax(border))
                if border[target] <= 0.0:
                    continue  # touches no other block along a border: left where it is
                block_of[rows[shapely.covers(piece, inside[rows])]] = target
                moved = True
        if not moved:
            break
    return [np.flatnonzero(block_of == b) for b in range(len(parts))]


def join_blocks(outcomes: list[SettlementOutcome]) -> list[SettlementOutcome]:
    """One outcome per settlement, in order: the blocks of a city (consecutive, in block
    order, as :func:`settlement_tasks` makes them) merged by :func:`merge_blocks`."""
    joined = []
    for _, group in groupby(outcomes, key=lambda outcome: outcome.settlement_id):
        parts = list(group)
        joined.append(parts[0] if parts[0].rows is None else merge_blocks(parts))
    return joined


def merge_blocks(outcomes: list[SettlementOutcome]) -> SettlementOutcome:
    """One settlement's outcome from its blocks' (in block order): graphs and districts
    side by side, CDs, IDs and RDs numbered block after block.

    The merged nodes are the blocks' units in block order; ``rows`` maps them to the
    city's units.
    """
    first = outcomes[0]
    failed = [o for o in outcomes if not o.ok]
    if failed:
        return SettlementOutcome(
            first.settlement_id, error="; ".join(f"block {o.key}: {o.error}" for o in failed),
            seconds=sum(o.seconds for o in outcomes), units=sum(o.units for o in outcomes),
            key=first.settlement_id)
    graphs: list[SettlementGraph] = []
    plans: list[SettlementPlan] = []
    for outcome in outcomes:
        assert outcome.graph is not None and outcome.plan is not None  # a block that ran
        graphs.append(outcome.graph)
        plans.append(outcome.plan)
    nodes = np.cumsum([0] + [len(g.positions) for g in graphs])
    cds = np.cumsum([0] + [len(p.id_of_cd) for p in plans])
    ids = np.cumsum([0] + [len(p.id_exception) for p in plans])
    rds = np.cumsum([0] + [len(p.rd_point_name) for p in plans])
    graph = SettlementGraph(
        settlement_id=first.settlement_id,
        positions=np.arange(int(nodes[-1])),
        tiles=np.concatenate([g.tiles for g in graphs]),
        edges=np.vstack([g.edges + nodes[i] for i, g in enumerate(graphs)]),
        lengths=np.concatenate([g.lengths for g in graphs]),
        edge_kind=np.concatenate([g.edge_kind for g in graphs]),
        cut_by_barrier=sum(g.cut_by_barrier for g in graphs),
        cut_by_detour=sum(g.cut_by_detour for g in graphs),
        components=[replace(note, node=note.node + int(nodes[i]))
                    for i, g in enumerate(graphs) for note in g.components],
    )
    plan = SettlementPlan(
        settlement_id=first.settlement_id,
        cd_of_node=np.concatenate([p.cd_of_node + cds[i] for i, p in enumerate(plans)]),
        id_of_cd=np.concatenate([p.id_of_cd + ids[i] for i, p in enumerate(plans)]),
        rd_of_cd=np.concatenate([p.rd_of_cd + rds[i] for i, p in enumerate(plans)]),
        cd_exception=[e for p in plans for e in p.cd_exception],
        id_exception=[e for p in plans for e in p.id_exception],
        rd_point_position=[int(q + nodes[i]) for i, p in enumerate(plans)
                           for q in p.rd_point_position],
        rd_point_name=[name for p in plans for name in p.rd_point_name],
        rd_mean_walk_m=[w for p in plans for w in p.rd_mean_walk_m],
        rd_max_walk_m=[w for p in plans for w in p.rd_max_walk_m],
        floor=plans[0].floor,
        ceiling=plans[0].ceiling,
        rd_status=", ".join(sorted({p.rd_status for p in plans})),
        notes=[note for p in plans for note in p.notes],
        tour_m=np.concatenate([p.tour_m for p in plans]),
        walk_min=np.concatenate([p.walk_min for p in plans]),
        walk_moves=sum(p.walk_moves for p in plans),
        visit_order=np.concatenate([p.visit_order for p in plans]),
        naive_m=np.concatenate([p.naive_m for p in plans]),
        territories=_joined_territories(plans),
    )
    rows = [o.rows for o in outcomes]
    return SettlementOutcome(
        first.settlement_id, graph=graph, plan=plan,
        territory=shapely.union_all([o.territory for o in outcomes]),
        warnings=[line for o in outcomes for line in o.warnings],
        seconds=sum(o.seconds for o in outcomes), units=sum(o.units for o in outcomes),
        key=first.settlement_id,
        rows=np.concatenate([r for r in rows if r is not None]),
    )


def _joined_territories(
    plans: list[SettlementPlan],
) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """The blocks' CD, ID and RD territories side by side (``None`` if any is missing)."""
    parts = [p.territories for p in plans]
    if any(part is None for part in parts):
        return None
    cds, ids, rds = zip(*[part for part in parts if part is not None], strict=True)
    return np.concatenate(cds), np.concatenate(ids), np.concatenate(rds)
