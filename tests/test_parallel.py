"""Settlements as tasks: the same plan serially and on a Dask LocalCluster, checkpoints,
resume, failures reported per settlement, and the synthetic country."""

from __future__ import annotations

import hashlib
import pickle
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import shapely
import yaml
from click.testing import CliRunner
from conftest import ORIGIN, UTM41N, grid_buildings

from districting import parallel
from districting.check import check_layers
from districting.cli import main
from districting.config import Config, config_from_dict, load_config
from districting.errors import SettlementError
from districting.network import StreetNetwork
from districting.outputs.writer import write_geopackage
from districting.parallel import Checkpoints, Execution
from districting.pipeline import PlanResult, plan_from_file
from districting.settlement import SettlementOutcome, SettlementTask, plan_task
from districting.synth_country import (
    CITIES,
    FULL_RESIDENTS,
    country_settlements,
    country_sizes,
    stream_country,
    write_country,
)

SETTLEMENTS = ("431010000", "431030100", "431030200", "431030300")


def three_villages_and_a_town() -> gpd.GeoDataFrame:
    """A town and three villages far apart, so four independent tasks."""
    parts = [grid_buildings(settlement_id=SETTLEMENTS[0], name="Город", nx=16, ny=12, seed=1)]
    for i, code in enumerate(SETTLEMENTS[1:], start=1):
        parts.append(grid_buildings(settlement_id=code, name=f"Село {i}", nx=7, ny=5,
                                    seed=10 + i, prefix=f"V{i}",
                                    origin=(ORIGIN[0] + 4000 * i, ORIGIN[1] + 3000)))
    return gpd.GeoDataFrame(pd.concat(parts, ignore_index=True), crs=UTM41N)


