"""The ``districting`` command line: parses options, sets up logging, wires the stages."""

from __future__ import annotations

import logging
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from districting import __version__, interrupts
from districting.errors import DistrictingError, as_fault

if TYPE_CHECKING:
    from districting.parallel import Execution

logger = logging.getLogger("districting")

#: A random seed: what numpy takes (the config's ``seed`` has the same range).
SEED = click.IntRange(min=0, max=2**32 - 1)
REPO_CONFIGS = Path(__file__).resolve().parents[1] / "configs"
DEMO_OUT = Path("outputs") / "baikonur-2021"


class _Group(click.Group):
    """A command group that turns deliberate errors and the system's refusals (a full
    disk, a denied permission) into one message and exit 1, and Ctrl-C or SIGTERM into
    a message and exit 130."""

    def invoke(self, ctx: click.Context) -> Any:
        interrupts.install()
        arguments = list(ctx.args)  # the paths a fault may lie on
        try:
            return super().invoke(ctx)
        except DistrictingError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(1)
        except KeyboardInterrupt as exc:
            click.echo(interrupts.notice(exc), err=True)
            sys.exit(interrupts.EXIT_INTERRUPTED)
        except (click.exceptions.Exit, click.ClickException, SystemExit):
            raise
        except Exception as exc:
            fault = as_fault(exc, near=[a for a in arguments if not a.startswith("-")])
            if fault is not None:
                click.echo(f"error: {fault}", err=True)
                sys.exit(1)
            if ctx.params.get("verbose", 0) > 1:
                raise
            click.echo(f"internal error: {type(exc).__name__}: {exc}. This is a bug in "
                       "districting, not in your data; no output was written. Run again with "
                       "-vv to see the traceback, and please report it.", err=True)
            sys.exit(3)


def run() -> None:
    """The ``districting`` console script: :func:`main`, then
    :func:`~districting.interrupts.exit_now`, so that Ctrl-C or SIGTERM at any moment,
    the last second included, ends in a message and exit 130."""
    interrupts.install()
    try:
        result = main.main(standalone_mode=False)
        code = result if isinstance(result, int) else 0
    except click.exceptions.Abort as abort:  # Ctrl-C while click itself had the floor
        click.echo(interrupts.notice(abort.__context__), err=True)
        code = interrupts.EXIT_INTERRUPTED
    except click.ClickException as exc:
        exc.show()
        code = exc.exit_code
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        if isinstance(exc.code, str):
            click.echo(exc.code, err=True)
    interrupts.exit_now(code)


def _setup_logging(verbose: int, quiet: bool) -> None:
    level = logging.WARNING if quiet else (logging.DEBUG if verbose > 1 else logging.INFO)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s",
                        stream=sys.stderr)
    for noisy in ("pyogrio", "fiona", "matplotlib", "distributed", "tornado", "bokeh"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    if not verbose:
        logging.getLogger("districting").setLevel(logging.WARNING if quiet else logging.INFO)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="districting")
@click.option("-v", "--verbose", count=True, help="More log output (-vv for debug).")
@click.option("-q", "--quiet", is_flag=True, help="Only warnings and errors; no progress bars.")
@click.pass_context
def main(ctx: click.Context, verbose: int, quiet: bool) -> None:
    """Census districting and field planning from a Stage-1 address register."""
    _setup_logging(verbose, quiet)
    ctx.obj = {"quiet": quiet}


@main.command()
@click.argument("register", type=click.Path(path_type=Path))
@click.option("--settlements", type=click.Path(path_type=Path),
              help="Polygon file of settlements (settlement_id); default: the register's "
                   "'settlements' layer if it has one.")
def validate(register: Path, settlements: Path | None) -> None:
    """Check a Stage-1 register and list every problem (exit 1 if any is an error)."""
    from districting.io.register import read_register
    from districting.validate import validate_register

    raw = read_register(register, settlements=settlements)
    problems = validate_register(raw)
    for problem in problems:
        click.echo(str(problem))
    errors = sum(p.severity == "error" for p in problems)
    warnings = len(problems) - errors
    click.echo(f"{register}: {len(raw.buildings)} rows, {errors} error(s), {warnings} warning(s)")
    if errors:
        sys.exit(1)


