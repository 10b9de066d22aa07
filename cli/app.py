"""The ``wcs`` console script: one entry point for every process of the system."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from pydantic import ValidationError

from wcs.errors import WcsError
from wcs.logs import configure_logging
from wcs.settings import Settings, describe_error, load_settings, secret_values

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

app = typer.Typer(
    name="wcs",
    help="Warehouse control system: controller, drivers, simulator, API and tools.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
db_app = typer.Typer(help="Database schema management.", no_args_is_help=True)
app.add_typer(db_app, name="db")
users_app = typer.Typer(help="API users: bearer tokens and their roles.", no_args_is_help=True)
app.add_typer(users_app, name="users")

FloorOption = Annotated[
    Path, typer.Option("--floor", "-f", help="Floor file (YAML) listing devices and stations.")
]


def _settings() -> Settings:
    try:
        settings = load_settings()
    except ValidationError as exc:
        typer.secho(f"configuration error: {describe_error(exc)}", fg="red", err=True)
        raise typer.Exit(2) from None
    except Exception as exc:
        typer.secho(f"configuration error: {exc}", fg="red", err=True)
        raise typer.Exit(2) from None
    configure_logging(settings.log_level, json=settings.log_json, secrets=secret_values(settings))
    return settings


def _data_dir() -> Path:
    try:
        return load_settings().data_dir
    except Exception:  # the demo reports bad settings itself, in its own words
        return Path("var")


def _ready(settings: Settings) -> None:
    """Refuse to start on a database that is unreachable or not migrated: one line
    saying what to do, exit code 1 (instead of failing on every query later)."""
    from wcs.persistence.readiness import check_database

    _run(check_database(settings.database_url))


def _run(coro: object) -> None:
    """Run a coroutine; turn our own errors into one red line and exit code 1."""
    try:
        asyncio.run(coro)  # type: ignore[arg-type]
    except WcsError as exc:
        typer.secho(f"error: {exc}", fg="red", err=True)
        raise typer.Exit(1) from None
    except KeyboardInterrupt:
        raise typer.Exit(130) from None


@db_app.command("upgrade")
def db_upgrade(revision: str = typer.Argument("head", help="Target revision.")) -> None:
    """Create or migrate the schema to the latest revision."""
    from wcs.persistence.migrate import upgrade
    from wcs.persistence.readiness import describe, sqlite_path

    settings = _settings()
    path = sqlite_path(settings.database_url)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
    try:
        upgrade(settings.database_url, revision)
    except Exception as exc:  # the driver's errors, whatever they are: one line
        typer.secho(
            f"error: cannot migrate the {describe(settings.database_url)}: "
            f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}",
            fg="red",
            err=True,
        )
        raise typer.Exit(1) from None
    typer.echo(f"{describe(settings.database_url)} at revision {revision}")


async def _with_engine(url: str, work: Callable[[AsyncEngine], Awaitable[None]]) -> None:
    from sqlalchemy.exc import DBAPIError

    from wcs.persistence.db import make_engine

    engine = make_engine(url)
    try:
        await work(engine)
    except DBAPIError as exc:
        raise WcsError(
            f"database not ready ({type(exc.orig).__name__}); run `wcs db upgrade` first"
        ) from None
    finally:
        await engine.dispose()


@users_app.command("create")
def users_create(
    name: Annotated[str, typer.Option("--name", help="Who holds the token, e.g. 'van-12'.")],
    role: Annotated[
        list[str],
        typer.Option(
            "--role",
            help="A role (repeat for several): customer_service, supervisor, dispatcher, "
            "courier, after_sales, customer, device.",
        ),
    ],
    subject: Annotated[
        str | None,
        typer.Option(help="Whose data it may see: customer ref (customer), courier id (courier)."),
    ] = None,
    expires_days: ExpiresDays = None,
    never_expires: NeverExpires = False,
) -> None:
    """Issue a bearer token and print it. It is shown once; only its hash is stored."""
    from wcs.services.auth import issue_token

    settings = _settings()
    _ready(settings)
    ttl = _lifetime(settings, expires_days, never_expires)

    async def create(engine: AsyncEngine) -> None:
        token = await issue_token(engine, name, role, subject, ttl=ttl)
        typer.echo(token)
        typer.echo(
            f"token for {name!r} ({', '.join(sorted(set(role)))}), {_until(ttl)}; store it "
            "now, it cannot be shown again",
            err=True,
        )

    _run(_with_engine(settings.database_url, create))


ExpiresDays = Annotated[
    int | None,
    typer.Option(min=1, max=3650, help="Days the token works (default WCS_TOKEN_TTL_DAYS)."),
]
NeverExpires = Annotated[
    bool, typer.Option("--never-expires", help="A token without an end (revoke it by hand).")
]


def _lifetime(settings: Settings, days: int | None, never: bool) -> timedelta | None:
    if never and days is not None:
        typer.secho("error: --expires-days and --never-expires exclude each other", err=True)
        raise typer.Exit(2)
    return None if never else timedelta(days=days or settings.token_ttl_days)


def _until(ttl: timedelta | None) -> str:
    if ttl is None:
        return "never expires"
    return f"valid until {datetime.now(UTC) + ttl:%Y-%m-%d %H:%M} UTC"


@users_app.command("rotate")
def users_rotate(
    name: Annotated[str, typer.Option("--name", help="Whose tokens to replace.")],
    grace_minutes: Annotated[
        int,
        typer.Option(min=0, max=7 * 24 * 60, help="How long the old tokens keep working."),
    ] = 60,
    expires_days: ExpiresDays = None,
    never_expires: NeverExpires = False,
) -> None:
    """Issue a new token (same roles and subject) and end the old ones after a grace."""
    from wcs.services.auth import rotate_tokens

    settings = _settings()
    _ready(settings)
    ttl = _lifetime(settings, expires_days, never_expires)

    async def rotate(engine: AsyncEngine) -> None:
        done = await rotate_tokens(engine, name, grace=timedelta(minutes=grace_minutes), ttl=ttl)
        typer.echo(done.token)
        typer.echo(
            f"new token for {name!r}, {_until(ttl)}; the {done.old_tokens} old one(s) work "
            f"until {done.old_until:%Y-%m-%d %H:%M} UTC",
            err=True,
        )

    _run(_with_engine(settings.database_url, rotate))


@users_app.command("list")
def users_list(
    all_tokens: Annotated[
        bool, typer.Option("--all", help="Also the revoked and expired tokens.")
    ] = False,
) -> None:
    """Every active token: roles, subject, when it expires and when it was last used."""
    from wcs.services.auth import list_tokens

    settings = _settings()
    _ready(settings)

    def when(moment: datetime | None, none: str) -> str:
        return f"{moment:%Y-%m-%d %H:%M}" if moment is not None else none

    async def show(engine: AsyncEngine) -> None:
        now = datetime.now(UTC)
        rows = [("name", "roles", "subject", "state", "expires (UTC)", "last used (UTC)")]
        for t in await list_tokens(engine, include_ended=all_tokens):
            rows.append(
                (t.name, ",".join(t.roles), t.subject or "-", t.state(now),
                 when(t.expires_at, "never"), when(t.last_used_at, "never"))
            )  # fmt: skip
        widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
        for row in rows:
            typer.echo("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)))

    _run(_with_engine(settings.database_url, show))


@users_app.command("revoke")
def users_revoke(
    name: Annotated[str, typer.Option("--name", help="Whose tokens to revoke.")],
) -> None:
    """Revoke every active token of a user (API processes notice within 30 s)."""
    from wcs.services.auth import revoke_token

    settings = _settings()
    _ready(settings)

    async def revoke(engine: AsyncEngine) -> None:
        count = await revoke_token(engine, name)
        typer.echo(f"revoked {count} token(s) of {name!r}")

    _run(_with_engine(settings.database_url, revoke))


@app.command()
def api(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
    workers: Annotated[int, typer.Option(min=1, max=64, help="Worker processes.")] = 1,
) -> None:
    """Serve the REST API, the status page and /metrics."""
    import uvicorn

    # Fail fast on bad configuration or an unusable database, before forking workers.
    _ready(_settings())
    uvicorn.run(
        "api.app:app_from_env",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level="warning",
        # The server's loggers go through ours (redaction, no locals), not its own.
        log_config=None,
        access_log=False,
        # Longer than typical client and proxy pools keep idle connections, so the
        # server is not the side that closes one a client is about to reuse.
        timeout_keep_alive=75,
    )


@app.command()
def controller(
    floor: Annotated[
        Path | None, typer.Option("--floor", "-f", help="Floor file (devices and stations).")
    ] = None,
) -> None:
    """Run floor control: this instance takes its share of the floor's stations (leases),
    applies their device events, commands their devices. On SIGTERM it hands its
    stations over to the other instances."""
    from controller.runtime import run

    settings = _settings()
    _ready(settings)
    _run(run(settings, str(floor) if floor else None))


@app.command()
def drivers(floor: FloorOption) -> None:
    """Run the drivers of every device on the floor (device protocols <-> MQTT)."""
    from drivers.runner import run_floor
    from wcs.heap import settle

    settings = _settings()
    settle()  # the modules are loaded: they stay out of full collections
    _run(run_floor(floor, settings))


@app.command()
def sim(floor: FloorOption) -> None:
    """Run simulated devices for the floor, speaking their real wire protocols."""
    from device_sim.runner import run_floor

    settings = _settings()
    _run(run_floor(floor, settings))


@app.command("broker-config")
def broker_config(
    floor: FloorOption,
    out: Annotated[Path, typer.Option("--out", "-o", help="Directory for the broker's files.")],
    host: Annotated[str, typer.Option(help="Interface of the plain MQTT listener.")] = "0.0.0.0",
    port: Annotated[
        int, typer.Option(min=1, max=65535, help="Plain MQTT port of the services.")
    ] = 1883,
    device_port: Annotated[
        int,
        typer.Option(
            min=1, max=65535, help="Plain MQTT port of the devices (client id = account name)."
        ),
    ] = 1884,
    tls_cert: Annotated[
        Path | None, typer.Option(help="Server certificate (PEM): adds a TLS listener.")
    ] = None,
    tls_key: Annotated[Path | None, typer.Option(help="Private key of --tls-cert (PEM).")] = None,
    cafile: Annotated[
        Path | None, typer.Option(help="CA certificates that sign client certificates.")
    ] = None,
    tls_port: Annotated[
        int, typer.Option(min=1, max=65535, help="TLS MQTT port of the services.")
    ] = 8883,
    device_tls_port: Annotated[
        int, typer.Option(min=1, max=65535, help="TLS MQTT port of the devices.")
    ] = 8884,
    require_client_cert: Annotated[
        bool, typer.Option(help="TLS clients must present a certificate signed by --cafile.")
    ] = False,
    data_dir: Annotated[
        Path, typer.Option(help="Where the broker keeps persistent sessions.")
    ] = Path("/var/lib/mosquitto"),
    rotate: Annotated[bool, typer.Option(help="Issue new passwords for every account.")] = False,
    broker_user: Annotated[
        str,
        typer.Option(help="The user Mosquitto runs as: written as root, its files are theirs."),
    ] = "mosquitto",
) -> None:
    """Write a Mosquitto config with one account per device and per service, and ACLs.

    New passwords are printed once (as WCS_MQTT_URL values) and kept in
    credentials.json (mode 0600) in the output directory."""
    from wcs.broker_config import (
        BrokerOptions,
        Listener,
        TlsFiles,
        mqtt_url,
        write_broker_config,
    )
    from wcs.floor import load_floor

    if (tls_cert is None) != (tls_key is None):
        typer.secho("error: --tls-cert and --tls-key go together", fg="red", err=True)
        raise typer.Exit(2)
    tls = (
        TlsFiles(
            tls_cert.resolve(),
            tls_key.resolve(),
            cafile.resolve() if cafile else None,
            require_client_cert,
        )
        if tls_cert is not None and tls_key is not None
        else None
    )
    options = BrokerOptions(
        listener=Listener(host, port),
        device_listener=Listener(host, device_port),
        tls=tls,
        tls_listener=Listener(host, tls_port),
        device_tls_listener=Listener(host, device_tls_port),
        persistence_dir=data_dir,
        broker_user=broker_user,
    )
    try:
        written = write_broker_config(load_floor(floor), out, options, rotate=rotate)
    except WcsError as exc:
        typer.secho(f"error: {exc}", fg="red", err=True)
        raise typer.Exit(1) from None
    url_host = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    for account in written.accounts:
        if account.username in written.new_accounts:
            at = device_port if account.role == "device" else port
            url = mqtt_url(account.username, written.passwords[account.username], url_host, at)
            typer.echo(f"{account.username}\t{url}")
    typer.echo(
        f"wrote {written.config} for {len(written.accounts)} accounts "
        f"({len(written.new_accounts)} new); passwords are in {written.secrets} (mode 0600). "
        f"Run: mosquitto -c {written.config}",
        err=True,
    )


@app.command("fake-carrier")
def fake_carrier(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8765,
    webhook_url: Annotated[
        str | None,
        typer.Option(help="Where tracking events are pushed; {shipment_id} is filled in."),
    ] = None,
    fail_next: Annotated[int, typer.Option(help="Answer the next N requests with 503.")] = 0,
    fail_rate: Annotated[float, typer.Option(help="Fail this fraction of requests.")] = 0.0,
    delay_next: Annotated[int, typer.Option(help="Delay the next N responses.")] = 0,
    delay_s: Annotated[float, typer.Option(help="Seconds each delayed response waits.")] = 0.0,
) -> None:
    """Run a fake parcel carrier (booking, tracking, signed webhooks, fault injection)."""
    from wcs.carriers.fake_server import FakeCarrierConfig, Faults, serve

    settings = _settings()
    config = FakeCarrierConfig(
        webhook_url=webhook_url,
        webhook_secret=settings.carrier_webhook_secret,
        faults=Faults(
            fail_next=fail_next, fail_rate=fail_rate, delay_next=delay_next, delay_s=delay_s
        ),
    )
    serve(config, host, port)


@app.command("demo")
def demo_command(
    orders: Annotated[int, typer.Option(min=1, max=5000, help="Orders the shop places.")] = 300,
    seed: Annotated[int, typer.Option(help="Same seed, same orders and same mistakes.")] = 1,
    speed: Annotated[
        float, typer.Option(min=1.0, max=1000.0, help="How many times faster people work.")
    ] = 60.0,
    serve: Annotated[
        bool, typer.Option(help="Keep everything running after the shift (status page).")
    ] = False,
    port: Annotated[
        int | None, typer.Option(min=1, max=65535, help="API port (default: a free one).")
    ] = None,
    db: Annotated[
        Path | None, typer.Option(help="SQLite file of the demo (default: {data_dir}/demo.db).")
    ] = None,
    keep: Annotated[bool, typer.Option(help="Keep the database of the last run.")] = False,
    floor: Annotated[
        Path | None, typer.Option("--floor", "-f", help="Floor file (default: the sample).")
    ] = None,
    mispick_pct: Annotated[
        float, typer.Option(min=0, max=100, help="% of pick tasks where a wrong unit is scanned.")
    ] = 3.0,
    short_pct: Annotated[
        float, typer.Option(min=0, max=100, help="% of pick visits finding damaged units.")
    ] = 2.0,
    mismatch_pct: Annotated[
        float, typer.Option(min=0, max=100, help="% of parcels weighed with something extra.")
    ] = 3.0,
    lost_pct: Annotated[
        float,
        typer.Option(min=0, max=100, help="% of shelves that lost units before the shift."),
    ] = 20.0,
    misplaced_pct: Annotated[
        float,
        typer.Option(min=0, max=100, help="% of shelves with units put away at another location."),
    ] = 10.0,
    counts: Annotated[
        bool,
        typer.Option(help="Cycle counts by rule (short pick, empty face, ABC schedule)."),
    ] = True,
) -> None:
    """Run a whole simulated shift on embedded defaults and print the KPIs."""
    from demo.shift import DEFAULT_FLOOR, DemoOptions, main
    from device_sim.scenario import Rates
    from device_sim.world import Drift

    options = DemoOptions(
        orders=orders,
        seed=seed,
        speed=speed,
        serve=serve,
        port=port,
        db_path=db if db is not None else _data_dir() / "demo.db",
        keep=keep,
        floor_path=floor or DEFAULT_FLOOR,
        rates=Rates(
            mispick=mispick_pct / 100, short=short_pct / 100, weight_mismatch=mismatch_pct / 100
        ),
        drift=Drift(lost=lost_pct / 100, misplaced=misplaced_pct / 100),
        counts=counts,
    )
    raise typer.Exit(main(options))


@app.command("bench")
def bench_command(
    only: Annotated[
        list[str] | None, typer.Argument(help="Benchmarks to run (default: all).")
    ] = None,
    quick: Annotated[bool, typer.Option(help="Small loads, for a smoke run.")] = False,
) -> None:
    """Run the benchmarks and print latency percentiles, throughput and ratios."""
    import os

    from bench.report import BenchOptions
    from bench.runner import run

    _settings()
    opts = BenchOptions(
        quick=quick,
        pg_url=os.environ.get("WCS_BENCH_PG_URL"),
        mqtt_url=os.environ.get("WCS_BENCH_MQTT_URL"),
    )
    run(opts, only or ())


docs_app = typer.Typer(help="Operator documentation generated from the code.", no_args_is_help=True)
app.add_typer(docs_app, name="docs")


@docs_app.command("generate")
def docs_generate(
    check: Annotated[
        bool, typer.Option(help="Only check that the committed pages are up to date.")
    ] = False,
) -> None:
    """Write docs/operations/alerts.md and states.md (run from the repository root)."""
    from wcs.docs import main

    raise typer.Exit(main(["--check"] if check else []))


@app.command()
def notify() -> None:
    """Run the customer notifier on its own (e-mail, SMS webhook) until interrupted.

    The API process runs one too unless WCS_NOTIFY__ENABLED=false; only one sends.
    """
    from wcs.notify.worker import run_standalone

    settings = _settings()
    _ready(settings)
    _run(run_standalone(settings))


@app.command()
def report(
    start: Annotated[str, typer.Option("--from", help="First day, YYYY-MM-DD (UTC).")],
    end: Annotated[str, typer.Option("--to", help="Last day, YYYY-MM-DD (UTC), included.")],
    out: Annotated[
        Path | None,
        typer.Option("--out", help="Directory for the HTML and PDF (default: {data_dir}/reports)."),
    ] = None,
    lang: Annotated[str, typer.Option("--lang", help="a served language: en, zh-CN (zh).")] = "en",
) -> None:
    """Write the periodic review (KPI trends, worst stages, alerts, feedback) as HTML and PDF."""
    from datetime import date

    from wcs.i18n.catalogues import offered
    from wcs.i18n.negotiation import match
    from wcs.report.data import review_data
    from wcs.report.fonts import missing_font
    from wcs.report.render import write_review

    served = match(lang)
    if served is None:
        typer.secho(f"--lang must be one of {', '.join(offered())}", fg="red", err=True)
        raise typer.Exit(2)
    lang = served
    problem = missing_font(lang)
    if problem is not None:
        typer.secho(f"error: {problem}", fg="red", err=True)
        raise typer.Exit(2)
    try:
        first, last = date.fromisoformat(start), date.fromisoformat(end)
    except ValueError:
        typer.secho("--from and --to take dates like 2026-11-01", fg="red", err=True)
        raise typer.Exit(2) from None
    settings = _settings()
    _ready(settings)
    folder = out if out is not None else settings.data_dir / "reports"

    async def build(engine: AsyncEngine) -> None:
        html, pdf = write_review(await review_data(engine, first, last), folder, lang)
        typer.echo(f"wrote {html}")
        typer.echo(f"wrote {pdf}")

    _run(_with_engine(settings.database_url, build))


@app.command("config-reference")
def config_reference(
    out: Annotated[
        Path | None, typer.Option(help="Write here instead of printing (docs/configuration.md).")
    ] = None,
) -> None:
    """Print the reference of every WCS_* environment variable with its default."""
    from wcs.settings_doc import render

    text = render()
    if out is None:
        typer.echo(text, nl=False)
    else:
        out.write_text(text, encoding="utf-8")
        typer.echo(f"wrote {out}")
