"""The ``crossmargin`` command line (typer).

Every user error (a bad scenario key, a missing file, a malformed CSV row, an option
of the wrong type, an output folder that cannot be written) ends the command with one
line on stderr, ``error: <field>: <reason>``, and exit code 2, before anything is
written. Results are never lost: ``run``, ``sweep`` and ``report`` refuse to replace
what is there unless ``--overwrite`` is given, and even then only replace
crossmargin's own outputs.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import click
import typer

from . import outputs

__all__ = ["UserError", "app", "fail", "load_scenario", "main"]

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="crossmargin: agent-based model of cross-margin liquidation contagion.",
)


def _version(value: bool) -> None:
    if value:
        from .provenance import version_line  # without the simulation's import

        typer.echo(version_line())
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="print the version"),
    ] = False,
) -> None:
    """crossmargin: agent-based model of cross-margin liquidation contagion."""


class UserError(Exception):
    """Bad input from the user: reported in one line, exit code 2."""


Workers = Annotated[int | None, typer.Option(help="local Dask workers (default: one per core)")]
SchedulerAddress = Annotated[
    str | None, typer.Option(help="address of an existing Dask scheduler, tcp://host:8786")
]


def fail(message: str) -> None:
    """Print ``error: message`` on stderr and exit with code 2."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code=2)


@app.command()
def replay(
    file: Annotated[Path, typer.Argument(help="CSV with header op,side,price,qty,id")],
) -> None:
    """Replay an order stream through one order book; print a JSON summary."""
    from .replay import ReplayError
    from .replay import replay as run_replay

    if not file.is_file():
        fail(f"{file}: no such file")
    try:
        result = run_replay(file)
    except ReplayError as exc:
        fail(f"{file}: {exc}")
    typer.echo(json.dumps(result))


def _parse_value(raw: str):
    """A ``--set`` value: any TOML literal (number, bool, string, array), else a string."""
    import tomllib

    try:
        return tomllib.loads(f"v = {raw}")["v"]
    except (tomllib.TOMLDecodeError, RecursionError):
        return raw


def load_scenario(
    path: Path,
    *,
    seed: int | None,
    steps: int | None,
    sets: list[str],
    allow_large: bool = False,
):
    """Read a scenario file and apply command-line overrides (raises UserError)."""
    from ..model.scenario import Scenario, ScenarioError, read_toml, scenario_path

    try:
        data = read_toml(scenario_path(path))
        if allow_large:
            data["size_guard"] = False
        scenario = Scenario.from_dict(data)
        changes = {}
        for item in sets:
            if "=" not in item:
                raise UserError(f"--set {item!r}: expected key=value")
            key, raw = item.split("=", 1)
            changes[key.strip()] = _parse_value(raw.strip())
        if seed is not None:
            changes["seed"] = seed
        if steps is not None:
            changes["steps"] = steps
        return scenario.replace(**changes) if changes else scenario
    except ScenarioError as exc:
        raise UserError(str(exc)) from None


@app.command()
def run(
    scenario: Annotated[
        Path, typer.Argument(help="scenario TOML file, or a preset's name (crossmargin presets)")
    ],
    seed: Annotated[int | None, typer.Option(help="random seed (overrides the file)")] = None,
    steps: Annotated[int | None, typer.Option(help="number of one-minute steps")] = None,
    out: Annotated[
        Path | None,
        typer.Option(help="output directory (default: results/<name>-<seed>-<hash>/)"),
    ] = None,
    set_: Annotated[
        list[str] | None, typer.Option("--set", help="dotted.key=value override (repeatable)")
    ] = None,
    overwrite: Annotated[
        bool, typer.Option(help="replace --out if it holds an earlier crossmargin run")
    ] = False,
    allow_large: Annotated[
        bool, typer.Option(help="lift the size guard on steps and agents")
    ] = False,
    progress: Annotated[bool, typer.Option(help="show a progress bar")] = True,
) -> None:
    """Run one scenario and write model/events/trades Parquet, graphs and a summary."""
    sc = load_scenario(scenario, seed=seed, steps=steps, sets=set_ or [], allow_large=allow_large)
    out = outputs.run_folder(sc) if out is None else out
    outputs.check_run_out(out, overwrite=overwrite)
    from ..model.index import PriceRangeError
    from .runner import run_scenario  # the simulation, once the input is known to be good

    created = outputs.claim_run_out(out, overwrite=overwrite)
    try:
        summary = run_scenario(sc, out, progress=progress)
    except PriceRangeError as exc:  # the scenario's prices left the model's range
        raise UserError(str(exc)) from None
    except KeyboardInterrupt:
        typer.echo(
            f"interrupted: the run stopped before writing anything; {out} is as it was",
            err=True,
        )
        raise typer.Exit(code=130) from None
    finally:
        outputs.release_claim(out, created=created)
    typer.echo(_short_summary(summary, out))