@main.command()
@click.option("--out", "out", required=True, type=click.Path(path_type=Path),
              help="GeoPackage to write.")
@click.option("--seed", type=SEED, default=2021, show_default=True, help="Random seed.")
@click.option("--scale", default=1.0, show_default=True,
              help="Size relative to Baikonur (0.05 gives a tiny register for tests).")
@click.option("--country", is_flag=True,
              help="A synthetic country instead: settlements from hamlets to a 2-million "
                   "city, written settlement by settlement.")
@click.option("--residents", type=click.IntRange(min=30), default=19_200_000,
              show_default=True, help="With --country: about this many residents.")
@click.pass_obj
def synth(obj: dict[str, Any], out: Path, seed: int, scale: float, country: bool,
          residents: int) -> None:
    """Generate the synthetic Baikonur-like register, or with --country a synthetic
    country (both labelled synthetic)."""
    from districting.synth import synthesize_baikonur, write_register

    if country:
        from districting.synth_country import write_country

        counts = write_country(out, residents=residents, seed=seed, progress=not obj["quiet"])
        click.echo(f"wrote {out}: {counts['settlements']:,} settlements, "
                   f"{counts['buildings']:,} buildings, {counts['residents']:,} residents "
                   f"(largest settlement {counts['largest']:,}; synthetic, seed {seed})")
        return
    if not 0 < scale <= 10:
        raise click.BadParameter("must be in (0, 10]", param_hint="--scale")
    register = synthesize_baikonur(seed=seed, scale=scale)
    write_register(register, out)
    residents = int(register.buildings["residents"].sum())
    click.echo(f"wrote {out}: {len(register.buildings)} buildings, {residents} residents "
               f"(synthetic, seed {seed})")


@main.command("import-osm")
@click.argument("osm_file", type=click.Path(path_type=Path))
@click.option("--out", "out", required=True, type=click.Path(path_type=Path),
              help="Register GeoPackage to write.")
@click.option("--settlement-name", help="Settlement name (default: the file name).")
@click.option("--settlement-id", help="Settlement code (default 000000000, illustrative).")
@click.option("--m2-per-dwelling", type=float,
              help="Gross floor area per flat in apartment buildings (default 70 m²).")
@click.option("--residents-per-dwelling", type=float, default=2.7, show_default=True,
              help="Residents per occupied dwelling, for the estimates.")
def import_osm(osm_file: Path, out: Path, settlement_name: str | None,
               settlement_id: str | None, m2_per_dwelling: float | None,
               residents_per_dwelling: float) -> None:
    """Build a Stage-1 register skeleton from an OpenStreetMap extract (.osm, .gz, .bz2, .pbf).

    Dwellings and residents are ESTIMATES from footprint × levels; streets, barriers
    and crossings are saved as layers, so `districting plan` accepts the file as is.
    """
    import dataclasses

    from districting.io.osm import DensityNorms, register_from_osm, write_osm_register
    from districting.validate import safe_identifier_problem

    if settlement_id is not None and (problem := safe_identifier_problem(settlement_id)):
        raise click.BadParameter(problem, param_hint="'--settlement-id'")
    norms = DensityNorms(residents_per_dwelling=residents_per_dwelling)
    if m2_per_dwelling is not None:
        norms = dataclasses.replace(norms, m2_per_dwelling={
            **norms.m2_per_dwelling, "apartments": m2_per_dwelling,
            "residential": m2_per_dwelling, "yes": m2_per_dwelling})
    register = register_from_osm(osm_file, settlement_name=settlement_name,
                                 settlement_id=settlement_id, density=norms)
    write_osm_register(register, out)
    report = register.report
    click.echo(
        f"wrote {out}: {report['buildings']} buildings (addresses: {report['address_tag']} from "
        f"tags, {report['address_node']} from address nodes, {report['address_derived']} "
        f"derived), {report['estimated_residents']} ESTIMATED residents, "
        f"{report['barriers']} barriers, {report['crossings']} crossings "
        "(© OpenStreetMap contributors, ODbL 1.0)"
    )


