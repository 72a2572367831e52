"""What one unit of a vendor's ``amount``/``qty`` is worth: base units, or contracts of a known size.

Liqscope stores ``qty`` in base units, ``price`` and ``notional_usd`` (see the
project conventions). Tardis.dev passes each exchange's own size field through
unchanged -- its normalized data types document ``amount`` as "trade amount as
provided by exchange" (https://docs.tardis.dev/tardis-machine/tardis-machine-output-data-types),
and its liquidations are built by the tardis-node mappers
(https://github.com/tardis-dev/tardis-node/tree/master/src/mappers), e.g. OKX
``amount: Number(okexLiquidation.sz)``, Huobi ``amount: huobiLiquidation.volume``,
BitMEX ``amount: bitmexLiquidation.leavesQty``. So the unit is the exchange's,
and it is only converted where the exchange documents it. Everything else is
refused with a message asking for ``--contract-size`` -- a wrong guess would
scale every bar of that symbol.

:func:`tardis_unit` classifies one (Tardis exchange id, symbol);
:class:`ContractSizes` is what the user states instead (``--contract-size``);
:func:`resolve` combines the two into ``(inverse, size)`` or a one-line reason.
"""
from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from .symbols import asset_from_symbol, binance_coinm_usd

LINEAR, INVERSE = "linear", "inverse"

# -- documentation the table below relies on ---------------------------------------
BINANCE_USDM = ("Binance, USDⓈ-Margined Futures Contract Specifications: \"BTC/USDT, ETH/USDT, and BCH/USDT "
                "Futures contracts represent only one unit of its respective base asset\" (https://www.binance.com/"
                "en/support/faq/usd%E2%93%A2-margined-futures-contract-specifications-360033161972)")
BINANCE_COINM = ("Binance, Coin-Margined Futures Contract Specifications: BTC contracts 100 USD, altcoin contracts "
                 "10 USD (https://www.binance.com/en/support/faq/a4470430e3164c13932be8967961aede)")
BYBIT_USDT = ("Bybit, Introduction to USDT Perpetual Contract: \"Contracts quoted in base currency such as BTC, "
              "ETH\" (https://www.bybit.com/en/help-center/article/"
              "Introduction-to-USDT-Perpetual-ContractUSDT_Perpetual_UTA)")
BYBIT_USDC = ("Bybit, Introduction to USDC Perpetual Contract: BTC-PERP \"Contract Size 1 BTC\"; USDC futures "
              "\"work similarly\" "
              "(https://help.bybit.com/hc/en-us/articles/4431487551769-Introduction-to-USDC-Perpetual-Contract)")
BYBIT_INVERSE = ("Bybit, Introduction to Inverse Perpetual Contract: \"Contract quantity quoted in USD\", \"1 USD per "
                 "Contract\" (https://www.bybit.com/en/help-center/article/What-is-Inverse-Contract)")
BYBIT_INVERSE_FUTURES = ("Bybit, Introduction to Inverse Futures Contracts: \"the contract value is calculated in "
                         "USD equivalent\", \"Contract Size: 1 contract is worth 1 USD\" (https://www.bybit.com/en/"
                         "help-center/article/What-are-Bybit-Futures-Contracts)")
OKX_SZ = ("OKX API v5, liquidation-orders channel: sz \"For FUTURES/SWAP, the unit is contract\" "
          "(https://www.okx.com/docs-v5/en/#public-data-websocket-liquidation-orders-channel)")
OKX_SWAP = ("OKX, Perpetual swaps: BTCUSD-PERP \"Contract Size 100USD\", BTCUSDT-PERP \"Contract Size 0.01BTC\" "
            "(https://www.okx.com/help/7053456733325); futures the same (https://www.okx.com/help/7053702553613)")
HUOBI_VOLUME = ("Huobi DM API, liquidation_orders: volume \"liquidated volume(cont)\" "
                "(https://huobiapi.github.io/docs/dm/v1/en/#subscribe-liquidation-order-data-no-authentication-sub)")
HUOBI_SWAP = ("Huobi, Coin-margined Swaps Specifications: face value (cont) BTC 100 USD, ETH 10 USD "
              "(https://www.huobi.com/support/en-us/detail/900000106046/)")
HUOBI_FUTURES = ("Huobi, Fundamental Elements of Coin-margined Futures: face value BTC 100 USD, ETH 10 USD (copy at "
                 "http://huobi-register.com/en/issues/item/3975.html; launch notice: \"The face value of a BTC "
                 "contract is $100\", https://coinstelegram.com/news/huobi-global-launches-platform-for-"
                 "cryptocurrency-derivatives)")
