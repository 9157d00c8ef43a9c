"""`ksp`: one command line for every service and operation. Run `ksp --help`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(
    help="Kundensprechen: streaming voice-of-customer. Settings come from KSP_* environment "
    "variables and the profile (KSP_PROFILE=dev|prod); see README.md.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
schemas_app = typer.Typer(help="Contracts: export JSON Schema files.", no_args_is_help=True)
text_app = typer.Typer(help="Text analytics: evaluate on labelled data.", no_args_is_help=True)
app.add_typer(schemas_app, name="schemas")
app.add_typer(text_app, name="text")

Profile = Annotated[str | None, typer.Option(help="Settings profile (dev|prod); default $KSP_PROFILE or prod.")]


@app.command()
def run(
    data_dir: Annotated[Path, typer.Option(help="Where the embedded ClickHouse keeps its data.")] = Path(".ksp-data"),
    rate: Annotated[float, typer.Option(help="Demo events per second from the simulator (0: none).")] = 20.0,
    kafka_port: Annotated[int, typer.Option(help="Port of the embedded broker.")] = 9092,
    clickhouse_port: Annotated[int, typer.Option(help="HTTP port of the embedded ClickHouse.")] = 8123,
    ingest_port: Annotated[int, typer.Option(help="Port of the ingest API.")] = 8000,
    alerts_port: Annotated[int, typer.Option(help="Port of the alerts API and ops console.")] = 8001,
    scoring_port: Annotated[int, typer.Option(help="Port of the scoring worker's health and metrics.")] = 6066,
) -> None:
    """Run the whole pipeline locally: embedded Kafka and ClickHouse, all services, demo traffic."""
    from deploy.embedded.stack import Stack, StackPorts

    ports = StackPorts(kafka=kafka_port, clickhouse=clickhouse_port, ingest=ingest_port, alerts=alerts_port,
                       scoring_web=scoring_port)
    Stack(data_dir=data_dir.resolve(), ports=ports, demo_rate=rate).run_forever()


@app.command()
def ingest(profile: Profile = None) -> None:
    """Run the ingest HTTP API (POST /v1/feedback)."""
    from services.common.settings import load_settings
    from services.ingest.main import serve
    from services.ingest.settings import IngestSettings

    serve(load_settings(IngestSettings, profile))


@app.command()
def scoring(profile: Profile = None) -> None:
    """Run a scoring worker (Faust agent + ClickHouse sink)."""
    from services.common.settings import load_settings
    from services.scoring.main import serve
    from services.scoring.settings import ScoringSettings

    serve(load_settings(ScoringSettings, profile))


alerts_app = typer.Typer(
    help="Without a subcommand: run an alerts worker (detectors, delivery, API, ops console). "
    "`ksp alerts backtest` replays history through the rules.",
    invoke_without_command=True,
)
app.add_typer(alerts_app, name="alerts")


@alerts_app.callback()
def alerts(ctx: typer.Context, profile: Profile = None) -> None:
    """Run an alerts worker (detectors, delivery, alerts API and ops console); see subcommands."""
    if ctx.invoked_subcommand is not None:
        return
    from services.alerts.main import serve
    from services.alerts.settings import AlertsSettings
    from services.common.settings import load_settings

    serve(load_settings(AlertsSettings, profile))


@alerts_app.command("backtest")
def alerts_backtest(
    rules: Annotated[Path | None, typer.Option(help="Rules YAML file; default: the built-in rules.")] = None,
    since: Annotated[str, typer.Option("--from", help="Start (ISO date or datetime, UTC).")] = "",
    until: Annotated[str, typer.Option("--to", help="End (ISO date or datetime, UTC); default now.")] = "",
    profile: Profile = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Replay stored feedback from ClickHouse through the detectors; report what would have fired."""
    from services.alerts.backtest import run_backtest
    from services.alerts.settings import AlertsSettings
    from services.common.settings import load_settings

    run_backtest(load_settings(AlertsSettings, profile), rules_path=rules, since=since, until=until,
                 as_json=as_json, echo=typer.echo)