def _plan_and_write(
    register: Path,
    *,
    config_path: Path | None,
    out: Path,
    seed: int | None,
    settlements: Path | None,
    lang: str,
    quiet: bool,
    extra_files: dict[str, Path] | None = None,
    compare_with_seed: bool = False,
    tiles: str | None = None,
    execution: Execution | None = None,
) -> None:
    from districting.config import load_config
    from districting.outputs.bundle import write_plan
    from districting.outputs.folders import check_output_folder
    from districting.parallel import Checkpoints, Execution
    from districting.pipeline import plan_from_file

    started = time.monotonic()
    inputs = tuple(p for p in (register, config_path, settlements)
                   if p is not None and p not in (extra_files or {}).values())
    check_output_folder(out, inputs, kind="plan")  # before planning: refuse early, lose nothing
    config = load_config(config_path)
    execution = execution or Execution(checkpoints=default_checkpoints(out), progress=not quiet)
    if execution.checkpoints is not None:
        Checkpoints(execution.checkpoints).check()
    result, problems = plan_from_file(register, config=config, seed=seed,
                                      settlements=settlements, progress=not quiet,
                                      execution=execution)
    warnings = [p for p in problems if p.severity == "warning"]
    if warnings:
        logger.warning("the register has %d warning(s); run 'districting validate' to list them",
                       len(warnings))
    title = f"{config.name}: census districts"
    write_plan(result, out, title=title, lang=lang, extra_files=extra_files, inputs=inputs,
               config=config, tiles=tiles, workers=execution.workers)
    failed = result.summary["failed_settlements"]
    if execution.checkpoints is not None and not failed:
        Checkpoints(execution.checkpoints).clear()
    counts = result.summary["counts"]
    spread = result.summary["workload"]
    click.echo(
        f"wrote {out}: {counts['counting_districts']} counting, "
        f"{counts['instructor_districts']} instructor, "
        f"{counts['registration_districts']} registration districts for "
        f"{result.summary['residents']} residents in {counts['settlements']} settlement(s); "
        f"CD workload {spread['min']:.0f}–{spread['max']:.0f} {spread['unit']} "
        f"(bounds {spread['floor']:.0f}–{spread['ceiling']:.0f}), "
        f"{result.summary['bound_exceptions']} bound exception(s); "
        f"{time.monotonic() - started:.1f} s"
    )
    staff = result.summary["staffing"]
    walk = result.summary["registration_walk"]
    use = result.summary["utilization"]
    click.echo(
        f"staffing: {staff['interviewers']} interviewers, {staff['instructor_controllers']} "
        f"instructor-controllers, {staff['point_staff']} registration-point staff, "
        f"{staff['reserve']} in reserve; {staff['person_days']:,} person-days; CD utilisation "
        f"{use['min']:.0%}–{use['max']:.0%}, {use['share_within_bounds']:.0%} within bounds; "
        f"walk to a registration point {walk['mean_m']:,.0f} m mean, {walk['max_m']:,.0f} m max"
    )
    if compare_with_seed:
        seed_figures = staff["seed_baikonur_2021"]
        click.echo(
            f"against the 2021 census in Baikonur: {staff['interviewers']} interviewers vs "
            f"{seed_figures['interviewers']}, {staff['instructor_controllers']} "
            f"instructor-controllers vs {seed_figures['instructor_controllers']}"
        )
    if failed:
        for entry in failed:
            click.echo(f"error: settlement {entry['settlement_id']} was not planned: "
                       f"{entry['error']}", err=True)
        click.echo(f"error: {len(failed)} settlement(s) failed; the plan in {out} covers the "
                   f"others (summary.json: failed_settlements). Fix the data and run again "
                   f"with --resume to plan only what is missing.", err=True)
        sys.exit(1)


def default_checkpoints(out: Path) -> Path:
    """Where a plan's per-settlement checkpoints go: a folder beside ``out``."""
    return out.parent / f".{out.name}.checkpoints"


@main.command()
@click.argument("register", type=click.Path(path_type=Path))
@click.option("--config", "config_path", type=click.Path(path_type=Path),
              help="YAML norms (default: built-in defaults, as in configs/default.yaml).")
