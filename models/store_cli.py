"""``liqscope import FILE...`` and ``liqscope store info|delete|check``: the store from a terminal."""
from __future__ import annotations

import json
import sys

from .cli import UsageError
from .timeutil import format_time


def register(sub) -> None:
    from .importers import FORMATS, SIDE_CONVENTIONS

    p = sub.add_parser(
        "import", help="import exchange or vendor files into the local store",
        description="Import CSV/Parquet files (plain, .gz or .zip) into the local store. The format is "
                    "detected from the header; re-importing a file adds nothing. All files land together "
                    "or not at all.")
    p.add_argument("files", nargs="+", metavar="FILE", help="CSV or Parquet file, plain, .gz or .zip")
    p.add_argument("--format", choices=["auto", *FORMATS], default="auto",
                   help="file format (default auto: detected from the header)")
    p.add_argument("--exchange", metavar="X", help="exchange name (overrides the file's)")
    p.add_argument("--symbol", metavar="S", help="symbol, when the file name does not tell it")
    p.add_argument("--interval", metavar="I", help="candle interval for generic candle files, e.g. 1m")
    p.add_argument("--map", action="append", dest="mapping", metavar="FIELD=COLUMN,...",
                   help="generic files: which column holds each field, e.g. ts=time,side=dir,price=px,qty=size "
                        "(qty in base units; see --contract-size)")
    p.add_argument("--side-convention", choices=SIDE_CONVENTIONS,
                   help="generic files: side names the liquidated position, or the liquidation order")
    p.add_argument("--contract-size", action="append", dest="contract_size", metavar="SYMBOL=N[usd],...",
                   help="size of one contract, for amounts given in contracts whose size Liqscope does not know "
                        "(it refuses them otherwise) or to override it: N = base units per contract "
                        "(ETH-USDT-SWAP=0.1), Nusd = USD per inverse contract (XRP-USD-SWAP=10usd); a value "
                        "without SYMBOL= applies to every symbol of unknown size. Generic files: qty is base units "
                        "unless a contract size is given for its symbol")
    p.add_argument("--progress", choices=["auto", "always", "never"], default="auto",
                   help="progress bar on stderr (auto: when stderr is a terminal)")
    from .series_import import add_arguments as add_series_arguments

    add_series_arguments(p)  # --series NAME [--time-column C] [--value-column V...] [--unit U]
    p.set_defaults(func=cmd_import)

    s = sub.add_parser("store", help="what the local store holds",
                       description="The local store (--data-dir / LIQSCOPE_DATA_DIR).")
    ssub = s.add_subparsers(dest="store_command", metavar="ACTION")
    i = ssub.add_parser("info", help="rows and time span per kind, exchange, symbol and interval")
    i.add_argument("--json", action="store_true", help="print JSON lines")
    i.set_defaults(func=cmd_store_info)
    d = ssub.add_parser(
        "delete", help="delete stored liquidations of an exchange in a time range (preview first)",
        description="Delete the stored liquidations of one exchange (optionally only some symbols) with "
                    "START <= ts < END, e.g. rows stored with a wrong unit. First prints what would go (rows and "
                    "USD per exchange and symbol); deletes only with --yes, or after answering y when stdin is a "
                    "terminal. All or nothing: an interrupted delete leaves the store as it was.")
    d.add_argument("--exchange", required=True, metavar="X", help="exchange whose rows to delete")
    d.add_argument("--symbol", action="append", dest="symbols", metavar="S",
                   help="only this symbol, as stored (repeatable; default: every symbol of the exchange)")
    d.add_argument("--start", required=True, metavar="TIME", help="range start, ISO-8601 UTC (inclusive)")
    d.add_argument("--end", required=True, metavar="TIME", help="range end, ISO-8601 UTC (exclusive)")
    d.add_argument("--yes", action="store_true", help="delete without asking (otherwise only a preview, or a "
                                                      "y/N question on a terminal)")
    d.set_defaults(func=cmd_store_delete)
    c = ssub.add_parser(
        "check", help="read every store file in full; find (and move aside) damaged ones",
        description="Read every data file the tables list in full -- footer, schema, every row group -- and print "
                    "each damaged one (missing, truncated, empty, not Parquet, wrong schema, row count unlike the "
                    "table log) with what is wrong. Delta files carry no page checksums, so a value changed "
                    "inside a page is not seen. Exit status 0 when all are good, 1 when something is damaged.")
    c.add_argument("--quarantine", action="store_true",
                   help="move damaged files into <store>/quarantine/<time>/ (inside the store; nothing is deleted) "
                        "and repair the tables' logs (Delta FSCK), so the store reads again")
    c.add_argument("--rebuild", action="store_true",
                   help="with --quarantine (implied): replay the live recorder's journal for quarantined "
                        "liquidation months it still holds")
    c.set_defaults(func=cmd_store_check)
    m = ssub.add_parser("migrate", help="convert a schema-1 store to Delta tables (done on first open too)",
                        description="Convert a store written by Liqscope 0.1 (schema 1) to Delta tables, verified "
                                    "(same rows and totals per exchange and month) before it switches over; the old "
                                    "files are kept in <store>/schema1.")
    m.set_defaults(func=cmd_store_migrate)
    pr = ssub.add_parser("prefer", help="which source is counted where several cover the same time",
                         description="Set the source precedence: e.g. `liqscope store prefer binance-ws tardis` "
                                     "counts the live recording before Tardis files. Patterns like 'file:*' work; "
                                     "sources not named keep the default order after these.")
    pr.add_argument("sources", nargs="+", metavar="SOURCE")
    pr.set_defaults(func=cmd_store_prefer)
    k = ssub.add_parser("compact", help="compact small files, checkpoint and vacuum the store's tables",
                        description="Fold each partition's small files into larger ones (Delta OPTIMIZE; the rows "
                                    "stay the same), write a checkpoint of each table's log, recompute the rollups "
                                    "of compacted partitions, and delete data files that left the tables more than "
                                    "--retention-hours ago (readers of older snapshots keep theirs). The recorder "
                                    "does this in the background.")
    k.add_argument("--retention-hours", type=int, default=1, metavar="H",
                   help="keep files removed less than H hours ago (default 1)")
    k.add_argument("--no-vacuum", action="store_true", help="delete no files")
    k.set_defaults(func=cmd_store_compact)
    r = ssub.add_parser("rebuild-rollups", help="recompute stale liquidation and candle rollups",
                        description="Recompute every rollup partition whose fingerprint no longer matches its raw "
                                    "files (after a crash between a commit and its rollup, or an outside compaction).")
    r.set_defaults(func=cmd_store_rebuild_rollups)
    s.set_defaults(func=lambda args: (_ for _ in ()).throw(
        UsageError("store needs an action: info, delete, check, migrate, prefer, compact, rebuild-rollups")))