@app.command()
def sweep(
    experiment: Annotated[Path, typer.Argument(help="experiment TOML file")],
    out: Annotated[Path | None, typer.Option(help="output directory")] = None,
    workers: Workers = None,
    scheduler: SchedulerAddress = None,
    retries: Annotated[
        int | None, typer.Option(help="retries of a run that raises or whose worker dies")
    ] = None,
    overwrite: Annotated[
        bool, typer.Option(help="replace --out if it holds a sweep of another experiment")
    ] = False,
    allow_large: Annotated[
        bool, typer.Option(help="lift the size guard on runs, steps and agents")
    ] = False,
    progress: Annotated[bool, typer.Option(help="show a progress bar")] = True,
    dry_run: Annotated[
        bool,
        typer.Option(help="count the runs, their cost and output size; run nothing, write nothing"),
    ] = False,
) -> None:
    """Run an experiment's grid × seeds on Dask; resumable; writes summary.parquet."""
    from .design import ExperimentError, load_experiment

    if workers is not None and scheduler is not None:
        fail("--workers and --scheduler: give one or the other")
    if workers is not None and not 1 <= workers <= 1024:
        fail(f"--workers: must be in 1..1024, got {workers}")
    if retries is not None and not 0 <= retries <= 100:
        fail(f"--retries: must be in 0..100, got {retries}")
    try:
        exp = load_experiment(experiment, allow_large=allow_large)
    except ExperimentError as exc:
        fail(str(exc))
    out = Path("results") / exp.name if out is None else out
    if dry_run:
        typer.echo(_dry_run(exp, out, workers))
        return
    # Dask once the input is good. The folder check below is repeated where run_sweep
    # writes experiment.toml (created exclusively: outputs.claim_sweep_design), so a
    # sweep of another experiment that starts into the folder meanwhile is refused.
    from .sweep import SweepInterruptedError, connect, run_sweep

    outputs.check_sweep_out(out, exp, overwrite=overwrite)
    client = None
    if scheduler is not None:
        client = connect(scheduler)  # fails (one line) before anything is written
    try:
        table = run_sweep(
            exp,
            out,
            workers=workers,
            retries=retries,
            progress=progress,
            client=client,
            clear=overwrite,
        )
    except SweepInterruptedError as exc:
        typer.echo(f"interrupted: {exc}", err=True)
        raise typer.Exit(code=130) from None
    finally:
        if client is not None:
            client.close()
    ok = int((table["status"] == "ok").sum())
    bad = table[table["status"] != "ok"]
    if len(bad):
        typer.echo(
            f"error: {len(bad)} of {len(table)} runs failed ({exp.name}); "
            f"see {out}/runs/*.error.json and {out}/summary.parquet",
            err=True,
        )
        for _, row in bad.iterrows():
            typer.echo(
                f"  {row['status']}: run {row['run_id']} (seed {row['seed']}): {row['error']}"
            )
        raise typer.Exit(code=1)
    typer.echo(f"{exp.name}: {ok}/{len(table)} runs done -> {out}/summary.parquet")


@app.command()
def report(
    directory: Annotated[Path, typer.Argument(help="a run or a sweep directory")],
    overwrite: Annotated[
        bool, typer.Option(help="replace an earlier report (report.md/.html, figures/)")
    ] = False,
) -> None:
    """Figures (PNG + PDF) and a report (Markdown + HTML) for a run or a sweep."""
    from ..analysis.report import ReportError
    from ..analysis.report import report as make_report

    outputs.check_report_out(directory, overwrite=overwrite)
    try:
        md = make_report(directory)
    except ReportError as exc:
        fail(str(exc))
    typer.echo(f"report: {md} and {md.with_suffix('.html')}; figures in {md.parent / 'figures'}/")


