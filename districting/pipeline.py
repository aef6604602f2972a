"""Run the stages in order: load → validate → unit graph → partition → hierarchy → layers."""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from districting import __version__
from districting.config import Config
from districting.errors import ConfigError, DistrictingError, PlanCheckError, Problem
from districting.graph import SettlementGraph, barrier_geometries
from districting.hierarchy import SettlementPlan
from districting.io.register import RawRegister, read_register
from districting.layers import LAYER_FIELDS, PlanLayers
from districting.network import StreetNetwork, street_network_from_layers
from districting.parallel import Cluster, Execution, cluster_for, run_settlements
from districting.settlement import join_blocks, settlement_tasks
from districting.staffing import staffing_summary, staffing_table
from districting.territory import district_territories
from districting.timing import stage
from districting.units import settlement_polygons, units_from_register
from districting.validate import raise_for_errors, validate_register
from districting.workload import district_target

logger = logging.getLogger(__name__)


@dataclass
class PlanResult:
    """A finished plan: its layers, the summary record and the warnings raised."""

    layers: PlanLayers
    summary: dict[str, Any]
    warnings: list[str] = field(default_factory=list)
    #: The norms the plan was made with (the staffing plan and sheets use them too).
    config: Config = field(default_factory=Config)


def _require_polygons(units: gpd.GeoDataFrame, *, config: Config) -> None:
    """Rook contiguity needs every unit to be a polygon."""
    if config.graph.contiguity == "tiles":
        return
    kinds = shapely.get_type_id(units["footprint"].to_numpy())
    points = np.flatnonzero(~np.isin(kinds, (3, 6)))
    if len(points):
        first = units["building_id"].iloc[points[0]]
        raise ConfigError(
            f"graph.contiguity '{config.graph.contiguity}' needs polygon buildings, but "
            f"{len(points)} are points (first: building_id {first}); use 'tiles'"
        )


def _street_network(raw: RawRegister, crs: object) -> StreetNetwork | None:
    """The register's street network, if it has the osmnx-style street layers."""
    nodes, edges = raw.layers.get("street_nodes"), raw.layers.get("street_edges")
    if nodes is None or edges is None or len(nodes) == 0 or len(edges) == 0:
        logger.info("no street layers: edge lengths are straight-line distances")
        return None
    network = street_network_from_layers(nodes, edges, crs=crs)
    logger.info("street network: %d nodes; edge lengths are walking distances", network.n_nodes)
    return network


def plan_from_file(
    path: str | Path,
    *,
    config: Config,
    seed: int | None = None,
    settlements: str | Path | None = None,
    progress: bool = True,
    execution: Execution | None = None,
) -> tuple[PlanResult, list[Problem]]:
    """Read, validate and plan a register file; raise on any validation error.

    The register is handed to :func:`plan_register` with no other reference kept, so its
    tables are let go once the units are made.
    """
    problems: list[Problem] = []
    execution = execution or Execution(progress=progress)
    # A parallel run's workers start while the register is read.
    with cluster_for(execution) as cluster:
        result = plan_register(_read_valid(path, settlements=settlements, problems=problems),
                               config=config, seed=config.seed if seed is None else seed,
                               progress=progress, execution=execution, cluster=cluster)
    return result, problems


def _read_valid(path: str | Path, *, settlements: str | Path | None,
                problems: list[Problem]) -> RawRegister:
    """The register read and validated; its problems are added to ``problems``."""
    with stage("reading the register"):
        raw = read_register(path, settlements=settlements)
    with stage("validating it"):
        problems.extend(validate_register(raw))
    raise_for_errors(problems)
    return raw