def cmd_import(args) -> int:
    if args.series is not None or args.time_column or args.value_columns or args.unit:
        if args.series is None:
            raise UsageError("--time-column, --value-column and --unit apply with --series NAME")
        from .series_import import cmd_import_series  # outside series (ETF flows, Fear & Greed, ...)
        return cmd_import_series(args)
    from .importers import ImportCancelled, InputError, import_files
    from .progress import terminal_task
    from .store import StoreError, open_store

    show = args.progress == "always" or (args.progress == "auto" and sys.stderr.isatty())
    # No bar wanted: no task either, so nothing (not even 'reading FILE' lines) is printed.
    task = terminal_task("importing", unit="B", enabled=True) if show else None
    try:
        store = open_store()
        reports = import_files(args.files, store=store, fmt=None if args.format == "auto" else args.format,
                               exchange=args.exchange, symbol=args.symbol, interval=args.interval,
                               mapping=args.mapping, side_convention=args.side_convention,
                               contract_size=args.contract_size, task=task)
    except (InputError, StoreError, ImportCancelled) as exc:
        if getattr(exc, "committed", False):  # failed after the commit point: not 'unchanged'
            raise
        raise UsageError(f"{exc} (store unchanged)") from None
    finally:
        if task is not None and task.last is not None and task.last.done < task.last.total:
            print(file=sys.stderr)  # stopped mid-bar: what follows starts on its own line
    for r in reports:
        for w in r.warnings:
            print(f"liqscope: warning: {r.path}: {w}", file=sys.stderr)
        print(r.summary())
    return 0


def cmd_store_info(args) -> int:
    from .store import StoreError, open_store

    try:
        store = open_store()
        info = store.info()
    except StoreError as exc:
        raise UsageError(str(exc)) from None
    for note in store.notes:  # e.g. a damaged file it left out, one line each
        print(f"liqscope: warning: {note}", file=sys.stderr)
    if args.json:
        for rec in info.to_dict("records"):
            print(json.dumps({k: _jsonable(v) for k, v in rec.items()}, allow_nan=False))
        return 0
    print(f"Store: {store.root} (schema {store.schema_version or '-'})")
    if info.empty:
        print("empty: import files with `liqscope import FILE...`")
        return 0
    print(f"{'kind':<13}{'exchange':<14}{'symbol':<18}{'interval':<9}{'rows':>12}  {'first (UTC)':<26}{'last (UTC)'}")
    for r in info.itertuples(index=False):
        print(f"{r.kind:<13}{r.exchange:<14}{_s(r.symbol):<18}{_s(r.interval):<9}{r.rows:>12,}  "
              f"{_t(r.first):<26}{_t(r.last)}")
    sources = store.source_info()
    if len(sources):
        print()
        print("Sources (one count per event: where sources overlap, the first in the precedence is counted; "
              "`liqscope store prefer` changes it)")
        print(f"{'exchange':<14}{'source':<30}{'rank':>5}{'rows':>12}{'counted':>12}  {'first (UTC)':<26}{'last (UTC)'}")
        for r in sources.itertuples(index=False):
            print(f"{r.exchange:<14}{r.source:<30}{r.rank:>5}{r.rows:>12,}{int(r.counted):>12,}  "
                  f"{_t(r.first):<26}{_t(r.last)}")
    return 0