@click.option("--out", "out", required=True, type=click.Path(path_type=Path),
              help="Output folder (replaced atomically).")
@click.option("--seed", type=SEED, help="Random seed (default: the config's).")
@click.option("--settlements", type=click.Path(path_type=Path),
              help="Polygon file of settlements (default: the register's layer, if any).")
@click.option("--lang", type=click.Choice(["ru", "en"]), default="ru", show_default=True,
              help="Language of the sheets, the report and the staffing workbook.")
@click.option("--tiles", default=None, metavar="NAME",
              help="Background tiles for map.html, e.g. OpenStreetMap (fetched when the map is "
                   "opened, so online only; default: none, the map works offline).")
@click.option("--workers", type=click.IntRange(min=1), default=1, show_default=True,
              help="Plan settlements on this many local worker processes (Dask).")
@click.option("--scheduler", default=None, metavar="ADDRESS",
              help="Plan on an existing Dask cluster, e.g. tcp://10.0.0.5:8786.")
@click.option("--checkpoints", "checkpoints", type=click.Path(path_type=Path), default=None,
              help="Folder of per-settlement checkpoints (default: .<OUT>.checkpoints beside "
                   "OUT; removed once the plan is written).")
@click.option("--resume", is_flag=True,
              help="Reuse the checkpoints of an interrupted run made from the same inputs.")
@click.option("--fail-fast", is_flag=True,
              help="Stop at the first settlement that fails (default: plan the others).")
@click.pass_obj
def plan(obj: dict[str, Any], register: Path, config_path: Path | None, out: Path,
         seed: int | None, settlements: Path | None, lang: str, tiles: str | None,
         workers: int, scheduler: str | None, checkpoints: Path | None, resume: bool,
         fail_fast: bool) -> None:
    """Plan counting, instructor and registration districts for a register."""
    from districting.parallel import Execution

    execution = Execution(workers=workers, scheduler=scheduler,
                          checkpoints=checkpoints or default_checkpoints(out), resume=resume,
                          fail_fast=fail_fast, progress=not obj["quiet"])
    _plan_and_write(register, config_path=config_path, out=out, seed=seed,
                    settlements=settlements, lang=lang, quiet=obj["quiet"], tiles=tiles,
                    execution=execution)


@main.command()
@click.option("--out", "out", type=click.Path(path_type=Path), default=DEMO_OUT,
              show_default=True, help="Output folder.")
@click.option("--seed", type=SEED, default=2021, show_default=True,
              help="Seed of the synthetic register.")
@click.option("--config", "config_path", type=click.Path(path_type=Path),
              help="Norms (default: configs/baikonur-2021.yaml).")
@click.pass_obj
def demo(obj: dict[str, Any], out: Path, seed: int, config_path: Path | None) -> None:
    """Generate the synthetic Baikonur register and plan it into OUT."""
    from districting.synth import synthesize_baikonur, write_register

    config_path = config_path or REPO_CONFIGS / "baikonur-2021.yaml"
    if not config_path.exists():
        raise DistrictingError(f"demo config not found: {config_path} (pass --config)")
    workdir = Path(tempfile.mkdtemp(prefix="districting-demo-"))
    try:
        register = workdir / "register.gpkg"
        write_register(synthesize_baikonur(seed=seed), register)
        _plan_and_write(register, config_path=config_path, out=out, seed=None,
                        settlements=None, lang="ru", quiet=obj["quiet"],
                        extra_files={"register.gpkg": register}, compare_with_seed=True)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


@main.command("partition")
@click.argument("graph_file", type=click.Path(path_type=Path))
@click.option("--weight", required=True, help="Node attribute to bound (e.g. TOTPOP).")
@click.option("-k", "k", type=click.IntRange(min=1), default=None,
              help="Number of parts (default: the fewest that meet the bounds).")
@click.option("--lower", type=float, required=True, help="Least weight of a part.")
@click.option("--upper", type=float, required=True, help="Most weight of a part.")
@click.option("--objective", type=click.Choice(["cut-edges", "inertia", "travel"]),
              default="cut-edges", show_default=True,
              help="Cut edges; weight × squared distance to the part's centre; or "
                   "weight × distance along edges to it.")