def plan_register(
    raw: RawRegister,
    *,
    config: Config,
    seed: int | None = None,
    progress: bool = True,
    execution: Execution | None = None,
    cluster: Cluster | None = None,
) -> PlanResult:
    """Plan a validated register: every stage after validation, ending in checked layers.

    ``seed`` defaults to the config's. Each settlement is planned as its own task (see
    :mod:`districting.settlement`), run as ``execution`` says (default: here, one after
    another, with no checkpoints), on ``cluster`` if one is started already (see
    :func:`~districting.parallel.cluster_for`). A settlement that fails is left out of the
    plan and listed in the summary's ``failed_settlements`` (``execution.fail_fast`` stops
    the run instead).

    ``raw`` is let go once the units are made, and the buildings' footprints once the
    settlements are planned: a caller that keeps no reference of its own to ``raw``
    frees their memory for the later stages (a national register holds gigabytes).
    """
    seed = config.seed if seed is None else seed
    execution = execution or Execution(progress=progress)
    started = time.monotonic()
    with stage("units and settlement tasks"):
        units = units_from_register(raw, config=config)
        _require_polygons(units, config=config)
        polygons = settlement_polygons(units, raw.settlements,
                                       margin_m=config.graph.settlement_margin_m)
        barriers, crossings = barrier_geometries(
            raw.layers.get("barriers"), raw.layers.get("crossings"), units.crs
        )
        network = _street_network(raw, units.crs)
        source = {"file": raw.source.name, "sha256": raw.sha256}
        del raw
        tasks = settlement_tasks(units, polygons, barriers=barriers, crossings=crossings,
                                 network=network, config=config, seed=seed,
                                 split_units=execution.split_units)
        units = units.drop(columns="footprint")  # the tasks hold what planning needs
    with stage(f"planning {len(tasks)} settlement task(s)"):
        outcomes = join_blocks(run_settlements(tasks, execution=execution, cluster=cluster))
    del tasks  # each held a copy of its units
    failed = [o for o in outcomes if not o.ok]
    warnings: list[str] = [f"settlement {o.settlement_id} was not planned: {o.error}"
                           for o in failed]
    if len(failed) == len(outcomes):
        raise DistrictingError("no settlement could be planned:\n" + "\n".join(warnings))
    if failed:
        lost = {o.settlement_id for o in failed}
        units = units.loc[~units["settlement_id"].isin(lost)].reset_index(drop=True)
        polygons = polygons.loc[~polygons["settlement_id"].isin(lost)].reset_index(drop=True)
    graphs: list[SettlementGraph] = []
    plans: list[SettlementPlan] = []
    codes = units["settlement_id"].to_numpy()
    rows_of = pd.Series(np.arange(len(units))).groupby(codes, sort=False).indices
    walk = np.zeros(len(units))
    territory = dict(zip(polygons["settlement_id"], polygons.geometry, strict=True))
    for outcome in outcomes:
        if not outcome.ok or outcome.graph is None or outcome.plan is None:
            continue
        positions = np.asarray(rows_of[outcome.settlement_id], dtype=np.int64)
        if outcome.rows is not None:  # a city planned in blocks: its units in block order
            positions = positions[outcome.rows]
        graph, plan = outcome.graph, outcome.plan
        graph.positions = positions
        plan.rd_point_position = [int(positions[p]) for p in plan.rd_point_position]
        territory[outcome.settlement_id] = outcome.territory
        walk[positions] = plan.walk_min
        warnings.extend(outcome.warnings)
        graphs.append(graph)
        plans.append(plan)
    units["walk_min"] = np.round(walk, 3)
    units["workload"] = np.round(units["workload"].to_numpy() + walk, 3)
    polygons = polygons.set_geometry(gpd.GeoSeries(
        [territory[code] for code in polygons["settlement_id"]], index=polygons.index,
        crs=polygons.crs, name=polygons.geometry.name))
    with stage("assembling the layers"):
        layers = assemble_layers(units, polygons, graphs, plans, config=config)
    del units, polygons, outcomes  # the layers hold what is needed from here on
    for cd, reason in zip(layers.counting_districts["cd_code"],
                          layers.counting_districts["bound_exception"], strict=True):
        if reason:
            warnings.append(f"CD {cd}: {reason}")
    for code, reason in zip(layers.instructor_districts["id_code"],
                            layers.instructor_districts["span_exception"], strict=True):
        if reason:
            warnings.append(f"ID {code}: {reason}")
    from districting.check import check_layers

    with stage("checking the plan"):
        report = check_layers(layers.as_dict())
    if not report.ok:
        raise PlanCheckError(f"{v.kind}: {v.message}" for v in report.violations)
    with stage("the summary"):
        summary = build_summary(source, layers, graphs, plans, config=config, seed=seed,
                                warnings=warnings, seconds=time.monotonic() - started)
    summary["edge_lengths"] = ("walking distance on the street network" if network is not None
                               else "straight line")
    summary["failed_settlements"] = [{"settlement_id": o.settlement_id, "error": o.error}
                                     for o in failed]
    log_warnings(warnings)
    return PlanResult(layers=layers, summary=summary, warnings=warnings, config=config)


#: Warnings written to the log one by one; past this many, the rest are counted.
LOGGED_WARNINGS = 30


