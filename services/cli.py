"""`ksp`: one command line for every service and operation. Run `ksp --help`."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

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

# The reasons the pipeline writes (kept in sync with services/scoring/processing.py by a test).
DEAD_LETTER_REASONS = ("too_large", "not_utf8", "not_json", "invalid_event", "scoring_failed", "clickhouse_refused")

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


deadletters_app = typer.Typer(
    help="Inspect and re-drive the dead-letter topic (raw events the scorer rejected, rows "
    "ClickHouse refused). Reasons: " + ", ".join(DEAD_LETTER_REASONS) + ".",
    no_args_is_help=True,
)
app.add_typer(deadletters_app, name="deadletters")
Reasons = Annotated[list[str] | None, typer.Option("--reason", help="Only this reason (repeatable).")]
Since = Annotated[str, typer.Option(help="Only letters since: ISO date/datetime (UTC) or an age (90m, 6h, 7d).")]
Limit = Annotated[int | None, typer.Option(min=1, help="At most this many letters.")]
Idle = Annotated[float, typer.Option(help="Give up reading after this many seconds without a message.")]


@deadletters_app.command("list", short_help="List dead letters and count them by reason.")
def deadletters_list(reason: Reasons = None, since: Since = "", limit: Limit = None, idle_timeout: Idle = 10.0,
                     as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
                     profile: Profile = None) -> None:
    """List dead letters from the beginning of the topic: time, reason, source
    topic/partition/offset, key, detail (truncated); then the count by reason.

    With --json: one JSON object per line on stdout (value as text, or value_base64), the count on
    stderr. Reads without a consumer group: changes nothing."""
    from services.common.settings import ServiceSettings, load_settings
    from services.ops.deadletter_commands import list_dead_letters

    settings = load_settings(ServiceSettings, profile)
    code = _dead_letter_command(lambda selection: list_dead_letters(
        settings, selection, limit=limit, as_json=as_json, echo=typer.echo, idle_s=idle_timeout), reason, since)
    raise typer.Exit(code)


@deadletters_app.command("redrive", short_help="Re-publish dead letters to their source topic (idempotent).")
def deadletters_redrive(
    reason: Annotated[list[str], typer.Option("--reason", help="Re-drive letters of this reason (repeatable).")],
    since: Since = "", limit: Limit = None, idle_timeout: Idle = 10.0,
    dry_run: Annotated[bool, typer.Option(help="Print what would be re-driven; send nothing.")] = False,
    to_topic: Annotated[str | None, typer.Option(help="Send here instead of each letter's source topic.")] = None,
    profile: Profile = None,
) -> None:
    """Re-publish the original messages of the selected dead letters to their source topic (or
    --to-topic) once the cause is fixed (a scorer, a ClickHouse column or constraint): same key
    and value, their own headers plus ksp-redriven-from: <topic>/<partition>/<offset> of the letter.

    Safe to repeat: raw events are keyed by event id and the sink stores each event id once, so
    re-driving twice stores one row (only the at-least-once aggregates topic may count a twice
    re-driven raw event twice). Example: ksp deadletters redrive --reason clickhouse_refused --dry-run

    Exit code 0 when all were sent, 1 if any send failed or a letter had no existing target topic,
    2 for bad options."""
    from services.common.settings import ServiceSettings, load_settings
    from services.ops.deadletter_commands import redrive_dead_letters

    settings = load_settings(ServiceSettings, profile)
    code = _dead_letter_command(lambda selection: redrive_dead_letters(
        settings, selection, to_topic=to_topic, dry_run=dry_run, limit=limit, echo=typer.echo,
        idle_s=idle_timeout), reason, since)
    raise typer.Exit(code)


def _dead_letter_command(run: Callable[[Any], int], reasons: list[str] | None, since: str) -> int:
    """Validate the shared options (exit 2 with the valid choices), run, and turn a missing
    topic or an unreachable broker into a message and exit code 1."""
    from datetime import UTC, datetime

    from kafka.errors import KafkaError

    from services.ops.deadletter_kafka import TopicNotFound
    from services.ops.deadletters import Selection, UnknownReason, parse_since, validate_reasons

    try:
        chosen = validate_reasons(reasons or [])
    except UnknownReason as exc:
        raise typer.BadParameter(str(exc), param_hint="--reason") from None
    try:
        start = parse_since(since, now=datetime.now(UTC)) if since else None
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--since") from None
    try:
        return run(Selection(reasons=chosen, since=start))
    except (TopicNotFound, KafkaError) as exc:
        typer.echo(f"error: {exc}", err=True)
        return 1


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