@click.option("--edge-weight", default=None,
              help="Edge attribute to sum over cut edges instead of counting them.")
@click.option("--position", default=None, metavar="X,Y",
              help="Node attributes with coordinates (default: x,y or C_X,C_Y or lon,lat).")
@click.option("--method", type=click.Choice(["ilp", "heuristic", "auto"]), default="auto",
              show_default=True, help="Exact model, heuristic, or by size.")
@click.option("--solver", type=click.Choice(["highs", "cbc"]), default="highs",
              show_default=True, help="MIP solver for the exact model.")
@click.option("--time-limit", type=float, default=300.0, show_default=True,
              help="Seconds for the whole run.")
@click.option("--seed", type=SEED, default=0, show_default=True, help="Heuristic seed.")
@click.option("--out", "out", required=True, type=click.Path(path_type=Path),
              help="RESULT.json to write.")
@click.pass_obj
def partition_command(obj: dict[str, Any], graph_file: Path, weight: str, k: int | None,
                      lower: float, upper: float,
                      objective: str, edge_weight: str | None, position: str | None,
                      method: str, solver: str, time_limit: float, seed: int,
                      out: Path) -> None:
    """Partition a graph into K connected parts with weights in [LOWER, UPPER].

    GRAPH_FILE is networkx adjacency JSON (optionally .gz), GeoPackage/GeoJSON polygons
    (rook adjacency) or a plan.gpkg (its units and unit_adjacency layers).
    """
    import json
    import os

    from districting.io.graphs import read_graph
    from districting.partition import partition

    if time_limit <= 0:
        raise click.BadParameter("must be positive", param_hint="--time-limit")
    graph = read_graph(graph_file)
    names = None
    if position:
        parts = [p.strip() for p in position.split(",")]
        if len(parts) != 2 or not all(parts):
            raise click.BadParameter("give two attribute names, e.g. C_X,C_Y",
                                     param_hint="--position")
        names = (parts[0], parts[1])
    plan = partition(graph, k, weight=weight, lower=lower, upper=upper,
                     objective=objective.replace("-", "_"), method=method,
                     time_limit=time_limit, seed=seed, solver=solver,
                     edge_weight=edge_weight, position=names, progress=not obj["quiet"])
    out.parent.mkdir(parents=True, exist_ok=True)
    temporary = out.with_name(f".{out.name}.tmp")
    temporary.write_text(json.dumps(plan.to_json(), indent=1) + "\n", encoding="utf-8")
    os.replace(temporary, out)
    for problem in plan.problems:
        click.echo(f"  {problem}", err=True)
    if plan.status == "infeasible":
        click.echo(f"infeasible: {'; '.join(plan.log) or 'no partition meets the bounds'} "
                   f"(wrote {out})", err=True)
        return
    if not plan.assignment:
        click.echo(f"{plan.status}: no plan within the bounds; {plan.log[-1]} (wrote {out})",
                   err=True)
        return
    gap = "" if plan.gap is None else f", gap {plan.gap:.2%}"
    bound = "" if plan.bound is None else f", bound {plan.bound:g}"
    objective_text = "none" if plan.objective is None else f"{plan.objective:g}"
    click.echo(f"{plan.status}: {plan.k} parts, {objective} {objective_text}{bound}{gap} in "
               f"{plan.seconds:.1f} s ({plan.method}, {plan.solver}); wrote {out}")


@main.command()
@click.argument("plan_dir", type=click.Path(path_type=Path))
def check(plan_dir: Path) -> None:
    """Re-verify a written plan from its files; list every violation (exit 1 if any)."""
    from districting.check import check_plan

    report = check_plan(plan_dir)
    for violation in report.violations:
        click.echo(f"{violation.kind}: {violation.layer} {violation.key}: {violation.message}")
    stats = ", ".join(f"{value} {name}" for name, value in report.stats.items())
    if report.ok:
        click.echo(f"{plan_dir}: OK ({stats})")
    else:
        click.echo(f"{plan_dir}: {len(report.violations)} violation(s) ({stats})")
        sys.exit(1)


@main.command("stage2-synth")
@click.argument("plan_dir", type=click.Path(path_type=Path))
@click.option("--out", "out", required=True, type=click.Path(path_type=Path),
              help="Records file to write (.csv or .parquet).")