def log_warnings(warnings: list[str]) -> None:
    """Log the plan's warnings: all of them, or for a large plan the first
    :data:`LOGGED_WARNINGS` and a count of the rest (all are in ``summary.json``)."""
    for line in warnings[:LOGGED_WARNINGS]:
        logger.warning(line)
    if len(warnings) > LOGGED_WARNINGS:
        logger.warning("… and %d more warning(s); summary.json lists all %d",
                       len(warnings) - LOGGED_WARNINGS, len(warnings))


def assemble_layers(
    units: gpd.GeoDataFrame,
    polygons: gpd.GeoDataFrame,
    graphs: list[SettlementGraph],
    plans: list[SettlementPlan],
    *,
    config: Config,
) -> PlanLayers:
    """Turn per-settlement plans into the seven output layers.

    Each CD also gets ``tour_m``, the length of its walking tour (see
    :func:`district_tours`), and ``walk_min``, the minutes that tour takes over the
    round and its callbacks, which its workload includes.
    """
    crs = units.crs
    n = len(units)
    cd_code = np.empty(n, dtype=object)
    id_code = np.empty(n, dtype=object)
    rd_code = np.empty(n, dtype=object)
    visit_order = np.zeros(n, dtype=np.int64)
    cd_rows, id_rows, rd_rows, point_rows = [], [], [], []
    cd_geoms, id_geoms, rd_geoms, point_geoms = [], [], [], []
    edge_ends: list[np.ndarray] = [np.zeros((0, 2), dtype=np.int64)]
    edge_lengths: list[np.ndarray] = [np.zeros(0)]
    edge_kinds: list[np.ndarray] = [np.zeros(0, dtype=object)]
    capacity = (config.counting.capacity_minutes if config.workload.basis == "workload"
                else config.counting.target_residents)
    unit_ids = units["unit_id"].to_numpy()
    points = units.geometry.to_numpy()
    for graph, plan in zip(graphs, plans, strict=True):
        pos = graph.positions
        local = units.iloc[pos]
        k = len(plan.id_of_cd)
        n_id = len(plan.id_exception)
        n_rd = len(plan.rd_point_name)
        cds = [plan.cd_code(c) for c in range(k)]
        ids = [plan.id_code(i) for i in range(n_id)]
        rds = [plan.rd_code(r) for r in range(n_rd)]
        cd_code[pos] = [cds[c] for c in plan.cd_of_node]
        visit_order[pos] = plan.visit_order
        id_code[pos] = [ids[plan.id_of_cd[c]] for c in plan.cd_of_node]
        rd_code[pos] = [rds[plan.rd_of_cd[c]] for c in plan.cd_of_node]
        cd_territory, id_territory, rd_territory = plan.territories or district_territories(
            graph.tiles, plan.cd_of_node, plan.id_of_cd, plan.rd_of_cd, ids=n_id, rds=n_rd)
        sums = local.groupby(plan.cd_of_node)[
            ["dwellings", "residents", "workload", "walk_min"]].sum()
        counts = np.bincount(plan.cd_of_node, minlength=k)
        for c in range(k):
            cd_rows.append({
                "cd_code": cds[c], "id_code": ids[plan.id_of_cd[c]],
                "rd_code": rds[plan.rd_of_cd[c]], "settlement_id": graph.settlement_id,
                "n_units": int(counts[c]), "dwellings": int(sums["dwellings"].iloc[c]),
                "residents": int(sums["residents"].iloc[c]),
                "workload": round(float(sums["workload"].iloc[c]), 3),
                "workload_floor": round(plan.floor, 3), "workload_ceiling": round(plan.ceiling, 3),
                "utilization": round(float(sums["workload"].iloc[c]) / capacity, 4),
                "bound_exception": plan.cd_exception[c],
                "walk_min": round(float(sums["walk_min"].iloc[c]), 3),
                "tour_m": round(float(plan.tour_m[c]), 1),
                "naive_m": round(float(plan.naive_m[c]), 1),
            })
            cd_geoms.append(cd_territory[c])
        for i in range(n_id):
            members = plan.id_of_cd == i
            id_rows.append({
                "id_code": ids[i], "settlement_id": graph.settlement_id,
                "n_cd": int(members.sum()),
                "residents": int(sums["residents"].to_numpy()[members].sum()),
                "workload": round(float(sums["workload"].to_numpy()[members].sum()), 3),
                "span_exception": plan.id_exception[i],
            })
            id_geoms.append(id_territory[i])
        for r in range(n_rd):
            members = plan.rd_of_cd == r
            point = plan.rd_point_position[r]
            rd_rows.append({
                "rd_code": rds[r], "settlement_id": graph.settlement_id,
                "point_name": plan.rd_point_name[r],
                "point_building_id": str(units["building_id"].iloc[point]),
                "n_cd": int(members.sum()),
                "residents": int(sums["residents"].to_numpy()[members].sum()),
                "mean_walk_m": round(plan.rd_mean_walk_m[r], 1),
                "max_walk_m": round(plan.rd_max_walk_m[r], 1),
            })
            rd_geoms.append(rd_territory[r])
            point_rows.append({
                "rd_code": rds[r], "point_name": plan.rd_point_name[r],
                "building_id": str(units["building_id"].iloc[point]),
                "function": str(units["function"].iloc[point]),
            })
            point_geoms.append(points[point])
        edge_ends.append(pos[np.asarray(graph.edges, dtype=np.int64).reshape(-1, 2)])
        edge_lengths.append(np.asarray(graph.lengths, dtype=float))
        edge_kinds.append(np.asarray(graph.edge_kind, dtype=object))
    unit_frame = units.assign(cd_code=cd_code, id_code=id_code, rd_code=rd_code,
                              visit_order=visit_order)
    settlement_sums = units.groupby("settlement_id")[["residents", "workload"]].sum()
    settlement_frame = polygons.assign(
        n_units=polygons["settlement_id"].map(units.groupby("settlement_id").size()).astype(int),
        residents=polygons["settlement_id"].map(settlement_sums["residents"]).astype(int),
        workload=polygons["settlement_id"].map(settlement_sums["workload"]).round(3),
    )

    def frame(rows: list[dict[str, Any]], geoms: list[Any], name: str) -> gpd.GeoDataFrame:
        data = pd.DataFrame(rows, columns=LAYER_FIELDS[name])
        return gpd.GeoDataFrame(data, geometry=list(geoms), crs=crs)

    # The graph's edges in one go: a unit graph has about three edges per unit. Their
    # lines are drawn only when written (see outputs.writer.write_geopackage).
    ends = np.concatenate(edge_ends)
    edges = gpd.GeoDataFrame(
        {"u": unit_ids[ends[:, 0]], "v": unit_ids[ends[:, 1]],
         "length_m": np.concatenate(edge_lengths),
         "kind": [str(kind) for kind in np.concatenate(edge_kinds)]},
        columns=LAYER_FIELDS["unit_adjacency"])

    return PlanLayers(
        units=gpd.GeoDataFrame(unit_frame[LAYER_FIELDS["units"]], geometry=unit_frame.geometry,
                               crs=crs),
        counting_districts=frame(cd_rows, cd_geoms, "counting_districts"),
        instructor_districts=frame(id_rows, id_geoms, "instructor_districts"),
        registration_districts=frame(rd_rows, rd_geoms, "registration_districts"),
        registration_points=frame(point_rows, point_geoms, "registration_points"),
        unit_adjacency=edges,
        settlements=gpd.GeoDataFrame(settlement_frame[LAYER_FIELDS["settlements"]],
                                     geometry=settlement_frame.geometry, crs=crs),
    )