def cmd_store_migrate(args) -> int:
    from .progress import terminal_task
    from .store import StoreError, open_store
    from .store.migrate import migrate

    try:
        store = open_store()
        if not store.needs_migration:
            print(f"the store at {store.root} is already schema {store.schema_version or '-'}: nothing to migrate")
            return 0
        migrate(store, terminal_task("migrating"))
    except StoreError as exc:
        raise UsageError(str(exc)) from None
    print(f"migrated {store.root} to Delta tables (schema {store.schema_version}); the old files are kept in "
          f"{store.root}/schema1 (delete it once you are happy)")
    return 0


def cmd_store_compact(args) -> int:
    from .store import StoreError, open_store
    from .store.maintenance import maintain

    if args.retention_hours < 0:
        raise UsageError("--retention-hours must be >= 0")
    try:
        store = open_store()
        store._require_current()
        reports = maintain(store.location, retention_hours=args.retention_hours, vacuum=not args.no_vacuum)
    except StoreError as exc:
        raise UsageError(str(exc)) from None
    for r in reports:
        line = (f"{r.table}: {r.files_before} -> {r.files_after} files, {len(r.compacted)} partitions compacted, "
                f"version {r.version}" + (" checkpointed" if r.checkpoint is not None else "")
                + (f", {r.vacuumed} old files deleted" if r.vacuumed else ""))
        print(line + "".join(f"\n  {r.table}: {e}" for e in r.errors))
    return 1 if any(r.errors for r in reports) else 0


def cmd_store_rebuild_rollups(args) -> int:
    from .store import StoreError, open_store

    try:
        n = open_store().rebuild_rollups()
    except StoreError as exc:
        raise UsageError(str(exc)) from None
    print(f"rebuilt {n} liquidation rollup partitions (candle rollups brought up to date too)")
    return 0


def cmd_store_prefer(args) -> int:
    from .store import StoreError, open_store

    try:
        store = open_store()
        store.set_precedence(args.sources)
    except StoreError as exc:
        raise UsageError(str(exc)) from None
    print("source precedence: " + " > ".join(store.precedence))
    return 0


def cmd_store_delete(args) -> int:
    from .schema import empty_liquidations
    from .store import Scope, open_store

    store = open_store()
    scope = Scope(args.exchange, [(args.start, args.end)], args.symbols)  # bad times: one-line SchemaError
    doomed = store.covered_liquidations(scope)
    what = f"{args.exchange.lower()}{' ' + ', '.join(args.symbols) if args.symbols else ''} from " \
           f"{_t(_pd_ts(scope.starts[0]))} to {_t(_pd_ts(scope.ends[-1]))} (UTC, end exclusive)"
    if not len(doomed):
        print(f"nothing stored for {what}: nothing to delete")
        return 0
    groups = doomed.groupby(["exchange", "symbol"], observed=True, sort=True)["notional_usd"].agg(["size", "sum"])
    print(f"to delete: {what}")
    print(f"{'exchange':<14}{'symbol':<22}{'rows':>12}  {'USD':>24}")
    for (ex, sym), r in groups.iterrows():
        print(f"{ex:<14}{sym:<22}{int(r['size']):>12,}  {r['sum']:>24,.2f}")
    print(f"{'total':<36}{len(doomed):>12,}  {doomed['notional_usd'].sum():>24,.2f}")
    if not args.yes and not _confirm(f"Delete these {len(doomed):,} rows? [y/N] "):
        print("nothing deleted (pass --yes to delete)", file=sys.stderr)
        return 0
    result = store.replace_liquidations(empty_liquidations(), exchanges=[args.exchange], start=args.start,
                                        end=args.end, symbols=args.symbols)
    print(f"deleted {result.removed:,} rows")
    return 0