@click.option("--seed", type=SEED, default=2021, show_default=True,
              help="Seed of the synthetic records.")
@click.option("--truth/--no-truth", default=True, show_default=True,
              help="Also write <OUT>.truth.csv: what was injected, for scoring dedup.")
def stage2_synth(plan_dir: Path, out: Path, seed: int, truth: bool) -> None:
    """Generate synthetic Stage-2 records (web, egov, Aitu, tablets) for a written plan,
    with injected duplicates, invalid IINs, unknown addresses and conflicts."""
    from districting.fieldops.generate import generate_records, read_plan_units, write_records

    generated = generate_records(read_plan_units(plan_dir), seed=seed)
    write_records(generated.records, out)
    if truth:
        write_records(generated.truth, out.with_name(out.name + ".truth.csv"))
    counts = ", ".join(f"{value} {name}" for name, value in generated.counts().items())
    click.echo(f"wrote {out}: {len(generated.records)} records ({counts})")


@main.command()
@click.argument("records", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--out", "out", required=True, type=click.Path(path_type=Path),
              help="Output folder (replaced atomically).")
@click.option("--plan", "plan_dir", type=click.Path(path_type=Path), default=None,
              help="A written plan: records at a building not in it, and tablet records "
                   "whose cd_code is not one of its CDs, are quarantined.")
@click.option("--window", "window", default="2021-09-01/2021-10-30", show_default=True,
              metavar="FIRST/LAST",
              help="Census window, two dates YYYY-MM-DD, inclusive: records submitted on "
                   "another day are quarantined (the default is the 2021 census: online "
                   "1 September–15 October, door to door 1–30 October).")
@click.option("--salt", "salt_path", type=click.Path(path_type=Path), default=None,
              help="Salt file for IIN hashes (default: <OUT>.salt, created if missing; "
                   "reuse it so hashes match across runs; must be readable by its owner "
                   "only).")
def dedup(records: tuple[Path, ...], out: Path, plan_dir: Path | None, window: str,
          salt_path: Path | None) -> None:
    """Deduplicate Stage-2 records by IIN: one accepted record per person; duplicates,
    quarantined records and conflicts each in their own file; nothing lost."""
    from districting.fieldops.dedup import (
        dedup as deduplicate,
    )
    from districting.fieldops.dedup import (
        default_salt_path,
        load_or_create_salt,
        plan_keys,
        write_dedup,
    )
    from districting.fieldops.records import parse_window, read_records

    try:
        days = parse_window(window)
    except DistrictingError as exc:
        raise click.BadParameter(str(exc), param_hint="'--window'") from None
    frame, problems = read_records(list(records))
    rows = [p for p in problems if p.row is not None]
    for problem in [p for p in problems if p.row is None] + rows[:_SHOWN_ROW_PROBLEMS]:
        logger.warning("%s", problem)  # messages never quote an IIN
    if len(rows) > _SHOWN_ROW_PROBLEMS:
        logger.warning("… and %d more row problem(s), all in quarantined.csv",
                       len(rows) - _SHOWN_ROW_PROBLEMS)
    known, cds = plan_keys(plan_dir) if plan_dir is not None else (None, None)
    salt = load_or_create_salt(salt_path or default_salt_path(out))
    result = deduplicate(frame, known_buildings=known, known_cds=cds, salt=salt, window=days)
    write_dedup(result, out, protect=records)
    summary = result.summary
    click.echo(f"wrote {out}: {_dedup_line(summary)}")
    reasons = summary.get("quarantine_reasons", {})
    if reasons:
        click.echo("quarantined (see quarantined.csv): " + ", ".join(
            f"{count} {reason}" for reason, count in sorted(reasons.items(),
                                                            key=lambda kv: (-kv[1], kv[0]))))


#: Row problems the dedup command lists on the terminal; quarantined.csv has them all.
_SHOWN_ROW_PROBLEMS = 10


@main.command()
@click.argument("plan_dir", type=click.Path(path_type=Path))
@click.option("--records", "records", multiple=True, required=True,
              type=click.Path(path_type=Path),
              help="Deduplicated records (dedup's accepted.csv); repeat for several files.")