def _utilization(cds: pd.DataFrame) -> dict[str, Any]:
    """The spread of one interviewer's utilisation over the CDs."""
    values = cds["utilization"].to_numpy(dtype=float)
    return {
        "min": round(float(values.min()), 4),
        "p10": round(float(np.percentile(values, 10)), 4),
        "median": round(float(np.median(values)), 4),
        "p90": round(float(np.percentile(values, 90)), 4),
        "max": round(float(values.max()), 4),
        "share_within_bounds": round(float((cds["bound_exception"] == "").mean()), 4),
    }


def _spans(ids: pd.DataFrame) -> dict[str, Any]:
    """How many IDs have each span of control, and their workload spread."""
    counts = ids["n_cd"].value_counts().sort_index()
    workload = ids["workload"].to_numpy(dtype=float)
    return {
        "distribution": {str(span): int(n) for span, n in counts.items()},
        "mean": round(float(ids["n_cd"].mean()), 2),
        "workload_min": round(float(workload.min()), 1),
        "workload_max": round(float(workload.max()), 1),
        "exceptions": int((ids["span_exception"] != "").sum()),
    }


def _routes(cds: pd.DataFrame) -> dict[str, Any]:
    """The CDs' walking routes against walking their units in register order."""
    walked = cds[cds["naive_m"] > 0]
    if walked.empty:
        return {"cds": 0}
    ratio = walked["tour_m"] / walked["naive_m"]
    return {
        "cds": len(walked),
        "route_km": round(float(walked["tour_m"].sum()) / 1000, 2),
        "register_order_km": round(float(walked["naive_m"].sum()) / 1000, 2),
        "mean_route_vs_register_order": round(float(ratio.mean()), 4),
    }