def cmd_store_check(args) -> int:
    import shlex

    from .store import check as checking
    from .store import open_store

    store = open_store()
    moving = args.quarantine or args.rebuild
    result = checking.quarantine(store) if moving else checking.check(store)
    where = dict(result.moved)
    data_dir = f" --data-dir {shlex.quote(str(store.root))}" if args.data_dir else ""
    for d in result.damaged:
        print(f"{d.path}: damaged ({d.reason})")
        if d not in where:
            continue
        print(f"  moved to {where[d]}")
        days = _journal_days(store, d)
        if days is None:
            print(f"  {_refill_hint(d, data_dir)}")
        elif args.rebuild:
            res = _rebuild(store, d, *days)
            print(f"  rebuilt {d.exchange} {d.symbol} {days[0]} to {days[1]} from the recorder's journal: "
                  f"{res.events:,} liquidations ({res.new:,} new)")
        else:
            print(f"  the recorder's journal holds {days[0]} to {days[1]} of it: rebuild with `liqscope{data_dir} "
                  f"record --replay-journal --exchange {d.exchange} --since {days[0]} --until {days[1]} "
                  f"--symbols {shlex.quote(d.symbol)}` (or `liqscope{data_dir} store check --rebuild`)")
    n = f"{result.checked:,} file{'s' if result.checked != 1 else ''}"
    if not result.damaged:
        print(f"checked {n} in {store.root}: all good")
        return 0
    if moving:
        print(f"checked {n}: {len(result.damaged)} damaged, moved into {result.folder} (nothing deleted); "
              "the store reads again without them")
    else:
        print(f"checked {n}: {len(result.damaged)} damaged; `liqscope store check --quarantine` moves them into "
              f"{store.root / checking.QUARANTINE}/ (nothing is deleted)")
    return 1


def _journal_days(store, d) -> tuple[str, str] | None:
    """(first, last) UTC day of the quarantined liquidation month ``d`` that the live recorder's raw
    journal holds for its exchange; None (no journal, another kind, an exchange it does not record)."""
    import re

    from .connectors.journal import journal_files, journal_root
    from .connectors.parsers import EXCHANGES

    if d.kind != "liquidations" or d.exchange not in EXCHANGES or not d.month:
        return None
    days = []
    for p in journal_files(journal_root(store.root), d.exchange, f"{d.month}-01", f"{d.month}-31"):
        m = re.match(r"^(\d{4}-\d{2}-\d{2})\.jsonl", p.name)
        if m and m.group(1).startswith(d.month):
            days.append(m.group(1))
    return (min(days), max(days)) if days else None


def _rebuild(store, d, since: str, until: str):
    """Replay the recorder's journal for ``d``'s exchange and symbol over ``since``..``until`` (UTC days):
    what it holds replaces what the store holds there, as ``liqscope record --replay-journal`` does."""
    from .connectors.journal import journal_root, replay
    from .connectors.parsers import SymbolFilter

    return replay(store, journal_root(store.root), exchanges=[d.exchange], since=since, until=until,
                  keep=SymbolFilter([d.symbol]))


def _refill_hint(d, data_dir: str) -> str:
    """How to get a quarantined file's data back when no journal holds it."""
    import shlex

    if d.kind == "candles" and d.exchange in ("binance", "okx", "bybit") and d.month:
        import pandas as pd

        start = pd.Timestamp(f"{d.month}-01")
        end = (start + pd.offsets.MonthBegin(1)).strftime("%Y-%m-%d")
        return (f"fetch it again: `liqscope{data_dir} fetch candles --exchange {d.exchange} "
                f"--symbol {shlex.quote(d.symbol)} --interval {d.interval} --start {start:%Y-%m-%d} --end {end}`")
    if d.kind == "gaps":
        return ("it held the recorder's disconnections; `liqscope record --replay-journal` re-adds those "
                "its journal holds")
    return "no recorder journal holds it: import its files again (`liqscope import FILE...`)"


def _confirm(question: str) -> bool:
    """y/N on a terminal; no terminal (a script, a pipe): no."""
    if not sys.stdin.isatty():
        return False
    try:
        return input(question).strip().lower() in ("y", "yes")
    except EOFError:
        return False


def _pd_ts(us):
    """A :class:`~liqscope.models.store.Scope` bound (microseconds, as the store keeps time)."""
    import pandas as pd

    return pd.Timestamp(int(us), unit="us", tz="UTC")


def _s(v) -> str:
    return "-" if v is None or v != v else str(v)


def _t(v) -> str:
    return "-" if v is None or v != v else format_time(v, "iso_ms")


def _jsonable(v):
    """A JSON value: None for missing (None, NaN, NaT); never NaN or Infinity (invalid JSON)."""
    if v is None or v != v:
        return None
    if isinstance(v, float) and v in (float("inf"), float("-inf")):
        return None
    if hasattr(v, "isoformat"):
        return _t(v)
    if hasattr(v, "item"):
        return v.item()
    return v
