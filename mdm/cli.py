"""The `mdm` command: thin wrappers over the services."""

from __future__ import annotations

import contextlib
import json
import math
import os
import secrets
import signal
import socket
import sys
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from mdm.config import Settings, get_settings

app = typer.Typer(help="mdm: the canonical person registry.", no_args_is_help=True)
console = Console(stderr=True)
KEY_FILE = Path(".mdm-admin-key")


def _registry():  # type: ignore[no-untyped-def]
    from mdm.mapping.load import ProfileError
    from mdm.services.context import Registry

    try:
        return Registry.from_settings(get_settings())
    except ProfileError as exc:
        for fault in exc.faults:
            console.print(f"[red]{escape(fault)}[/red]")
        raise typer.Exit(2) from None


@app.command()
def migrate() -> None:
    """Bring the database schema to the latest migration."""
    from mdm.store.migrate import upgrade

    registry = _registry()
    try:
        upgrade(registry.database.engine)
    finally:
        registry.close()
    console.print(f"[green]migrated[/green] {_safe_url(get_settings().database_url)}")


@app.command()
def demo(records: Annotated[int, typer.Option(help="Demo records to generate")] = 400) -> None:
    """Load the demo data set (does nothing if the registry already holds records)."""
    from mdm.services.demo import load_demo

    registry = _registry()
    try:
        ingested, rejected = load_demo(registry, records=records)
    finally:
        registry.close()
    if ingested or rejected:
        console.print(f"demo: {ingested} records ingested, {rejected} rejected")
    else:
        console.print("demo: the registry already holds records; nothing loaded")