@app.command()
def schema(
    kind: Annotated[
        str, typer.Argument(help="scenario or experiment", metavar="[scenario|experiment]")
    ] = "scenario",
    markdown: Annotated[
        bool, typer.Option(help="print docs/reference.md (both files) instead")
    ] = False,
) -> None:
    """Print every field of a scenario or experiment file: key, type, default, bounds or
    allowed values, meaning and unit (generated from the code's models)."""
    from ..model.scenario import Scenario
    from . import reference
    from .design import ExperimentFile

    if markdown:
        typer.echo(reference.markdown(), nl=False)
        return
    models = {"scenario": Scenario, "experiment": ExperimentFile}
    if kind not in models:
        fail(f"KIND: must be scenario or experiment, got {kind!r}")
    typer.echo(reference.text(models[kind]))


@app.command()
def presets() -> None:
    """List the shipped scenarios, usable by name wherever a scenario file is asked for
    (``crossmargin run baseline``, ``base = "baseline"`` in an experiment file)."""
    from ..model.scenario import PRESET_DIR
    from ..model.scenario import presets as names

    for name in names():
        first = ""
        for line in (PRESET_DIR / f"{name}.toml").read_text(encoding="utf-8").splitlines():
            if line.startswith("#") and line.strip("# ").strip():
                first = line.strip("# ").strip()
                break
        typer.echo(f"{name:28s} {first}")


@app.command()
def dashboard(
    port: Annotated[int, typer.Option(help="port on 127.0.0.1")] = 8765,
    scenario: Annotated[
        Path | None,
        typer.Option(help="scenario TOML or a preset's name (default: the dashboard preset)"),
    ] = None,
) -> None:
    """Start the Solara dashboard (one model per browser session) on 127.0.0.1 and print its address."""
    import os

    from ..model.scenario import Scenario, ScenarioError, scenario_path

    if not 0 < port < 65536:
        fail(f"--port: must be in 1..65535, got {port}")
    env = dict(os.environ)
    if scenario is not None:
        try:
            path = scenario_path(scenario)
            Scenario.from_toml(path)
        except ScenarioError as exc:
            fail(str(exc))
        env["CROSSMARGIN_SCENARIO"] = str(path.resolve())
    typer.echo(f"crossmargin dashboard: http://127.0.0.1:{port}/", err=False)
    sys.stdout.flush()
    solara = Path(sys.executable).with_name("solara")
    cmd = [
        str(solara),
        "run",
        "crossmargin.analysis.app",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    ]
    cmd += ["--production", "--no-open", "--no-check-version", "--log-level", "warning"]
    os.execve(cmd[0], cmd, env)