DERIBIT = ("Deribit API, trades: amount \"For perpetual and inverse futures the amount is in USD units. For options "
           "and linear futures it is the underlying base currency coin.\" (https://docs.deribit.com/)")
BITMEX = ("BitMEX, Inverse Perpetuals / Inverse Futures guides: XBT contracts \"Multiplier 1 USD\", \"USD Contract "
          "Value 1 USD\" (https://www.bitmex.com/app/inversePerpetualsGuide, "
          "https://www.bitmex.com/app/inverseFuturesGuide)")
KRAKEN_INVERSE = ("Kraken Futures, Inverse Fixed Maturity / Perpetual Contract Specifications: \"Contract Size & "
                  "Minimum Order 1 USD\" (https://support.kraken.com/hc/en-us/articles/360022632172, "
                  "https://support.cryptofacilities.com/hc/en-us/articles/360008643453)")
KRAKEN_LINEAR = ("Kraken MTF, Linear Contract Specifications: \"minimum lot expressed in units of the base currency. "
                 "These contracts do not currently have any multiplier\" "
                 "(https://support.mtf.kraken.com/hc/en-us/articles/25499987607837-Linear-Contract-Specifications)")


@dataclass(frozen=True)
class Unit:
    """What one ``amount`` of a symbol is.

    ``kind`` LINEAR: contracts of ``size`` base units (1.0 = plain base units);
    INVERSE: contracts of ``size`` USD; None: not documented. ``size`` None:
    contracts of a size Liqscope does not know. ``refuse``: no contract size
    can make the rows right (e.g. prices not in USD).
    """

    kind: str | None
    size: float | None
    source: str
    refuse: str | None = None


Rule = tuple[str, Callable[[re.Match], Unit]]


def _fixed(kind: str, size: float | None, source: str) -> Callable[[re.Match], Unit]:
    return lambda m: Unit(kind, size, source)


def _refuse(why: str) -> Callable[[re.Match], Unit]:
    return lambda m: Unit(None, None, why, refuse=why)


_FUT = r"[FGHJKMNQUVXZ]\d{2}"  # month code + year: BitMEX/Bybit dated futures (XBTZ23, BTCUSDH24)
_DATE = r"\d{1,2}[A-Z]{3}\d{2}"  # Deribit/Bybit dated futures (29MAR24)