@pytest.fixture(scope="module")
def register(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("register") / "register.gpkg"
    three_villages_and_a_town().to_file(path, layer="buildings", engine="pyogrio")
    return path


NORMS = ("name: test\nseed: 7\ntime_limit: 10\ncounting: {working_days: 30, hours_per_day: 4.0, "
         "tolerance: 0.15}\nregistration: {residents_per_point: 3000}\n")


def norms() -> Config:
    """Norms that give the register 14 CDs in 5 IDs: several levels, planned in seconds."""
    return config_from_dict(yaml.safe_load(NORMS))


def plan(register: Path, execution: Execution) -> PlanResult:
    result, _ = plan_from_file(register, config=norms(), execution=execution)
    return result


def layer_bytes(result: PlanResult, folder: Path) -> bytes:
    """The plan's GeoPackage bytes, written into ``folder`` (made if missing)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "plan.gpkg"
    write_geopackage(result.layers, path)
    return path.read_bytes()


def without_runtime(summary: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in summary.items() if k != "runtime_seconds"}


@pytest.fixture(scope="module")
def serial(register: Path) -> PlanResult:
    return plan(register, Execution(progress=False))


def test_the_serial_plan_keeps_every_invariant(serial: PlanResult) -> None:
    layers = serial.layers
    assert check_layers(layers.as_dict()).ok
    units = layers.units
    assert units["unit_id"].is_unique
    assert sorted(set(units["settlement_id"])) == list(SETTLEMENTS)
    assert set(units["cd_code"]) == set(layers.counting_districts["cd_code"])
    for cd, id_code in zip(layers.counting_districts["cd_code"],
                           layers.counting_districts["id_code"], strict=True):
        assert cd.startswith(id_code + "-")
    assert serial.summary["failed_settlements"] == []


def test_a_local_cluster_gives_the_serial_plan_byte_for_byte(
        register: Path, serial: PlanResult, tmp_path: Path) -> None:
    distributed = plan(register, Execution(workers=2, progress=False))
    assert layer_bytes(distributed, tmp_path / "a") == layer_bytes(serial, tmp_path / "b")
    assert without_runtime(distributed.summary) == without_runtime(serial.summary)


def test_the_workers_start_while_the_register_is_read_and_close_after_planning(
        register: Path, serial: PlanResult, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    from districting import pipeline

    events: list[str] = []
    clusters: list[parallel.Cluster] = []
    start, close, read = parallel.Cluster.__init__, parallel.Cluster.close, pipeline.read_register

    def starting(self: parallel.Cluster, execution: Execution) -> None:
        events.append("workers start")
        clusters.append(self)
        start(self, execution)

    def reading(*args: Any, **kwargs: Any) -> Any:
        raw = read(*args, **kwargs)
        events.append("register read")
        return raw

    def closing(self: parallel.Cluster) -> None:
        events.append("workers closed")
        close(self)

    monkeypatch.setattr(parallel.Cluster, "__init__", starting)
    monkeypatch.setattr(parallel.Cluster, "close", closing)
    monkeypatch.setattr(pipeline, "read_register", reading)
    result = plan(register, Execution(workers=2, progress=False))
    # Started before the register was read; let go once planned (and again, a no-op,
    # when the run ends).
    assert events[:3] == ["workers start", "register read", "workers closed"]
    assert len(clusters) == 1 and clusters[0]._client is None
    assert layer_bytes(result, tmp_path / "a") == layer_bytes(serial, tmp_path / "b")


def test_the_workers_are_closed_when_the_register_is_refused(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    closed: list[bool] = []
    close = parallel.Cluster.close

    def closing(self: parallel.Cluster) -> None:
        close(self)
        closed.append(self._client is None and self._local is None)

    monkeypatch.setattr(parallel.Cluster, "close", closing)
    broken = tmp_path / "register.csv"
    broken.write_text("building_id,residents\nB1,many\n", encoding="utf-8")
    with pytest.raises(Exception, match="needs 'lon' and 'lat' columns"):
        plan(broken, Execution(workers=2, progress=False))
    assert closed and all(closed)


def test_local_workers_are_ready_and_quiet_before_their_first_task(
        monkeypatch: pytest.MonkeyPatch) -> None:
    import os
    import sys

    import dask

    def state() -> tuple[bool, str | None, bool, str]:
        return ("districting.settlement" in sys.modules,
                os.environ.get("MALLOC_TRIM_THRESHOLD_"),
                dask.config.get("distributed.worker.profile.enabled"),
                dask.config.get("distributed.admin.tick.interval"))

    monkeypatch.delenv("MALLOC_TRIM_THRESHOLD_", raising=False)
    cluster = parallel.Cluster(Execution(workers=1, progress=False))
    try:
        found = cluster.client().run(state)
        saturation = cluster.client().run_on_scheduler(
            lambda dask_scheduler: dask_scheduler.WORKER_SATURATION)
    finally:
        cluster.close()
    # Imported, with glibc's own memory trimming, no stack sampling and a slower tick
    # (all cost CPU), one batch at a time.
    assert list(found.values()) == [(True, None, False, "1s")]
    assert saturation == 1.0


def test_more_local_workers_than_cores_is_said(monkeypatch: pytest.MonkeyPatch,
                                                caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setattr(parallel, "_cores", lambda: 1)
    with caplog.at_level("WARNING", logger="districting.parallel"):
        cluster = parallel.Cluster(Execution(workers=2, progress=False))
        cluster.close()
    assert [r.getMessage() for r in caplog.records if r.name == "districting.parallel"] == [
        "--workers 2 on 1 CPU core(s): the workers share the cores, which is slower than "
        "--workers 1"]


def test_an_existing_scheduler_is_used_by_address(register: Path, serial: PlanResult,
                                                  tmp_path: Path) -> None:
    from distributed import LocalCluster

    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False,
                      dashboard_address=None) as cluster:
        remote = plan(register, Execution(scheduler=cluster.scheduler_address,
                                          progress=False))
    assert layer_bytes(remote, tmp_path / "a") == layer_bytes(serial, tmp_path / "b")


def test_an_unreachable_scheduler_is_a_clear_error(register: Path) -> None:
    with pytest.raises(Exception, match="cannot reach the Dask scheduler"):
        plan(register, Execution(scheduler="tcp://127.0.0.1:9", connect_timeout=2,
                                 progress=False))


def test_checkpoints_are_written_and_resume_plans_nothing_again(
        register: Path, serial: PlanResult, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "checkpoints"
    plan(register, Execution(checkpoints=folder, progress=False))
    assert sorted(p.stem for p in folder.glob("*.pkl")) == sorted(SETTLEMENTS)

    def refuse(task: SettlementTask) -> SettlementOutcome:
        raise AssertionError(f"settlement {task.settlement_id} was planned again")

    monkeypatch.setattr(parallel, "plan_task", refuse)
    resumed = plan(register, Execution(checkpoints=folder, resume=True, progress=False))
    assert layer_bytes(resumed, tmp_path / "a") == layer_bytes(serial, tmp_path / "b")


def test_the_districts_territories_are_dissolved_in_the_task(
        register: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Each task returns its CDs', IDs' and RDs' territories (the union of their tiles),
    # and the layers are built from them.
    from districting.territory import dissolve

    outcomes: list[SettlementOutcome] = []

    def keeping(task: SettlementTask) -> SettlementOutcome:
        outcomes.append(plan_task(task))
        return outcomes[-1]

    monkeypatch.setattr(parallel, "plan_task", keeping)
    layers = plan(register, Execution(progress=False)).layers
    cds = layers.counting_districts.set_index("cd_code").geometry
    for outcome in outcomes:
        graph, found = outcome.graph, outcome.plan
        assert graph is not None and found is not None and found.territories is not None
        mine, ids, rds = found.territories
        k = len(found.id_of_cd)
        expected = dissolve(graph.tiles, found.cd_of_node, k)
        assert shapely.equals_exact(mine, expected, tolerance=0).all()
        assert (len(ids), len(rds)) == (len(found.id_exception), len(found.rd_point_name))
        codes = [found.cd_code(c) for c in range(k)]
        assert shapely.equals_exact(cds.loc[codes].to_numpy(), mine, tolerance=0).all()
        # they travel (to the main process, into checkpoints) as WKB and come back whole;
        # the tiles they were made from stay behind
        back = pickle.loads(pickle.dumps(outcome))
        assert back.graph is not None and back.plan is not None
        assert back.plan.territories is not None and len(back.graph.tiles) == 0
        for level, again in zip(found.territories, back.plan.territories, strict=True):
            assert shapely.equals_exact(level, again, tolerance=0).all()
        found.territories = None  # without territories, the tiles travel instead
        back = pickle.loads(pickle.dumps(outcome))
        assert back.graph is not None
        assert shapely.equals_exact(back.graph.tiles, graph.tiles, tolerance=0).all()


def test_an_interrupted_run_resumes_where_it_stopped(
        register: Path, serial: PlanResult, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "checkpoints"
    planned: list[str] = []

    def interrupted(task: SettlementTask) -> SettlementOutcome:
        if len(planned) == 2:
            raise KeyboardInterrupt
        planned.append(task.settlement_id)
        return plan_task(task)

    monkeypatch.setattr(parallel, "plan_task", interrupted)
    with pytest.raises(KeyboardInterrupt):
        plan(register, Execution(checkpoints=folder, progress=False))
    assert sorted(p.stem for p in folder.glob("*.pkl")) == sorted(planned)

    again: list[str] = []

    def counting(task: SettlementTask) -> SettlementOutcome:
        again.append(task.settlement_id)
        return plan_task(task)

    monkeypatch.setattr(parallel, "plan_task", counting)
    resumed = plan(register, Execution(checkpoints=folder, resume=True, progress=False))
    assert sorted(again) == sorted(set(SETTLEMENTS) - set(planned))
    assert layer_bytes(resumed, tmp_path / "a") == layer_bytes(serial, tmp_path / "b")


def test_a_checkpoint_of_other_norms_is_not_reused(register: Path, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "checkpoints"
    plan(register, Execution(checkpoints=folder, progress=False))
    again: list[str] = []

    def counting(task: SettlementTask) -> SettlementOutcome:
        again.append(task.settlement_id)
        return plan_task(task)

    monkeypatch.setattr(parallel, "plan_task", counting)
    result, _ = plan_from_file(register, config=norms(), seed=99,
                               execution=Execution(checkpoints=folder, resume=True,
                                                   progress=False))
    assert sorted(again) == sorted(SETTLEMENTS)  # another seed: every settlement again
    assert result.summary["seed"] == 99


def failing_in(code: str) -> Any:
    def planned(task: SettlementTask) -> SettlementOutcome:
        if task.settlement_id == code:
            return SettlementOutcome(code, error="the register is broken here", units=task.size,
                                     key=task.key)
        return plan_task(task)
    return planned


def test_a_failing_settlement_is_reported_and_the_others_are_planned(
        register: Path, serial: PlanResult, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(parallel, "plan_task", failing_in(SETTLEMENTS[2]))
    result = plan(register, Execution(progress=False))
    assert result.summary["failed_settlements"] == [
        {"settlement_id": SETTLEMENTS[2], "error": "the register is broken here"}]
    assert SETTLEMENTS[2] not in set(result.layers.units["settlement_id"])
    assert check_layers(result.layers.as_dict()).ok
    others = serial.layers.counting_districts
    others = others[others["settlement_id"] != SETTLEMENTS[2]]
    assert list(result.layers.counting_districts["cd_code"]) == list(others["cd_code"])


def test_fail_fast_stops_at_the_first_failure(register: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(parallel, "plan_task", failing_in(SETTLEMENTS[0]))
    with pytest.raises(SettlementError, match="431010000: the register is broken here"):
        plan(register, Execution(fail_fast=True, progress=False))


def test_the_cli_writes_the_rest_and_exits_1_naming_the_failed_settlement(
        register: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(parallel, "plan_task", failing_in(SETTLEMENTS[1]))
    out = tmp_path / "plan"
    config = tmp_path / "norms.yaml"
    config.write_text(NORMS, encoding="utf-8")
    result = CliRunner().invoke(main, ["-q", "plan", str(register), "--config", str(config),
                                       "--out", str(out)])
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    assert f"settlement {SETTLEMENTS[1]} was not planned: the register is broken here" \
        in result.output
    assert "--resume" in result.output
    assert (out / "plan.gpkg").is_file()
    checkpoints = tmp_path / ".plan.checkpoints"
    assert sorted(p.stem for p in checkpoints.glob("*.pkl")) == sorted(
        set(SETTLEMENTS) - {SETTLEMENTS[1]})  # kept for --resume


def test_the_cli_removes_its_checkpoints_after_a_complete_plan(register: Path,
                                                               tmp_path: Path) -> None:
    out = tmp_path / "plan"
    config = tmp_path / "norms.yaml"
    config.write_text(NORMS, encoding="utf-8")
    result = CliRunner().invoke(main, ["-q", "plan", str(register), "--config", str(config),
                                       "--out", str(out), "--workers", "2"])
    assert result.exit_code == 0, result.output
    assert (out / "plan.gpkg").is_file()
    assert not (tmp_path / ".plan.checkpoints").exists()


def test_workers_below_one_and_resume_without_checkpoints_are_refused() -> None:
    with pytest.raises(Exception, match="at least 1"):
        Execution(workers=0)
    with pytest.raises(Exception, match="checkpoint folder"):
        Execution(resume=True)


def test_an_unreadable_checkpoint_is_planned_again(register: Path, tmp_path: Path) -> None:
    folder = tmp_path / "checkpoints"
    plan(register, Execution(checkpoints=folder, progress=False))
    Checkpoints(folder).path(SETTLEMENTS[0]).write_bytes(b"not a pickle")
    result = plan(register, Execution(checkpoints=folder, resume=True, progress=False))
    assert check_layers(result.layers.as_dict()).ok


# ---------------------------------------------------------------- a large city in blocks


def test_a_large_city_is_planned_in_blocks_of_whole_ids(register: Path, serial: PlanResult,
                                                        tmp_path: Path) -> None:
    split = Execution(split_units=150, progress=False, checkpoints=tmp_path / "checkpoints")
    blocks = plan(register, split)
    layers = blocks.layers
    assert check_layers(layers.as_dict()).ok
    units = layers.units
    assert units["unit_id"].is_unique and len(units) == len(serial.layers.units)
    assert set(units["cd_code"]) == set(layers.counting_districts["cd_code"])
    for cd, id_code in zip(layers.counting_districts["cd_code"],
                           layers.counting_districts["id_code"], strict=True):
        assert cd.startswith(id_code + "-")
    # the town (192 units, an effort of 192/150 units + its CDs/80) became two tasks;
    # the villages stayed whole
    names = sorted(p.stem for p in (tmp_path / "checkpoints").glob("*.pkl"))
    assert names == sorted([f"{SETTLEMENTS[0]}.001", f"{SETTLEMENTS[0]}.002",
                            *SETTLEMENTS[1:]])
    # no district crosses a block: each ID's and RD's units lie in one block
    town = units[units["settlement_id"] == SETTLEMENTS[0]]
    xy = shapely.get_coordinates(town.geometry.to_numpy())
    from districting.settlement import city_blocks

    parts = city_blocks(xy, town["workload"].to_numpy(float) - town["walk_min"].to_numpy(float),
                        blocks=2, config=norms())
    block_of = np.empty(len(town), dtype=np.int64)
    for number, rows in enumerate(parts):
        block_of[rows] = number
    for column in ("id_code", "rd_code"):
        spread = pd.Series(block_of).groupby(town[column].to_numpy()).nunique()
        assert (spread == 1).all(), column
    # the same plan serially and on two workers
    distributed = plan(register, Execution(split_units=150, workers=2, progress=False))
    assert layer_bytes(distributed, tmp_path / "a") == layer_bytes(blocks, tmp_path / "b")


def test_city_blocks_share_the_units_and_end_on_whole_ids() -> None:
    from districting.settlement import city_blocks
    from districting.workload import district_target

    # A dense centre of heavy blocks of flats and a wide ring of light houses: blocks
    # cut by workload alone would put most of the units in one task.
    rng = np.random.default_rng(3)
    centre = rng.uniform(-500, 500, size=(400, 2))
    ring = rng.uniform(-3000, 3000, size=(4000, 2))
    ring = ring[np.abs(ring).max(axis=1) > 600]
    xy = np.vstack([centre, ring])
    workload = np.r_[np.full(len(centre), 900.0), np.full(len(ring), 30.0)]
    config = Config()
    per_id = config.instructor.span_target * district_target(
        workload=config.workload, counting=config.counting)
    parts = city_blocks(xy, workload, blocks=4, config=config)
    assert sorted(np.concatenate(parts).tolist()) == list(range(len(xy)))
    sizes = [len(rows) for rows in parts]
    assert max(sizes) < 2 * min(sizes), sizes
    ids = np.array([workload[rows].sum() / per_id for rows in parts])
    total_ids = workload.sum() / per_id
    # each block but the last of a cut holds whole IDs of the city's mean workload
    mean_id = workload.sum() / round(total_ids)
    whole = [workload[rows].sum() / mean_id for rows in parts]
    assert sum(abs(w - round(w)) < 0.05 for w in whole) >= 2, whole
    assert ids.min() > 0


def test_a_block_piece_apart_from_its_block_joins_the_block_around_it() -> None:
    from districting.settlement import contiguous_blocks

    # Five squares in a row; block 0 holds the first, second and fourth, block 1 the
    # third and fifth, so the fourth lies apart from the rest of block 0.
    squares = np.array([shapely.box(i, 0, i + 1, 1) for i in range(5)], dtype=object)
    corner = np.array([shapely.box(0, 0, 1, 1), shapely.box(1, 1, 2, 2)], dtype=object)
    parts = contiguous_blocks([np.array([0, 1, 3]), np.array([2, 4])], squares)
    assert [rows.tolist() for rows in parts] == [[0, 1], [2, 3, 4]]
    for rows in parts:
        assert shapely.get_num_geometries(shapely.union_all(squares[rows])) == 1
    # two squares that touch only at a corner share no border: nothing to move them to
    alone = contiguous_blocks([np.array([0]), np.array([1])], corner)
    assert [rows.tolist() for rows in alone] == [[0], [1]]


def test_a_block_keeps_the_tiles_its_units_have_in_the_whole_city(register: Path) -> None:
    from districting.graph import voronoi_tiles
    from districting.io.register import read_register
    from districting.settlement import settlement_tasks
    from districting.units import settlement_polygons, spread_duplicate_points, units_from_register

    config = norms()
    units = units_from_register(read_register(register), config=config)
    polygons = settlement_polygons(units, None, margin_m=config.graph.settlement_margin_m)
    tasks = settlement_tasks(units, polygons, barriers=np.zeros(0, dtype=object),
                             crossings=np.zeros(0, dtype=object), network=None,
                             config=config, seed=1, split_units=150)
    blocks = [t for t in tasks if t.blocks > 1]
    assert len(blocks) == 2 and all(t.tiles_wkb is not None for t in blocks)
    town = units[units["settlement_id"] == blocks[0].settlement_id]
    polygon = polygons.set_index("settlement_id").geometry[blocks[0].settlement_id]
    city = voronoi_tiles(np.asarray(spread_duplicate_points(town.geometry.to_numpy())), polygon)
    for task in blocks:
        assert task.rows is not None and task.tiles_wkb is not None
        mine = shapely.from_wkb(task.tiles_wkb)
        assert shapely.equals_exact(mine, city[task.rows], tolerance=0).all()
        outcome = plan_task(task)
        assert outcome.ok and outcome.graph is not None
        assert shapely.equals_exact(outcome.graph.tiles, mine, tolerance=0).all()
        assert not outcome.graph.components  # one piece: nothing bridged


def test_a_city_has_its_services_among_its_blocks_not_at_its_edge() -> None:
    from districting.synth_country import Settlement, _settlement_buildings

    city = Settlement("100001100", "Синтетический", "city", 120_000)
    frame = _settlement_buildings(city, 0, seed=1)
    xy = shapely.get_coordinates(frame.geometry.to_numpy())
    distance = np.linalg.norm(xy - xy.mean(axis=0), axis=1)
    services = frame["function"].to_numpy() != ""
    flats = frame["dwellings"].to_numpy() > 1
    assert services.sum() >= 4
    # the services stand among the blocks of flats, not beyond the houses
    assert distance[services].max() <= distance[flats].max() + 100
    assert np.ptp(xy[services, 1]) > 0.5 * np.ptp(xy[flats, 1])


# ---------------------------------------------------------------- streets near a settlement


def test_a_street_network_keeps_only_the_streets_near_a_box() -> None:
    xy = np.array([[0.0, 0.0], [100.0, 0.0], [200.0, 0.0], [5000.0, 0.0]])
    ends = np.array([[0, 1], [1, 2], [2, 3]])
    lengths = np.array([100.0, 100.0, 4800.0])
    matrix = sp.csr_matrix((np.r_[lengths, lengths], (np.r_[ends[:, 0], ends[:, 1]],
                                                      np.r_[ends[:, 1], ends[:, 0]])),
                           shape=(4, 4))
    network = StreetNetwork(node_xy=xy, lengths=matrix,
                            segments=shapely.linestrings(np.stack([xy[ends[:, 0]],
                                                                   xy[ends[:, 1]]], axis=1)),
                            segment_ends=ends)
    near = network.within((0.0, -10.0, 150.0, 10.0), margin=60.0)
    assert near is not None and near.n_nodes == 3
    assert near.segment_ends.tolist() == [[0, 1], [1, 2]]
    assert near.node_distances(np.array([0]), np.array([2]))[0] == pytest.approx(200.0)
    assert network.within((0.0, 0.0, 5000.0, 0.0), margin=0.0) is network
    assert network.within((9000.0, 9000.0, 9100.0, 9100.0), margin=10.0) is None


# ---------------------------------------------------------------- the synthetic country


def test_the_full_country_has_the_shape_of_kazakhstan() -> None:
    sizes = country_sizes(seed=2021)
    assert abs(sum(sizes) - FULL_RESIDENTS) < 1_000
    assert sizes[0] == max(CITIES) == 2_000_000
    assert sizes == sorted(sizes, reverse=True)
    assert 5_500 <= len(sizes) <= 7_000
    assert sum(1 for s in sizes if s >= 1_000_000) == 3
    assert min(sizes) >= 30
    urban = sum(s for s in sizes if s >= 10_000) / sum(sizes)
    assert 0.5 < urban < 0.7  # about 60 % of the residents in towns and cities


def test_a_smaller_country_is_whole_settlements_that_fit() -> None:
    places = country_settlements(residents=250_000, seed=2021)
    total = sum(p.residents for p in places)
    assert 240_000 <= total <= 250_000
    assert len({p.settlement_id for p in places}) == len(places)
    assert all(len(p.settlement_id) == 9 and p.settlement_id.isdigit() for p in places)
    full = set(country_sizes(seed=2021))
    assert all(p.residents in full for p in places)


def test_the_country_is_streamed_in_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    import districting.synth_country as country

    monkeypatch.setattr(country, "BATCH", 2_000)
    places = country_settlements(residents=60_000, seed=5)
    batches = list(stream_country(places, seed=5))
    assert len(batches) > 3
    assert max(len(b) for b in batches) < 2_000 + max(p.residents for p in places)
    frame = pd.concat(batches, ignore_index=True)
    assert int(frame["residents"].sum()) == sum(p.residents for p in places)
    assert frame["building_id"].is_unique
    for place in places:
        mine = frame[frame["settlement_id"] == place.settlement_id]
        assert int(mine["residents"].sum()) == place.residents
        assert (mine["function"] == "school").any()  # a registration-point candidate


def test_the_country_file_is_the_same_for_the_same_seed_and_plans(tmp_path: Path) -> None:
    first, second = tmp_path / "a.gpkg", tmp_path / "b.gpkg"
    counts = write_country(first, residents=20_000, seed=3, progress=False)
    write_country(second, residents=20_000, seed=3, progress=False)
    assert hashlib.sha256(first.read_bytes()).digest() == \
        hashlib.sha256(second.read_bytes()).digest()
    assert counts["residents"] <= 20_000 and counts["settlements"] >= 2
    result, _ = plan_from_file(first, config=load_config(None),
                               execution=Execution(progress=False))
    assert check_layers(result.layers.as_dict()).ok
    assert result.summary["residents"] == counts["residents"]
    assert result.summary["counts"]["settlements"] == counts["settlements"]


def test_the_cli_writes_a_country(tmp_path: Path) -> None:
    out = tmp_path / "country.gpkg"
    result = CliRunner().invoke(main, ["-q", "synth", "--country", "--residents", "5000",
                                       "--seed", "1", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "synthetic" in result.output
    frame = gpd.read_file(out, layer="buildings", engine="pyogrio")
    assert 0 < int(frame["residents"].sum()) <= 5000
    bad = CliRunner().invoke(main, ["-q", "synth", "--country", "--residents", "5000",
                                    "--out", str(tmp_path / "country.csv")])
    assert bad.exit_code == 1 and "GeoPackage" in bad.output


def test_blocks_share_the_planning_effort_of_units_and_cds() -> None:
    """A dense centre of heavy blocks of flats (few units, many CDs) and a ring of light
    houses (many units, few CDs): cut by effort, the centre gets blocks of its own and
    no block holds much more effort than another."""
    from districting.settlement import BLOCK_CDS, SPLIT_UNITS, city_blocks
    from districting.workload import district_target

    rng = np.random.default_rng(5)
    centre = rng.uniform(-500, 500, size=(600, 2))
    ring = rng.uniform(-4000, 4000, size=(9000, 2))
    ring = ring[np.abs(ring).max(axis=1) > 600]
    xy = np.vstack([centre, ring])
    config = Config()
    target = district_target(workload=config.workload, counting=config.counting)
    workload = np.r_[np.full(len(centre), target / 2), np.full(len(ring), target / 400)]
    effort = 1 / SPLIT_UNITS + workload / (BLOCK_CDS * target)
    blocks = int(np.ceil(effort.sum()))
    parts = city_blocks(xy, workload, blocks=blocks, config=config, effort=effort)
    assert sorted(np.concatenate(parts).tolist()) == list(range(len(xy)))
    spent = np.array([effort[rows].sum() for rows in parts])
    assert spent.max() < 1.5 * spent.min(), spent
    cds = np.array([workload[rows].sum() / target for rows in parts])
    assert cds.max() <= 1.2 * BLOCK_CDS, cds  # the centre's 300 CDs are spread out
    assert min(len(rows) for rows in parts) < 0.3 * max(len(rows) for rows in parts)
    # cut by unit count alone, the blocks around the centre hold far more CDs
    by_units = city_blocks(xy, workload, blocks=blocks, config=config)
    assert max(workload[rows].sum() / target for rows in by_units) > 1.5 * BLOCK_CDS


def register_tasks(register: Path, config: Config) -> list[SettlementTask]:
    """The register's settlement tasks, as a plan makes them (no barriers or streets)."""
    from districting.io.register import read_register
    from districting.settlement import settlement_tasks
    from districting.units import settlement_polygons, units_from_register

    units = units_from_register(read_register(register), config=config)
    polygons = settlement_polygons(units, None, margin_m=config.graph.settlement_margin_m)
    return settlement_tasks(units, polygons, barriers=np.zeros(0, dtype=object),
                            crossings=np.zeros(0, dtype=object), network=None,
                            config=config, seed=1)


def test_the_longest_task_by_units_and_cds_starts_first(register: Path) -> None:
    """A task of few heavy units (a block of flats) outranks one of more light units:
    the runs start it first, so that it does not hold up the end of the run."""
    from dataclasses import replace

    from districting.settlement import BLOCK_CDS, SPLIT_UNITS
    from districting.workload import district_target

    config = norms()
    tasks = register_tasks(register, config)
    town = max(tasks, key=lambda t: t.size)
    target = district_target(workload=config.workload, counting=config.counting)
    expected = (town.size / SPLIT_UNITS
                + float(town.units["workload"].sum()) / (BLOCK_CDS * target))
    assert town.effort == pytest.approx(expected)
    flats = town.units.iloc[:10].copy()
    flats["workload"] = town.units["workload"].sum()  # ten units, ten times the town's work
    dense = replace(town, settlement_id="dense", units=flats)
    assert dense.size < town.size and dense.effort > town.effort
    order = sorted([town, dense], key=lambda t: (-t.effort, t.key))
    assert order[0] is dense


def test_small_settlements_go_to_the_cluster_in_batches(
        register: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tasks = register_tasks(register, norms())
    tasks.sort(key=lambda t: (-t.effort, t.key))
    efforts = sorted(t.effort for t in tasks)
    # A threshold between the two smallest efforts' sum and the largest effort: the
    # largest task goes alone, the smaller ones together.
    monkeypatch.setattr(parallel, "BATCH_EFFORT", efforts[-1] * 0.99)
    groups = list(parallel.batches(tasks))
    assert [t.key for _, group in groups for t in group] == [t.key for t in tasks]
    assert len(groups[0][1]) == 1 and len(groups) < len(tasks)
    for effort, group in groups:
        assert effort == pytest.approx(sum(t.effort for t in group))
    assert all(effort >= parallel.BATCH_EFFORT for effort, _ in groups[:-1])
    monkeypatch.setattr(parallel, "BATCH_TASKS", 1)
    assert [len(group) for _, group in parallel.batches(tasks)] == [1] * len(tasks)
    outcomes = parallel.plan_batch(tasks[-2:])
    assert [o.key for o in outcomes] == [t.key for t in tasks[-2:]]
    assert all(o.ok for o in outcomes)
    # The cluster gets each batch as bytes; planned from them, it is the same plan.
    again = parallel.plan_pickled(parallel.packed(tasks[-2:], fingerprints=True))
    assert [pickle.dumps(o.plan) for o in again] == [pickle.dumps(o.plan) for o in outcomes]
    # Asked for, each outcome carries its task's fingerprint for the checkpoint.
    assert [o.fingerprint for o in again] == [t.fingerprint() for t in tasks[-2:]]
    assert [o.fingerprint for o in outcomes] == ["", ""]


def test_batches_start_on_the_cluster_in_the_order_they_are_sent(
        register: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The longest tasks are sent first and must start first, whatever the effort of
    their batch: a batch of one long city block weighs no more than one of many
    villages. Here the efforts rise batch by batch, and one worker still takes the
    batches in the order they were sent."""
    tasks = register_tasks(register, norms())
    assert len(tasks) >= 4
    monkeypatch.setattr(parallel, "batches", lambda queued: iter(
        [(float(number), [task]) for number, task in enumerate(queued)]))
    finished: list[str] = []
    cluster = parallel.Cluster(Execution(workers=1, progress=False))
    try:
        parallel._run_on_dask(cluster.client(), tasks, lambda o: finished.append(o.key),
                              fingerprints=False)
    finally:
        cluster.close()
    assert finished == [t.key for t in tasks]