@app.command()
def validate(
    out: Annotated[Path, typer.Option(help="output directory")] = Path("results/validation"),
    quick: Annotated[
        bool, typer.Option(help="smaller models, fewer seeds: a smoke test (a few minutes)")
    ] = False,
    seed_base: Annotated[
        int | None,
        typer.Option(help="first seed of every check (replicate on fresh seeds)", min=0),
    ] = None,
    only: Annotated[list[str] | None, typer.Option(help="run only this check (repeatable)")] = None,
    workers: Workers = None,
    scheduler: SchedulerAddress = None,
    overwrite: Annotated[
        bool, typer.Option(help="replace an earlier validation report in --out")
    ] = False,
    events: Annotated[
        bool,
        typer.Option(
            help="the event presets' score cards (events.toml) instead of the model checks"
        ),
    ] = False,
    venues: Annotated[
        bool,
        typer.Option(help="the checks of the world of venues (multivenue.toml) instead"),
    ] = False,
    world: Annotated[
        str | None,
        typer.Option(
            help="'multivenue': run the same checks with each scenario turned into a world "
            "of venues (Scenario.as_multivenue), criteria unchanged"
        ),
    ] = None,
    from_data: Annotated[
        Path | None,
        typer.Option(
            help="judge the saved measurements of an earlier validate run in this folder "
            "(same settings and seeds) instead of running the models"
        ),
    ] = None,
) -> None:
    """Run the pre-registered validation checks (criteria.toml); write validation.md.

    Exits 1 when any check fails.
    """
    from ..analysis.validation import CRITERIA, EVENTS, MULTIVENUE, load_criteria, run_validation
    from ..analysis.validation.suite import DataMismatchError

    if events and venues:
        fail("--events and --venues: give one or the other")
    if world not in (None, "multivenue"):
        fail(f"--world: must be 'multivenue', got {world!r}")
    path = EVENTS if events else MULTIVENUE if venues else CRITERIA
    try:
        criteria = load_criteria(path, quick=quick, seed_base=seed_base, only=only, world=world)
    except ValueError as exc:
        fail(str(exc))
    if workers is not None and scheduler is not None:
        fail("--workers and --scheduler: give one or the other")
    if workers is not None and not 1 <= workers <= 1024:
        fail(f"--workers: must be in 1..1024, got {workers}")
    outputs.check_writable(out, "--out")
    if (out / "validation.md").exists() and not overwrite:
        fail(f"--out: {out} already holds a validation report; pass --overwrite to replace it")
    try:
        results = run_validation(
            out,
            quick=quick,
            workers=workers,
            scheduler=scheduler,
            criteria=criteria,
            from_data=from_data,
        )
    except DataMismatchError as exc:
        fail(str(exc))
    counted = [r for r in results if not r.superseded]  # a superseded check is not counted
    n_pass = sum(r.passed for r in counted)
    typer.echo(f"{n_pass}/{len(counted)} checks pass -> {out / 'validation.md'}")
    if n_pass < len(counted):
        failed = ", ".join(r.name for r in counted if not r.passed)
        typer.echo(f"failed: {failed}", err=True)
        raise typer.Exit(code=1)


@app.command()
def calibrate(
    trials: Annotated[int, typer.Option(help="Optuna trials", min=1, max=10_000)] = 40,
    seeds: Annotated[int, typer.Option(help="seeds per trial", min=1, max=1000)] = 4,
    out: Annotated[Path, typer.Option(help="folder for result.toml and trials.csv")] = Path(
        "experiments/calibration"
    ),
    workers: Annotated[
        int | None, typer.Option(help="local Dask workers (default: one per core)", min=1)
    ] = None,
    overwrite: Annotated[bool, typer.Option(help="replace an earlier result.toml")] = False,
) -> None:
    """Calibrate the behavioural parameters on 10 October 2025 (Optuna TPE, targets in
    experiments/calibration/targets.toml); write result.toml and trials.csv."""
    from .calibration import calibrate as run

    outputs.check_writable(out, "--out")
    if (out / "result.toml").exists() and not overwrite:
        fail(f"--out: {out} already holds a result.toml; pass --overwrite to replace it")
    res = run(trials=trials, seeds=seeds, out=out, workers=workers)
    typer.echo(f"best loss {res['loss']:.3f} after {trials} trials -> {out / 'result.toml'}")


STEP_COST = (1.2e-3, 1.0e-4, 1.45e-6)
"""CPU seconds per step of a run: a fixed part, per market maker, per agent (fitted on
2026-12-05 to the baseline market at 184, 451 and 1,384 agents with 10 makers and the
baseline day with 20: 2.3, 2.7, 4.0 and 4.4 ms a step, within 15%); the dry run's time
estimate. A scale, not a promise: the machine and the market's state change it."""


def _run_seconds(scenario: dict) -> float:
    agents = scenario.get("agents", {})
    count = sum(a.get("count", 0) for a in agents.values() if isinstance(a, dict))
    makers = agents.get("market_makers", {}).get("count", 0) + agents.get("entrants", {}).get(
        "count", 0
    )
    fixed, per_maker, per_agent = STEP_COST
    return scenario.get("steps", 1) * (fixed + per_maker * makers + per_agent * count)