@app.command(name="import")
def import_(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True)],
    source: Annotated[str, typer.Option("--source", "-s", help="Source system of the records")],
    rejects: Annotated[Path | None, typer.Option(help="Where rejected lines go")] = None,
    id_field: Annotated[str, typer.Option(help="Field holding the source's record id")] = (
        "source_id"
    ),
) -> None:
    """Import a CSV or JSONL file; rejected lines go to a reject file with their reasons."""
    from mdm.services.importer import import_file

    rejects = rejects or file.with_suffix(file.suffix + ".rejects.jsonl")
    total = _count_lines(file)
    registry = _registry()
    progress = Progress(
        TextColumn("[bold]importing"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeRemainingColumn(),
        console=console,
        disable=not console.is_terminal,
    )
    try:
        with progress:
            task = progress.add_task("import", total=total)
            summary = import_file(
                registry,
                file,
                source=source,
                rejects=rejects,
                id_field=id_field,
                progress=lambda n: progress.advance(task, n),
            )
    finally:
        registry.close()
    table = Table(title=f"{file.name}: {summary.lines} lines")
    table.add_column("decision")
    table.add_column("records", justify="right")
    for decision, count in sorted(summary.decisions.items()):
        table.add_row(decision, str(count))
    table.add_row("rejected", str(summary.rejected))
    Console().print(table)
    if summary.rejected:
        console.print(f"rejected lines written to {rejects}")


@app.command()
def dedupe(
    dry_run: Annotated[bool, typer.Option(help="Write nothing but the report")] = False,
    report: Annotated[Path | None, typer.Option(help="Write the JSON run report here")] = None,
    since: Annotated[
        datetime | None,
        typer.Option(help="Only pairs with a person changed since (ISO 8601, UTC if no zone)"),
    ] = None,
    chunk: Annotated[int, typer.Option(min=1, help="Clusters per transaction")] = 25,
    workers: Annotated[
        int, typer.Option(min=1, help="Processes that score the blocks and write the merges")
    ] = 2,
    nice: Annotated[
        int,
        typer.Option(
            min=0, max=19, help="Scheduling niceness: the live API goes first for the CPU"
        ),
    ] = 10,
    engine: Annotated[
        str, typer.Option(help="inprocess, or spark (blocking, scoring, clustering on Spark)")
    ] = "inprocess",
    master: Annotated[
        str, typer.Option(help="Spark master URL (spark://host:7077, yarn, local[N])")
    ] = "local[2]",
    workdir: Annotated[
        Path | None,
        typer.Option(help="Where Spark's Parquet files go: a path the driver and executors share"),
    ] = None,
    spark_conf: Annotated[
        list[str] | None,
        typer.Option("--spark-conf", help="A Spark setting, NAME=VALUE (repeatable)"),
    ] = None,
) -> None:
    """The nightly batch dedupe: every live person against the others, with the online
    path's blocking, scorer and decisions; auto-merges of coherent clusters, review items
    for the rest. Killed and run again, it ends as an uninterrupted run would."""
    from mdm.services.dedupe import dedupe as run_dedupe

    spark = None
    if engine == "spark":
        from importlib.util import find_spec

        from mdm.services.spark_engine import SparkOptions

        if find_spec("pyspark") is None:
            console.print("[red]the spark engine needs the extra: pip install '.[spark]'[/red]")
            raise typer.Exit(2)
        conf = {}
        for item in spark_conf or []:
            name, sep, value = item.partition("=")
            if not sep:
                console.print(f"[red]--spark-conf {escape(item)}: expected NAME=VALUE[/red]")
                raise typer.Exit(2)
            conf[name.strip()] = value.strip()
        spark = SparkOptions(master=master, workdir=workdir, conf=conf)
    elif engine != "inprocess":
        console.print(f"[red]--engine {escape(engine)}: inprocess or spark[/red]")
        raise typer.Exit(2)

    if nice:
        os.nice(nice)

    registry = _registry()
    bars = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeRemainingColumn(),
        console=console,
        disable=not console.is_terminal,
    )
    tasks: dict[str, Any] = {}

    def progress(stage: str, done: int, total: int) -> None:
        if console.is_terminal:
            if stage not in tasks:
                tasks[stage] = bars.add_task(stage, total=total or None)
            bars.update(tasks[stage], completed=done, total=total or None)
        else:
            # Plain lines for logs (and for whoever watches a run's progress).
            print(f"dedupe {stage} {done}/{total or '?'}", file=sys.stderr, flush=True)

    started = since.replace(tzinfo=since.tzinfo or UTC) if since else None
    try:
        with bars:
            result = run_dedupe(registry, dry_run=dry_run, since=started, chunk=chunk,
                                workers=workers, progress=progress, spark=spark)  # fmt: skip
    finally:
        registry.close()
    body = json.dumps(result.as_dict(), indent=2)
    if report is not None:
        report.write_text(body + "\n")
    table = Table(title="dedupe" + (" (dry run: nothing written)" if dry_run else ""))
    table.add_column("")
    table.add_column("", justify="right")
    for name in ("persons", "records", "blocks", "generic_blocks", "pairs_scored",
                 "auto_merge_pairs", "clusters", "incoherent_clusters", "merges",
                 "review_pairs", "review_items", "skipped_not_a_match",
                 "skipped_open_reviews"):  # fmt: skip
        table.add_row(name.replace("_", " "), f"{getattr(result, name):,}")
    for stage in result.stages:
        table.add_row(f"{stage.name} (s, peak MiB)", f"{stage.seconds} s, {stage.peak_rss_mib}")
    Console(stderr=True).print(table)


@app.command()
def train(
    sample: Annotated[int, typer.Option(help="Records to estimate from (a random sample)")] = (
        300_000
    ),
    dry_run: Annotated[bool, typer.Option(help="Estimate and print; do not activate")] = False,
) -> None:
    """Estimate the match model from the registry's records and make it the active one.

    Name frequencies from the records; u from random pairs; m and the prior by
    expectation-maximisation over the pairs blocking brings. Running servers pick the
    new model up when they restart.
    """
    from mdm.services.training import activate, train_model

    registry = _registry()
    try:
        parameters, report = train_model(registry, sample=sample)
        table = Table("attribute", "level", "m", "u", "weight (bits)")
        for attribute, levels in parameters.levels.items():
            for level, (m, u) in levels.items():
                table.add_row(attribute, level, f"{m:.4f}", f"{u:.6f}", f"{math.log2(m / u):+.1f}")
        Console().print(table)
        console.print(
            f"{report.records:,} records, {report.pairs:,} candidate pairs, "
            f"{report.iterations} iterations ({'converged' if report.converged else 'stopped'}), "
            f"prior {report.prior:.3g}"
        )
        if dry_run:
            console.print("dry run: nothing stored")
        else:
            activate(registry, parameters, report)
            console.print(f"model {parameters.version} is active")
    except ValueError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from exc
    finally:
        registry.close()