def _registration_walk(layers: PlanLayers) -> dict[str, float]:
    """Residents' walk to their registration point over all RDs, in metres."""
    rds = layers.registration_districts
    residents = rds["residents"].to_numpy(dtype=float)
    mean = rds["mean_walk_m"].to_numpy(dtype=float)
    return {
        "mean_m": round(float(np.average(mean, weights=residents)) if residents.sum() else 0.0, 1),
        "max_m": round(float(rds["max_walk_m"].max()), 1),
    }


def district_statistics(layers: PlanLayers, *, config: Config) -> dict[str, Any]:
    """The figures of a plan's summary that follow from its layers: CRS, counts, workload
    spread and bounds, utilisation, spans, walks to the points, routes and staffing."""
    cds = layers.counting_districts
    target = district_target(workload=config.workload, counting=config.counting)
    workload = cds["workload"].to_numpy(dtype=float)
    return {
        "crs": layers.units.crs.to_string(),
        "counts": {
            "settlements": len(layers.settlements),
            "units": len(layers.units),
            "counting_districts": len(cds),
            "instructor_districts": len(layers.instructor_districts),
            "registration_districts": len(layers.registration_districts),
        },
        "residents": int(layers.units["residents"].sum()),
        "dwellings": int(layers.units["dwellings"].sum()),
        "workload": {
            "basis": config.workload.basis,
            "unit": "minutes" if config.workload.basis == "workload" else "residents",
            "target": round(target, 3),
            "floor": round(target * (1 - config.counting.tolerance), 3),
            "ceiling": round(target * (1 + config.counting.tolerance), 3),
            "min": round(float(workload.min()), 3),
            "mean": round(float(workload.mean()), 3),
            "max": round(float(workload.max()), 3),
            "max_over_min": round(float(workload.max() / max(workload.min(), 1e-9)), 4),
        },
        "bound_exceptions": int((cds["bound_exception"] != "").sum()),
        "utilization": _utilization(cds),
        "instructor_spans": _spans(layers.instructor_districts),
        "registration_walk": _registration_walk(layers),
        "routes": _routes(cds),
        "staffing": staffing_summary(staffing_table(layers, config=config)),
    }


def build_summary(
    source: dict[str, str],
    layers: PlanLayers,
    graphs: list[SettlementGraph],
    plans: list[SettlementPlan],
    *,
    config: Config,
    seed: int,
    warnings: list[str],
    seconds: float,
) -> dict[str, Any]:
    """The plan's record: counts, workload spread, bounds, provenance and warnings.

    ``source`` is the register's file name and SHA-256 (``file``, ``sha256``)."""
    settlements = []
    names = dict(zip(layers.settlements["settlement_id"], layers.settlements["settlement_name"],
                     strict=True))
    groups = layers.counting_districts.groupby("settlement_id", sort=False)
    residents = groups["residents"].sum()
    cd_count, id_count, rd_count = (groups[column].nunique()
                                    for column in ("cd_code", "id_code", "rd_code"))
    for graph, plan in zip(graphs, plans, strict=True):
        code = graph.settlement_id
        settlements.append({
            "settlement_id": code,
            "settlement_name": str(names[code]),
            "units": int(graph.n),
            "residents": int(residents.get(code, 0)),
            "counting_districts": int(cd_count.get(code, 0)),
            "instructor_districts": int(id_count.get(code, 0)),
            "registration_districts": int(rd_count.get(code, 0)),
            "registration_model": plan.rd_status,
            "graph_edges": len(graph.edges),
            "edges_cut_by_barriers": graph.cut_by_barrier,
            "edges_cut_by_detours": graph.cut_by_detour,
            "parts_bridged": [{"units": note.size, "residents": note.residents,
                               "action": note.action} for note in graph.components],
        })
    return {
        "software": {"name": "districting", "version": __version__},
        "input": source,
        "seed": seed,
        **district_statistics(layers, config=config),
        "settlements": settlements,
        "config": asdict(config),
        "warnings": warnings,
        "runtime_seconds": round(seconds, 2),
    }