def _dry_run(exp, out: Path, workers: int | None) -> str:
    """What ``sweep`` would do: runs (to do and already done in ``out``), agent-steps,
    an estimate of the time on the local workers, and the output size."""
    import os

    done = sum((out / "runs" / f"{r.run_id}.json").exists() for r in exp.runs)
    todo = [r for r in exp.runs if not (out / "runs" / f"{r.run_id}.json").exists()]
    work = sum(r.work for r in todo)
    n = workers or os.cpu_count() or 1
    secs = sum(_run_seconds(r.scenario) for r in todo) / n
    steps = max((r.scenario.get("steps", 0) for r in exp.runs), default=0)
    # a run's summary record is ~4 kB; a saved run folder ~60 bytes per step and column
    per_run = 4_000 + (
        60 * steps * (60 + 26 * len(exp.base.markets)) if exp.spec.experiment.save_runs else 0
    )
    size = per_run * len(exp.runs) + 2_000 * len(exp.runs)
    return (
        f"{exp.name}: {len(exp.runs):,} runs ({done:,} already in {out}, {len(todo):,} to run), "
        f"{work:,} agent-steps; about {_duration(secs)} on {n} worker(s) "
        f"(STEP_COST: the rate measured on the machine of benchmarks/RESULTS.md); "
        f"output about {size / 1e6:,.1f} MB "
        f"in {out}/; nothing was run or written"
    )


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def _short_summary(s: dict, out: Path) -> str:
    lines = [
        f"{s['scenario']}: {s['steps']} steps, {s['n_accounts']} accounts, {s['trades']} trades",
        f"  liquidations {s['liquidations']} (waterfall entries) of "
        f"{s['accounts_liquidated']} accounts (notional ${s['liquidated_notional']:,.0f}), "
        f"bankruptcies {s['bankruptcies']}, backstop ${s['backstop_notional']:,.0f}, "
        f"ADL events {s['adl_events']}, socialized ${s['socialized_loss']:,.0f}",
        f"  insurance fund ${s['insurance_fund_start']:,.0f} -> ${s['insurance_fund_end']:,.0f} "
        f"(min ${s['insurance_fund_min']:,.0f}); cascade depth {s['cascade_max_depth']}, "
        f"largest {s['cascade_largest_size']} accounts",
        f"  books: state reconciliation error {s['state_error']:.2e} USD, double-entry "
        f"{s['conservation_error']:.2e} USD, unbooked negative equity "
        f"{s['unbooked_negative_equity']:.2f} USD, bad debt ${s['bad_debt']:,.0f}",
        f"results in {out}/ (model.parquet, events.parquet, trades.parquet, cascade.graphml, "
        "exposure.graphml, summary.json, scenario.toml)",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point: every user error is one line and exit code 2."""
    from .provenance import set_command

    set_command(sys.argv[1:] if argv is None else list(argv))
    usage, no_args, exits, aborts = _click_exceptions()
    try:
        code = app(args=argv, standalone_mode=False)
    except UserError as exc:
        _error(str(exc))
    except no_args:
        sys.exit(0)
    except usage as exc:
        _error(_usage(exc))
    except exits as exc:
        sys.exit(exc.exit_code)
    except (*aborts, KeyboardInterrupt):
        typer.echo("interrupted", err=True)
        sys.exit(130)
    except outputs.OutputError as exc:
        _error(str(exc))
    except OSError as exc:
        where = exc.filename if exc.filename is not None else "output"
        _error(f"{where}: {exc.strerror or exc}")
    sys.exit(code if isinstance(code, int) else 0)


def _click_exceptions() -> tuple[tuple[type, ...], ...]:
    """click's exception classes: typer ≥ 0.20 vendors its own click, older typer uses
    the click package; both kinds are caught."""
    mods = [click.exceptions]
    try:
        import typer._click.exceptions as vendored  # type: ignore[import-not-found]

        mods.append(vendored)
    except ImportError:
        pass

    def grab(name: str) -> tuple[type, ...]:
        return tuple(getattr(m, name) for m in mods if hasattr(m, name))

    exits = (*grab("Exit"), typer.Exit)
    return grab("UsageError"), grab("NoArgsIsHelpError"), exits, (*grab("Abort"), typer.Abort)


def _error(message: str) -> None:
    typer.echo(f"error: {' '.join(message.split())}", err=True)
    sys.exit(2)


def _usage(exc: Exception) -> str:
    """click's usage error as ``<option>: <reason>``."""
    param = getattr(exc, "param", None)
    if param is not None:
        name = param.opts[0] if getattr(param, "opts", None) else param.name
        msg = exc.message or exc.format_message()
        for prefix in (f"Invalid value for '{name}': ", "Invalid value: "):
            msg = msg.removeprefix(prefix)
        return f"{name}: {msg}"
    return exc.format_message()


if __name__ == "__main__":
    main()