# Per Tardis exchange id: (regex on the upper-cased symbol, unit); first match wins.
RULES: dict[str, list[Rule]] = {
    "binance-futures": [
        (r"[A-Z0-9]+(USDT|USDC|BUSD|FDUSD)(_\d{6})?", _fixed(LINEAR, 1.0, BINANCE_USDM)),
        (r".+", _refuse("not a USDⓈ-M symbol: its price is not in USD (e.g. BTC-margined ETHBTC)")),
    ],
    "binance-delivery": [
        (r"([A-Z0-9]+)USD_(PERP|\d{6})", lambda m: Unit(INVERSE, binance_coinm_usd(m.group(0)), BINANCE_COINM)),
    ],
    "bybit": [
        (r"[A-Z0-9]+USDT", _fixed(LINEAR, 1.0, BYBIT_USDT)),
        (rf"[A-Z0-9]+-?PERP|[A-Z0-9]+-{_DATE}", _fixed(LINEAR, 1.0, BYBIT_USDC)),
        (r"[A-Z0-9]+USD", _fixed(INVERSE, 1.0, BYBIT_INVERSE)),
        (rf"[A-Z0-9]+USD({_FUT}|\d{{4}})", _fixed(INVERSE, 1.0, BYBIT_INVERSE_FUTURES)),  # BTCUSDZ25, BTCUSD0326
    ],
    "okex-swap": [
        (r"BTC-USDT-SWAP", _fixed(LINEAR, 0.01, f"{OKX_SZ}; {OKX_SWAP}")),
        (r"BTC-USD-SWAP", _fixed(INVERSE, 100.0, f"{OKX_SZ}; {OKX_SWAP}")),
        (r"[A-Z0-9]+-(USDT|USDC)-SWAP", _fixed(LINEAR, None, OKX_SZ)),
        (r"[A-Z0-9]+-USD-SWAP", _fixed(INVERSE, None, OKX_SZ)),
    ],
    "okex-futures": [
        (r"BTC-USDT-\d{6}", _fixed(LINEAR, 0.01, f"{OKX_SZ}; {OKX_SWAP}")),
        (r"BTC-USD-\d{6}", _fixed(INVERSE, 100.0, f"{OKX_SZ}; {OKX_SWAP}")),
        (r"[A-Z0-9]+-(USDT|USDC)-\d{6}", _fixed(LINEAR, None, OKX_SZ)),
        (r"[A-Z0-9]+-USD-\d{6}", _fixed(INVERSE, None, OKX_SZ)),
    ],
    "huobi-dm-swap": [
        (r"BTC-USD", _fixed(INVERSE, 100.0, f"{HUOBI_VOLUME}; {HUOBI_SWAP}")),
        (r"ETH-USD", _fixed(INVERSE, 10.0, f"{HUOBI_VOLUME}; {HUOBI_SWAP}")),
        (r"[A-Z0-9]+-USD", _fixed(INVERSE, None, HUOBI_VOLUME)),
    ],
    "huobi-dm": [
        # the alias (BTC_CQ) or the contract code of the same futures (BTC250627)
        (r"BTC(_(CW|NW|CQ|NQ)|\d{6})", _fixed(INVERSE, 100.0, f"{HUOBI_VOLUME}; {HUOBI_FUTURES}")),
        (r"ETH(_(CW|NW|CQ|NQ)|\d{6})", _fixed(INVERSE, 10.0, f"{HUOBI_VOLUME}; {HUOBI_FUTURES}")),
        (r"[A-Z0-9]+(_(CW|NW|CQ|NQ)|\d{6})", _fixed(INVERSE, None, HUOBI_VOLUME)),
    ],
    "huobi-dm-linear-swap": [
        (r"[A-Z0-9]+-(USDT|USDC)(-\d{6})?", _fixed(LINEAR, None, HUOBI_VOLUME)),
    ],
    "deribit": [
        (rf"[A-Z]+-(PERPETUAL|{_DATE})", _fixed(INVERSE, 1.0, DERIBIT)),
        (rf"[A-Z]+_[A-Z]+-(PERPETUAL|{_DATE})", _fixed(LINEAR, 1.0, DERIBIT)),
        (r".+-[CP]", _refuse("an option: its price is quoted in the coin, not USD")),
    ],
    "bitmex": [
        (rf"XBTUSD|XBT{_FUT}", _fixed(INVERSE, 1.0, BITMEX)),
    ],
    "cryptofacilities": [
        (r"(PI|FI)_[A-Z0-9]+USD(_\d{6})?", _fixed(INVERSE, 1.0, KRAKEN_INVERSE)),
        (r"(PF|FF)_[A-Z0-9]+USD(_\d{6})?", _fixed(LINEAR, 1.0, KRAKEN_LINEAR)),
    ],
}
RULES["kraken-futures"] = RULES["cryptofacilities"]
_COMPILED = {ex: [(re.compile(rx), unit) for rx, unit in rules] for ex, rules in RULES.items()}

# Venues whose liquidation size unit Liqscope could not establish from documentation.
UNDOCUMENTED = {
    "bitfinex-derivatives": "Bitfinex documents the liquidation AMOUNT as \"Size of the position\", without a unit",
    "dydx-v4": "dYdX's own documentation does not state the unit of the indexer trade size",
    "ftx": "FTX's documentation (offline since 2022) could not be checked for the unit of size",
}


def tardis_unit(exchange_id: str, symbol: str) -> Unit:
    """The documented meaning of ``amount`` for one Tardis (exchange, symbol)."""
    ex, sym = str(exchange_id).strip().lower(), str(symbol).strip().upper()
    for rx, unit in _COMPILED.get(ex, []):
        m = rx.fullmatch(sym)
        if m:
            return unit(m)
    if ex in UNDOCUMENTED:
        return Unit(None, None, UNDOCUMENTED[ex])
    if ex in _COMPILED:
        return Unit(None, None, f"no documented contract size for {ex} symbol {sym}")
    return Unit(None, None, f"Liqscope has no documented meaning of amount for exchange {ex!r}")


# -- what the user states: --contract-size -----------------------------------------
@dataclass(frozen=True)
class Size:
    """A stated contract size: base units per contract, or USD per contract (``inverse``)."""

    value: float
    inverse: bool = False

    def __str__(self) -> str:
        return f"{self.value:g}usd" if self.inverse else f"{self.value:g}"


@dataclass(frozen=True)
class ContractSizes:
    """``--contract-size``: one size for every symbol whose size is unknown, and/or sizes per symbol."""

    default: Size | None = None
    by_symbol: Mapping[str, Size] = field(default_factory=dict)

    def get(self, symbol: str) -> tuple[Size | None, bool]:
        """(size, named): the size stated for ``symbol`` by name, else the single default."""
        named = self.by_symbol.get(str(symbol).strip().upper())
        return (named, True) if named is not None else (self.default, False)

    def __bool__(self) -> bool:
        return self.default is not None or bool(self.by_symbol)