@app.command()
def evaluate(
    labels: Annotated[
        Path | None,
        typer.Option(
            help="CSV of labelled record pairs: source_a,source_id_a,source_b,source_id_b,match"
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the figures as JSON")] = False,
) -> None:
    """Precision and recall of the registry's decisions, from labels.

    The labels are the review items stewards resolved (merge or distinct) and, with
    --labels, a file of record pairs known to be, or not to be, one human.
    """
    from mdm.services.evaluation import InvalidLabels, evaluate, read_labels

    try:
        pairs = read_labels(labels) if labels else None
    except InvalidLabels as exc:
        console.print(f"[red]{escape(str(exc))}[/red]", soft_wrap=True)
        raise typer.Exit(2) from exc
    registry = _registry()
    try:
        result = evaluate(registry, pairs)
    finally:
        registry.close()
    if as_json:
        print(json.dumps(result.as_json(), indent=2))
        return
    console.print(f"model {result.model}")
    stewards = result.stewards
    table = Table("score band", "resolved", "merged", "distinct", "true share", "mean score")
    for band in stewards.bands:
        table.add_row(
            f"{band.low:.2f} - {band.high:.2f}", f"{band.resolved:,}", f"{band.merged:,}",
            f"{band.distinct:,}", _pct(band.true_share), _num(band.mean_score),
        )  # fmt: skip
    table.add_row(
        "all", f"{stewards.merged + stewards.distinct:,}", f"{stewards.merged:,}",
        f"{stewards.distinct:,}", _pct(stewards.true_share), "",
    )  # fmt: skip
    table.title = f"Review items resolved by stewards ({stewards.open_items:,} still open)"
    Console().print(table)
    if result.pairs is not None:
        p = result.pairs
        figures = Table("labelled pairs", "value")
        figures.title = f"Labelled pairs ({labels})"
        for name, value in (
            ("pairs", f"{p.labelled:,} ({p.matches:,} one human)"),
            ("not in the registry", f"{p.unknown:,}"),
            ("auto-merged", f"{p.linked:,}"),
            ("auto-merge precision", _num(p.precision)),
            ("auto-merge recall", _num(p.recall)),
            ("in the review queue", f"{p.in_review:,}"),
            ("review true share", _pct(p.review_true_share)),
            ("recall with the review queue", _num(p.recall_with_review)),
        ):
            figures.add_row(name, value)
        Console().print(figures)
    for note in result.notes:
        console.print(f"[yellow]{note}[/yellow]")


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


@app.command()
def serve(
    port: Annotated[int | None, typer.Option(help="Port (default MDM_PORT or 8000)")] = None,
    host: Annotated[str | None, typer.Option(help="Host (default MDM_HOST or 127.0.0.1)")] = None,
    workers: Annotated[int, typer.Option(min=1, help="Worker processes")] = 1,
    deliver: Annotated[
        bool, typer.Option("--deliver", help="Also deliver webhooks (as `mdm worker` does)")
    ] = False,
) -> None:
    """Serve the HTTP API (docs at /docs)."""
    settings = ensure_admin_key()
    if workers == 1:
        _check_profiles(settings)
    else:
        _check_profiles_apart(settings)
    host, port = host or settings.host, port or settings.port
    console.print(f"mdm serving on http://{host}:{port} (docs at /docs), {workers} worker(s)")
    sock = _listen(host, port)
    if workers == 1:
        if deliver:
            _deliver_in_background()
        _serve_one(sock)
        return
    # The workers share one listening socket. Each serves one request at a time (the API
    # runs its handlers on the event loop), so only an idle worker accepts: the next
    # connection goes to whichever worker is free, not to one chosen by a hash of ports.
    # Their metrics meet in one directory, so any worker answers /metrics for all.
    import tempfile

    os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", tempfile.mkdtemp(prefix="mdm-metrics-"))
    children = []
    for _ in range(workers):
        pid = os.fork()
        if pid == 0:
            try:
                _serve_one(sock)
            finally:
                os._exit(0)
        children.append(pid)

    def stop(signum: int, _frame: object) -> None:
        for child in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(child, signal.SIGTERM)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    if deliver:  # after the forks: a child must not inherit a thread mid-transaction
        _deliver_in_background()
    for child in children:
        os.waitpid(child, 0)


def _deliver_in_background() -> None:
    """A webhook worker on a thread of the serving process, for `make run`: one process
    to start. In production run `mdm worker` on its own."""
    import threading

    from mdm.services.delivery import Worker

    stop = threading.Event()

    def deliver() -> None:
        registry = _registry()
        runner = Worker(registry, threads=4)
        try:
            runner.run(stop, idle=1.0)
        finally:
            runner.close()
            registry.close()

    threading.Thread(target=deliver, name="webhook-worker", daemon=True).start()


def _check_profiles(settings: Settings) -> None:
    """Stop before serving when a mapping profile is bad, naming each fault's file and line."""
    from mdm.mapping.load import ProfileError
    from mdm.services.context import sources_of

    try:
        sources_of(settings)
    except ProfileError as exc:
        for fault in exc.faults:
            console.print(f"[red]{escape(fault)}[/red]")
        raise typer.Exit(2) from None


def _check_profiles_apart(settings: Settings) -> None:
    """`_check_profiles` in a child process: checking imports the normalisation stack (100 MB
    and more), which a supervisor that only forks and waits need not keep resident."""
    pid = os.fork()
    if pid == 0:
        code = 0
        try:
            _check_profiles(settings)
        except typer.Exit as exc:
            code = exc.exit_code
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise typer.Exit(2)


def _listen(host: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)
    return sock


def _serve_one(sock: socket.socket) -> None:
    import uvicorn

    from mdm.logs import configure

    configure("WARNING")
    config = uvicorn.Config(
        "api.app:create_app", factory=True, log_level="warning", access_log=False,
        log_config=None,  # uvicorn's records go through the JSON handler too
    )  # fmt: skip
    uvicorn.Server(config).run(sockets=[sock])


def ensure_admin_key() -> Settings:
    """The settings, with an admin key: MDM_ADMIN_KEY, else the local key file's."""
    if not get_settings().admin_key:
        os.environ["MDM_ADMIN_KEY"] = _local_admin_key()
        get_settings.cache_clear()  # the app reads the settings again, key included
    return get_settings()


def _local_admin_key() -> str:
    """Without MDM_ADMIN_KEY, a key is generated once, shown once, kept in a local file."""
    if KEY_FILE.exists():
        console.print(f"admin key: read from {KEY_FILE} (set MDM_ADMIN_KEY to use another)")
        return KEY_FILE.read_text().strip()
    key = "mdm_" + secrets.token_urlsafe(32)
    KEY_FILE.touch(mode=0o600)
    KEY_FILE.write_text(key + "\n")
    console.print(f"A new admin key was generated and kept in {KEY_FILE} (shown once):")
    print(key)
    return key


def _count_lines(path: Path) -> int:
    with path.open("rb") as handle:
        lines = sum(1 for _ in handle)
    return max(lines - 1, 0) if path.suffix.lower() == ".csv" else lines


def _safe_url(url: str) -> str:
    from mdm.store.db import safe_url

    return safe_url(url)


mapping_app = typer.Typer(help="Source mapping profiles: check samples against them.")
app.add_typer(mapping_app, name="mapping")


@mapping_app.command("check")
def mapping_check(
    file: Annotated[Path, typer.Argument(help="JSON (one payload or a list) or JSONL")],
    source: Annotated[str, typer.Option(help="The source whose profile reads the file")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON")] = False,
) -> None:
    """Map sample payloads with a source's profile and report per field: mapped,
    transformed, unmapped enum values, truncations, warnings and failures. Writes nothing;
    needs no database. Exits 1 when a payload fails."""
    from mdm.services.context import sources_of
    from mdm.services.sources import check_payloads

    settings = get_settings()
    _check_profiles(settings)
    found = sources_of(settings).get(source)
    if found is None:
        console.print(f"[red]no source {source!r} is configured[/red]")
        raise typer.Exit(2)
    report = check_payloads(found, _payloads(file), blind_index_key=settings.blind_index_key)
    if as_json:
        typer.echo(json.dumps(report.as_dict(), indent=2, ensure_ascii=False))
    else:
        _print_mapping_report(report)
    raise typer.Exit(1 if report.failed else 0)


def _payloads(file: Path) -> list[Any]:
    """Payloads from a file: bare payloads, or envelopes {source, source_id, data}."""
    text = file.read_text(encoding="utf-8")
    try:
        parsed = json.loads(text)
        items = parsed if isinstance(parsed, list) else [parsed]
    except json.JSONDecodeError:
        items = [json.loads(line) for line in text.splitlines() if line.strip()]
    return [
        item["data"]
        if isinstance(item, dict) and isinstance(item.get("data"), dict) and "source_id" in item
        else item
        for item in items
    ]


def _print_mapping_report(report) -> None:  # type: ignore[no-untyped-def]
    table = Table(title=f"{report.source}: {report.records} payloads, {report.failed} failed")
    table.add_column("field", no_wrap=True)
    for column in ("mapped", "transformed", "unmapped values", "truncated"):
        table.add_column(column, justify="right" if column != "unmapped values" else "left")
    table.add_column("warnings")
    table.add_column("failures")
    for name, r in report.fields.items():

        def listed(counts) -> str:  # type: ignore[no-untyped-def]
            return "\n".join(f"{escape(str(k))} ({n})" for k, n in counts.most_common(5))

        table.add_row(
            name, str(r.mapped), str(r.transformed), listed(r.unmapped), str(r.truncated),
            listed(r.warnings), f"[red]{listed(r.failures)}[/red]" if r.failures else "",
        )  # fmt: skip
    Console().print(table)
    if report.unread:
        unread = ", ".join(escape(k) for k, _ in report.unread.most_common(20))
        Console().print(f"payload keys no field reads: {unread}")


@app.command()
def worker(
    once: Annotated[bool, typer.Option(help="Deliver what is due, then stop")] = False,
    batch: Annotated[int, typer.Option(min=1, help="Deliveries per round")] = 200,
    threads: Annotated[int, typer.Option(min=1, help="Concurrent deliveries")] = 16,
) -> None:
    """Deliver outbox events to webhook subscriptions, signed, with retries (Ctrl-C stops
    after the round in flight). Run as many as you like on PostgreSQL: they share the work."""
    import threading

    from mdm.logs import configure
    from mdm.services.delivery import Worker

    configure()
    registry = _registry()
    runner = Worker(registry, batch=batch, threads=threads)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    console.print(f"mdm worker delivering webhooks ({threads} at a time)")
    try:
        if once:
            while runner.run_once():
                pass
        else:
            runner.run(stop)
    finally:
        runner.close()
        registry.close()


@app.command()
def health(
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON")] = False,
    alert: Annotated[
        bool, typer.Option(help="Publish each new problem as an alert.raised event")
    ] = False,
) -> None:
    """Sync health per source and webhook; exits 1 when something needs attention, so a
    scheduler can alert on it."""
    from mdm.services.health import raise_alerts, sync_health

    registry = _registry()
    try:
        report = sync_health(registry)
        if alert:
            raise_alerts(registry, report)
    finally:
        registry.close()
    if as_json:
        typer.echo(json.dumps(report.as_dict(), indent=2))
    else:
        table = Table(title=f"sync health at {report.checked_at:%Y-%m-%d %H:%M} UTC")
        for column in ("source", "kind", "last record", "24h records", "24h refused", "today"):
            table.add_column(column)
        for s in report.sources:
            overall = next((v for v in s.volume if v["status"] is None), None)
            today = f"{overall['today']} ({overall['verdict']})" if overall is not None else "-"
            table.add_row(
                s.source, s.kind or "-",
                f"{s.last_received_at:%Y-%m-%d %H:%M}" if s.last_received_at else "never",
                str(s.records_24h), str(s.rejected_24h), today,
            )  # fmt: skip
        Console().print(table)
        for p in report.problems:
            console.print(f"[red]{escape(p.message)}[/red]")
    raise typer.Exit(0 if report.healthy else 1)


keys_app = typer.Typer(help="API keys (service accounts): create, list, revoke, rotate.")
app.add_typer(keys_app, name="keys")


@keys_app.command("create")
def keys_create(
    name: Annotated[str, typer.Option(help="Who holds it, e.g. workday-integration")],
    scopes: Annotated[str, typer.Option(help="Comma-separated, e.g. records:write,records:read")],
    source: Annotated[str | None, typer.Option(help="Bind to one source's records")] = None,
    expires: Annotated[str | None, typer.Option(help="Expiry date, YYYY-MM-DD (UTC)")] = None,
) -> None:
    """Create a key; it is printed once, alone on the last line, and only its hash kept."""
    from datetime import UTC, datetime

    from mdm.model.errors import InvalidRecord
    from mdm.services.keys import create_key

    expires_at = None
    if expires:
        try:
            expires_at = datetime.fromisoformat(expires).replace(tzinfo=UTC)
        except ValueError:
            console.print("[red]--expires: a date as YYYY-MM-DD[/red]")
            raise typer.Exit(2) from None
    registry = _registry()
    try:
        key, value = create_key(
            registry, name=name, actor="cli", source=source, expires_at=expires_at,
            scopes=[s.strip() for s in scopes.split(",") if s.strip()],
        )  # fmt: skip
    except InvalidRecord as exc:
        for issue in exc.errors:
            console.print(f"[red]{issue.field}: {escape(issue.message)}[/red]")
        raise typer.Exit(2) from None
    finally:
        registry.close()
    console.print(
        f"created key {key.prefix} ({key.name}); it is shown once, keep it now:", highlight=False
    )
    typer.echo(value)


@keys_app.command("list")
def keys_list(
    expiring: Annotated[bool, typer.Option(help="Only keys expiring within 30 days")] = False,
) -> None:
    """Keys with their prefix, scopes, source, expiry, last use; never the keys."""
    from mdm.services.keys import list_keys

    registry = _registry()
    try:
        keys = list_keys(registry, expiring=expiring)
    finally:
        registry.close()
    table = Table()
    for column in ("prefix", "name", "scopes", "source", "expires", "last used", "state"):
        table.add_column(column)
    for k in keys:
        table.add_row(
            k.prefix, k.name, ",".join(k.scopes), k.source or "-",
            f"{k.expires_at:%Y-%m-%d}" if k.expires_at else "never",
            f"{k.last_used_at:%Y-%m-%d %H:%M}" if k.last_used_at else "never",
            "revoked" if k.revoked_at else "active",
        )  # fmt: skip
    Console(width=160).print(table)


@keys_app.command("revoke")
def keys_revoke(key: Annotated[str, typer.Argument(help="The key's id or prefix")]) -> None:
    """Revoke a key: it is refused from the next request on."""
    from mdm.services.keys import KeyNotFound, revoke_key

    registry = _registry()
    try:
        revoked = revoke_key(registry, key)
    except KeyNotFound as exc:
        console.print(f"[red]{escape(exc.detail)}[/red]")
        raise typer.Exit(2) from None
    finally:
        registry.close()
    console.print(f"revoked {revoked.prefix} ({revoked.name})")


@keys_app.command("rotate")
def keys_rotate(key: Annotated[str, typer.Argument(help="The key's id or prefix")]) -> None:
    """Replace a key by a new one with the same name, scopes, source and expiry; the old
    one is revoked. The new key is printed once, alone on the last line."""
    from mdm.services.keys import KeyNotFound, rotate_key

    registry = _registry()
    try:
        new, value = rotate_key(registry, key, actor="cli")
    except KeyNotFound as exc:
        console.print(f"[red]{escape(exc.detail)}[/red]")
        raise typer.Exit(2) from None
    finally:
        registry.close()
    console.print(f"rotated to {new.prefix}; the old key is revoked. The new key, once:")
    typer.echo(value)


@keys_app.command("rotate-data")
def keys_rotate_data(
    batch: Annotated[int, typer.Option(min=1, help="Rows per transaction")] = 1000,
) -> None:
    """Re-encrypt every sealed value (and every person's own key) under the first key of
    MDM_DATA_KEYS. Run it after putting a new key first; once it is done, the older keys
    can leave the ring. Safe to stop and run again."""
    from mdm.services.sources import sealed_locations
    from mdm.store.rotation import rotate

    registry = _registry()
    try:
        moved = rotate(
            registry.database.engine, registry.database.sealer, batch=batch,
            locate=partial(sealed_locations, registry),
        )  # fmt: skip
    finally:
        registry.close()
    active = registry.settings.keyring.active
    for table, n in sorted(moved.items()):
        console.print(f"{table}: {n} value(s) moved to key {active}")
    console.print(f"every sealed value is now under key {active}")


@keys_app.command("new-data-key")
def keys_new_data_key(
    key_id: Annotated[str, typer.Argument(help="The new key's id (1-16 of A-Z a-z 0-9 _ -)")],
) -> None:
    """Print a fresh MDM_DATA_KEYS entry (<id>:<base64 key>) to put first in the ring."""
    from mdm.crypto import KeyRing, KeyRingError, new_key

    entry = f"{key_id}:{new_key()}"
    try:
        KeyRing.parse(entry)
    except KeyRingError as exc:
        console.print(f"[red]{escape(str(exc))}[/red]")
        raise typer.Exit(2) from None
    typer.echo(entry)


audit_app = typer.Typer(help="The audit trail: verify its hash chain.")
app.add_typer(audit_app, name="audit")


@audit_app.command("verify")
def audit_verify(
    as_json: Annotated[bool, typer.Option("--json", help="The result as JSON")] = False,
) -> None:
    """Check the hash chain of every lane; name the first event that does not hold (exit 1)."""
    import time

    from mdm.store.audit import verify

    registry = _registry()
    started = time.perf_counter()
    try:
        with registry.database.engine.connect() as conn:
            result = verify(conn)
    finally:
        registry.close()
    seconds = round(time.perf_counter() - started, 3)
    if as_json:
        typer.echo(
            json.dumps(
                {
                    "ok": result.ok,
                    "events": result.events,
                    "head": result.head,
                    "heads": {str(lane): head for lane, head in sorted(result.heads.items())},
                    "broken_seq": result.broken_seq,
                    "broken_id": str(result.broken_id) if result.broken_id else None,
                    "reason": result.reason,
                    "seconds": seconds,
                }
            )
        )
    elif result.ok:
        console.print(f"audit chain intact: {result.events} events in {seconds} s")
        for lane, head in sorted(result.heads.items()):
            console.print(f"lane {lane} head {head}")
    else:
        console.print(
            f"[red]audit chain broken at event seq {result.broken_seq} "
            f"(id {result.broken_id}): {result.reason}[/red]"
        )
    if not result.ok:
        raise typer.Exit(1)


if __name__ == "__main__":
    app()