@click.option("--as-of", "as_of", required=True, type=click.DateTime(formats=["%Y-%m-%d"]),
              help="Count records submitted up to the end of this day (YYYY-MM-DD).")
@click.option("--out", "out", required=True, type=click.Path(path_type=Path),
              help="Output folder (replaced atomically).")
@click.option("--lang", type=click.Choice(["ru", "en"]), default="ru", show_default=True,
              help="Language of the dashboard and the reasons.")
def progress(plan_dir: Path, records: tuple[Path, ...], as_of: Any, out: Path,
             lang: str) -> None:
    """Coverage, completion and lagging districts of the door-to-door round, per CD, ID
    and settlement, with a dashboard."""
    from districting.fieldops.progress import run_progress

    result = run_progress(plan_dir, list(records), as_of=as_of.date(), out_dir=out, lang=lang)
    summary = result.summary
    click.echo(f"wrote {out}: progress as of {as_of.date().isoformat()}: "
               f"{_progress_line(summary)}")


@main.command()
@click.argument("plan_dir", type=click.Path(path_type=Path))
@click.option("--responses", "responses", multiple=True, required=True,
              type=click.Path(path_type=Path),
              help="Stage-2 records or dedup's accepted.csv (CSV or Parquet); only online "
                   "answers count. Repeat for several files.")
@click.option("--out", "out", required=True, type=click.Path(path_type=Path),
              help="Folder for the new plan (replaced atomically; not the plan's own).")
@click.option("--as-of", "as_of", type=click.DateTime(formats=["%Y-%m-%d"]), default=None,
              help="Count online answers submitted up to the end of this day (YYYY-MM-DD).")
@click.option("--slack", type=click.FloatRange(0.0, 1.0, max_open=True), default=0.10,
              show_default=True,
              help="Rebalance CDs whose workload falls below floor × (1 − SLACK) or above "
                   "the ceiling.")
@click.option("--lang", type=click.Choice(["ru", "en"]), default="ru", show_default=True,
              help="Language of the sheets, report and workbook.")
@click.pass_obj
def followup(obj: dict[str, Any], plan_dir: Path, responses: tuple[Path, ...], out: Path,
             as_of: Any, slack: float, lang: str) -> None:
    """Re-plan the door-to-door round after online self-response: households still to
    visit, new CD workloads and tours, CDs rebalanced with the fewest units moved."""
    from districting.fieldops.followup import run_followup

    result = run_followup(plan_dir, list(responses), out_dir=out, slack=slack,
                          as_of=as_of.date() if as_of else None, lang=lang,
                          progress=not obj["quiet"])
    section = result.summary["followup"]
    households = section["households"]
    change = section["interviewers_released"]
    staff = (f"{change} interviewer(s) released" if change > 0
             else f"{-change} more interviewer(s)" if change < 0 else "no interviewer released")
    click.echo(
        f"wrote {out}: {households['remaining']:,} of {households['expected']:,} households "
        f"still to visit ({households['responded_online']:,} answered online); "
        f"{section['counting_districts_after']} CDs "
        f"(planned {section['counting_districts_before']}), "
        f"{staff}, {section['interviewers_short']} short; {section['units_moved']} of "
        f"{section['units_total']} units moved; {section['cds_outside_bounds']} CD(s) outside "
        "their bounds")


def _progress_line(summary: dict[str, Any]) -> str:
    totals = summary.get("totals", {})
    lagging = summary.get("lagging_cds", [])
    over = summary.get("over_covered_cds", [])
    return (f"coverage {totals.get('coverage', 0):.1%}, completion "
            f"{totals.get('completion', 0):.1%}, {len(lagging)} CD(s) lagging, "
            f"{len(over)} over-covered")


def _dedup_line(summary: dict[str, Any]) -> str:
    """The dedup summary in one line: the four outcomes that add up to the input."""
    parts = [f"{summary.get(key, 0)} {key}"
             for key in ("accepted", "duplicates", "quarantined", "conflicts")]
    return f"{summary.get('inputs', 0)} records = " + " + ".join(parts)


if __name__ == "__main__":
    main()