HELP = ("N = base units per contract (e.g. ETH-USDT-SWAP=0.1); Nusd = USD per contract for inverse contracts "
        "(e.g. XRP-USD-SWAP=10usd)")


def _size(text) -> Size:
    """One stated size; the ``usd`` suffix is the only way to say "inverse" -- units are never inferred."""
    if isinstance(text, Size):
        return text
    if isinstance(text, bool):
        raise ValueError(f"bad contract size {text!r}")
    if isinstance(text, (int, float)):
        value, inverse = float(text), False
    else:
        s = str(text).strip().lower().replace(" ", "")
        inverse = s.endswith("usd")
        s = s[:-3] if inverse else s
        try:
            value = float(s)
        except ValueError:
            raise ValueError(f"bad contract size {str(text).strip()!r}: {HELP}") from None
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"contract size {str(text).strip()!r} must be a positive finite number")
    return Size(value, inverse)


def parse_contract_sizes(spec) -> ContractSizes | None:
    """``"0.01"``, ``"100usd"``, ``"BTC-USDT-SWAP=0.01,XRP-USD-SWAP=10usd"``, a list of those, a number or a dict."""
    if spec is None or isinstance(spec, ContractSizes):
        return spec or None
    default: Size | None = None
    by_symbol: dict[str, Size] = {}
    if isinstance(spec, Mapping):
        items = [(str(k), v) for k, v in spec.items()]
    elif isinstance(spec, (int, float, Size)):
        items = [(None, spec)]
    else:
        items = []
        for part in ",".join([spec] if isinstance(spec, str) else [str(s) for s in spec]).split(","):
            if part.strip():
                k, _, v = part.rpartition("=")
                items.append((k if "=" in part else None, v))
    for key, value in items:
        if key is None:
            if default is not None:
                raise ValueError("more than one contract size without a symbol: give SYMBOL=N for each")
            default = _size(value)
            continue
        sym = key.strip().upper()
        if not sym:
            raise ValueError(f"contract size {str(value).strip()!r} needs a symbol before '='")
        by_symbol[sym] = _size(value)
    sizes = ContractSizes(default, by_symbol)
    return sizes or None


def resolve(unit: Unit, exchange: str, symbol: str, sizes: ContractSizes | None) -> tuple[bool, float, str] | str:
    """``(inverse, size, note)`` for one symbol, or a one-line reason to refuse it.

    A size stated for the symbol by name wins over the documented one (the note
    says so when they differ); the single default only fills unknown sizes.
    """
    if unit.refuse:
        return f"{exchange} symbol {symbol} is {unit.refuse}; Liqscope cannot convert it (remove these rows)"
    stated, named = sizes.get(symbol) if sizes else (None, False)
    if stated is not None and (named or unit.size is None):
        if unit.kind == INVERSE and not stated.inverse:
            return (f"{exchange} {symbol} is an inverse contract: give its size in USD per contract, "
                    f"e.g. --contract-size {symbol}={stated.value:g}usd")
        if unit.kind == LINEAR and stated.inverse:
            return (f"{exchange} {symbol} is a linear contract: give its size in base units "
                    f"({asset_from_symbol(symbol, exchange)}) per contract, e.g. "
                    f"--contract-size {symbol}={stated.value:g}")
        note = ""
        if unit.size is not None and unit.kind is not None and stated.value != unit.size:
            note = f"{symbol}: contract size {stated} given, documented {Size(unit.size, unit.kind == INVERSE)}"
        return stated.inverse, stated.value, note
    if unit.kind is not None and unit.size is not None:
        return unit.kind == INVERSE, unit.size, ""
    if unit.kind == LINEAR:
        need = f"{symbol}=N, N = {asset_from_symbol(symbol, exchange)} per contract"
        what = "amount is in contracts of a size Liqscope does not know"
    elif unit.kind == INVERSE:
        need = f"{symbol}=Nusd, N = USD per contract"
        what = "amount is in inverse contracts of a USD value Liqscope does not know"
    else:
        need = (f"{symbol}=N (N = base units per contract; 1 if amount is already in base units) "
                f"or {symbol}=Nusd (N = USD per inverse contract)")
        what = f"the unit of amount is not documented ({unit.source})"
    return f"{exchange} symbol {symbol}: {what}; pass --contract-size {need} (import_files(contract_size=...))"