@app.command()
def migrate(
    profile: Profile = None,
    cluster: Annotated[str | None, typer.Option(help="ClickHouse cluster for ON CLUSTER DDL.")] = None,
) -> None:
    """Create or upgrade the ClickHouse database `kundensprechen` (idempotent)."""
    from services.common.clickhouse import migrate as apply
    from services.common.settings import ServiceSettings, load_settings

    settings = load_settings(ServiceSettings, profile)
    if cluster:
        settings.clickhouse.cluster = cluster
    applied = apply(settings.clickhouse, progress=lambda m: typer.echo(f"applied {m.version:04d} {m.name}"))
    typer.echo(f"{len(applied)} migration(s) applied; database {settings.clickhouse.database} is current")


@app.command()
def topics(profile: Profile = None) -> None:
    """Create the Kafka topics that do not exist yet."""
    from services.common.kafka import ensure_topics
    from services.common.settings import ServiceSettings, load_settings

    settings = load_settings(ServiceSettings, profile)
    created = ensure_topics(settings.kafka, settings.topics.all())
    typer.echo(f"created: {', '.join(created) or 'none'}; all present: {', '.join(settings.topics.all())}")


@app.command()
def simulate(
    url: Annotated[str, typer.Option(help="Ingest base URL.")] = "http://127.0.0.1:8000",
    rate: Annotated[float, typer.Option(help="Events per second.")] = 20.0,
    duration: Annotated[float | None, typer.Option(help="Seconds to run; default: until Ctrl-C.")] = None,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 7,
    incident_after: Annotated[float, typer.Option(help="Seconds until the injected incident starts.")] = 20.0,
    api_key: Annotated[str | None, typer.Option(help="Ingest API key, if required.")] = None,
    incident_unit: Annotated[str, typer.Option(help="The unit whose service degrades.")] = "hamburg-altona",
    touchpoints: Annotated[str | None, typer.Option(help="Comma-separated touchpoints; default all.")] = None,
) -> None:
    """Send realistic multi-touchpoint feedback (German and English) with an injected incident:
    after --incident-after seconds, one unit's detractor share jumps and its customers complain
    about waiting and billing, some stating they will cancel."""
    from schemas.feedback import Touchpoint
    from services.simulator.run import run_simulation

    chosen = [t.strip() for t in touchpoints.split(",")] if touchpoints else None
    if chosen and (unknown := [t for t in chosen if t not in Touchpoint.__members__]):
        raise typer.BadParameter(f"unknown touchpoint(s): {', '.join(unknown)}; choose from "
                                 f"{', '.join(Touchpoint.__members__)}", param_hint="--touchpoints")
    run_simulation(url=url, rate=rate, duration=duration, seed=seed, incident_after=incident_after,
                   api_key=api_key, echo=typer.echo, incident_unit=incident_unit, touchpoints=chosen)


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def bench(ctx: typer.Context) -> None:
    """Benchmark the pipeline (options: --quick, --runs N, --only a,b, --out PATH); writes
    bench/results/latest.json and BENCHMARKS.md. Run from the repository root."""
    from bench.__main__ import main

    raise typer.Exit(main(ctx.args))


@app.command()
def settings() -> None:
    """Print the settings reference (every KSP_* variable of every service) as Markdown."""
    from services.common.settings_doc import reference, service_models

    typer.echo(reference(service_models()))


@schemas_app.command("export")
def schemas_export(
    out: Annotated[Path, typer.Option(help="Target folder.")] = Path("schemas/jsonschema"),
) -> None:
    """Write JSON Schema files for non-Python touchpoints."""
    from schemas.export import export_json_schemas

    for path in export_json_schemas(out):
        typer.echo(f"wrote {path}")


@text_app.command("evaluate")
def text_evaluate(
    data_dir: Annotated[Path, typer.Option(help="Folder with the labelled CSV files.")] = Path("../shared/data"),
) -> None:
    """Report accuracy, macro-F1 and latency per language on labelled data (JSON)."""
    from services.scoring.text.evaluate import evaluate

    typer.echo(json.dumps(evaluate(data_dir), indent=2))


if __name__ == "__main__":
    app()
