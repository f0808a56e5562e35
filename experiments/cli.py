"""The ``crossmargin`` command line (typer).

Every user error (a bad scenario key, a missing file, a malformed CSV row) ends the
command with one line on stderr naming the field and the reason, and exit code 2.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="crossmargin: agent-based model of cross-margin liquidation contagion.",
)


@app.callback()
def _root() -> None:
    """crossmargin: agent-based model of cross-margin liquidation contagion."""


class UserError(Exception):
    """Bad input from the user: reported in one line, exit code 2."""


def fail(message: str) -> None:
    """Print ``error: message`` on stderr and exit with code 2."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code=2)


@app.command()
def replay(
    file: Annotated[Path, typer.Argument(help="CSV with header op,side,price,qty,id")],
) -> None:
    """Replay an order stream through one order book; print a JSON summary."""
    from experiments.replay import ReplayError
    from experiments.replay import replay as run_replay

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
    except tomllib.TOMLDecodeError:
        return raw


def load_scenario(path: Path, *, seed: int | None, steps: int | None, sets: list[str]):
    """Read a scenario file and apply command-line overrides (raises UserError)."""
    from model.scenario import Scenario, ScenarioError

    try:
        scenario = Scenario.from_toml(path)
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
    scenario: Annotated[Path, typer.Argument(help="scenario TOML file")],
    seed: Annotated[int | None, typer.Option(help="random seed (overrides the file)")] = None,
    steps: Annotated[int | None, typer.Option(help="number of one-minute steps")] = None,
    out: Annotated[Path | None, typer.Option(help="output directory")] = None,
    set_: Annotated[
        list[str] | None, typer.Option("--set", help="dotted.key=value override (repeatable)")
    ] = None,
    progress: Annotated[bool, typer.Option(help="show a progress bar")] = True,
) -> None:
    """Run one scenario and write model/events/trades Parquet, graphs and a summary."""
    from experiments.runner import run_scenario

    sc = load_scenario(scenario, seed=seed, steps=steps, sets=set_ or [])
    out = out or Path("results") / sc.name
    summary = run_scenario(sc, out, progress=progress)
    typer.echo(_short_summary(summary, out))


@app.command()
def sweep(
    experiment: Annotated[Path, typer.Argument(help="experiment TOML file")],
    out: Annotated[Path | None, typer.Option(help="output directory")] = None,
    workers: Annotated[
        int | None, typer.Option(help="local Dask workers (default: one per core)")
    ] = None,
    scheduler: Annotated[
        str | None, typer.Option(help="address of an existing Dask scheduler, tcp://host:8786")
    ] = None,
    retries: Annotated[int | None, typer.Option(help="retries of a run that raises")] = None,
    progress: Annotated[bool, typer.Option(help="show a progress bar")] = True,
) -> None:
    """Run an experiment's grid × seeds on Dask; resumable; writes summary.parquet."""
    from experiments.design import ExperimentError, load_experiment
    from experiments.sweep import run_sweep

    if workers is not None and scheduler is not None:
        fail("--workers and --scheduler: give one or the other")
    if workers is not None and workers < 1:
        fail(f"--workers: must be >= 1, got {workers}")
    if retries is not None and retries < 0:
        fail(f"--retries: must be >= 0, got {retries}")
    try:
        exp = load_experiment(experiment)
    except ExperimentError as exc:
        fail(str(exc))
    out = out or Path("results") / exp.name
    table = run_sweep(
        exp, out, workers=workers, scheduler=scheduler, retries=retries, progress=progress
    )
    ok = int((table["status"] == "ok").sum())
    bad = table[table["status"] != "ok"]
    typer.echo(f"{exp.name}: {ok}/{len(table)} runs done -> {out}/summary.parquet")
    for _, row in bad.iterrows():
        typer.echo(f"  {row['status']}: run {row['run_id']} (seed {row['seed']}): {row['error']}")
    if len(bad):
        raise typer.Exit(code=1)


@app.command()
def report(
    directory: Annotated[Path, typer.Argument(help="a run or a sweep directory")],
) -> None:
    """Figures (PNG + PDF) and a report (Markdown + HTML) for a run or a sweep."""
    from analysis.report import ReportError
    from analysis.report import report as make_report

    try:
        md = make_report(directory)
    except ReportError as exc:
        fail(str(exc))
    typer.echo(f"report: {md} and {md.with_suffix('.html')}; figures in {md.parent / 'figures'}/")


@app.command()
def dashboard(
    port: Annotated[int, typer.Option(help="port on 127.0.0.1")] = 8765,
    scenario: Annotated[
        Path | None, typer.Option(help="scenario TOML (default: the dashboard preset)")
    ] = None,
) -> None:
    """Start the SolaraViz dashboard on 127.0.0.1 and print its address."""
    import os

    from model.scenario import Scenario, ScenarioError

    if not 0 < port < 65536:
        fail(f"--port: must be in 1..65535, got {port}")
    env = dict(os.environ)
    if scenario is not None:
        try:
            Scenario.from_toml(scenario)
        except ScenarioError as exc:
            fail(str(exc))
        env["CROSSMARGIN_SCENARIO"] = str(scenario.resolve())
    typer.echo(f"crossmargin dashboard: http://127.0.0.1:{port}/", err=False)
    sys.stdout.flush()
    solara = Path(sys.executable).with_name("solara")
    cmd = [str(solara), "run", "analysis.app", "--host", "127.0.0.1", "--port", str(port)]
    cmd += ["--production", "--no-open", "--no-check-version", "--log-level", "warning"]
    os.execve(cmd[0], cmd, env)


@app.command()
def validate(
    out: Annotated[Path, typer.Option(help="output directory")] = Path("results/validation"),
    quick: Annotated[
        bool, typer.Option(help="smaller models, fewer seeds (about 2 minutes)")
    ] = False,
) -> None:
    """Run the validation suite against published results; write validation.md."""
    from analysis.validation import run_validation

    results = run_validation(out, quick=quick)
    n_pass = sum(r.passed for r in results)
    typer.echo(f"{n_pass}/{len(results)} checks pass -> {out / 'validation.md'}")


def _short_summary(s: dict, out: Path) -> str:
    lines = [
        f"{s['scenario']}: {s['steps']} steps, {s['n_accounts']} accounts, {s['trades']} trades",
        f"  liquidations {s['liquidations']} (notional ${s['liquidated_notional']:,.0f}), "
        f"bankruptcies {s['bankruptcies']}, backstop ${s['backstop_notional']:,.0f}, "
        f"ADL events {s['adl_events']}, socialized ${s['socialized_loss']:,.0f}",
        f"  insurance fund ${s['insurance_fund_start']:,.0f} -> ${s['insurance_fund_end']:,.0f} "
        f"(min ${s['insurance_fund_min']:,.0f}); cascade depth {s['cascade_max_depth']}, "
        f"largest {s['cascade_largest_size']} accounts",
        f"  conservation error {s['conservation_error']:.2e} USD",
        f"results in {out}/ (model.parquet, events.parquet, trades.parquet, cascade.graphml, "
        "exposure.graphml, summary.json, scenario.toml)",
    ]
    return "\n".join(lines)


def main() -> None:
    """Console-script entry point."""
    try:
        app()
    except UserError as exc:
        typer.echo(f"error: {exc}", err=True)
        sys.exit(2)


if __name__ == "__main__":
    main()
