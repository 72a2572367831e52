"""Exchange names, the asset each venue's symbols trade, and Binance COIN-M contract sizes.

**Assets.** Every venue spells its instruments its own way; :func:`known_asset`
reads the schemes below (first match wins) and returns the base asset, with
``XBT`` read as ``BTC`` (BitMEX, Kraken, KuCoin):

============================  =================================================  =========
venue                         symbols                                            asset
============================  =================================================  =========
Kraken Futures (Tardis        ``PI_XBTUSD``, ``PF_ETHUSD``, ``FI_XBTUSD_250627``,  BTC, ETH
``cryptofacilities``)         ``FF_XBTUSD_250627`` (prefix + base + quote)
Bitfinex derivatives          ``BTCF0:USTF0``                                    BTC
Deribit                       ``BTC-PERPETUAL``, ``ETH-27JUN25``,                 BTC, ETH
                              ``BTC_USDC-PERPETUAL``, options ``BTC-27JUN25-…-C``
FTX, Coinbase Intl, Bybit     ``BTC-PERP``, ``BTC-0625``, ``BTC-27JUN25``         BTC
OKX, Huobi, dYdX              ``BTC-USD-SWAP``, ``BTC-USDT-250627``, ``BTC-USD``  BTC
Huobi coin-margined futures   ``BTC_CW``/``NW``/``CQ``/``NQ``, ``BTC250627``      BTC
Binance COIN-M, dated USDⓈ-M  ``BTCUSD_PERP``, ``BTCUSD_250627``,                BTC
                              ``BTCUSDT_250627``
Gate                          ``BTC_USDT``                                       BTC
KuCoin futures                ``XBTUSDTM``, ``XBTUSDM`` (exchange given only)     BTC
Bybit USDC perpetuals         ``BTCPERP``                                        BTC
Binance, Bybit, BitMEX, …     ``BTCUSDT``, ``BTCUSD``, ``XBTUSD``, ``XBTUSDT``,   BTC
                              dated ``BTCUSDZ25``, ``BTCUSD0326``
BitMEX dated                  ``XBTZ25``, ``XBTM25`` (no quote; BitMEX or no      BTC
                              exchange given)
unified (ccxt)                ``BTC/USDT:USDT``, ``BTC/USD:BTC-250627``          BTC
============================  =================================================  =========

**Multiplier symbols** (``1000PEPEUSDT``, ``1000000MOGUSDT``, ``1MBABYDOGEUSDT``;
Bybit's ``SHIB1000USDT``) trade a unit of many coins: Binance's price for
``1000PEPEUSDT`` is USD per 1000 PEPE and its quantity counts those units.
Their asset is that unit -- ``1000PEPE`` (Bybit's suffix form is written the
same way, ``1000SHIB``), as the candle fetcher (ccxt's base ``1000PEPE``) and
the live recorder name it -- so price and qty stay exactly as the exchange
quotes them, ``price x qty`` is the USD notional, qty is in base units *of that
asset*, and markers sit on that symbol's candles. Totals of ``1000PEPE`` and
``PEPE`` (another venue's 1-coin contract) are separate rows: Liqscope never
rescales one venue's prices onto another's.

**Unknown schemes** are not cut apart: :func:`known_asset` returns None and
:func:`asset_from_symbol` returns the whole symbol (``LIGHTER`` market ``1``
stays ``1``), never a piece of it that looks like a coin (``PI_XBTUSD`` is not
asset ``PI``). Importers say so in a warning (:func:`unknown_asset_note`).

Binance COIN-M -- "the contract multiplier for BTC coin-margined contracts is
100 USD ... altcoin contracts have a multiplier of 10 USD" (Binance FAQ,
"Coin-Margined Futures Contract Specifications",
https://www.binance.com/en/support/faq/a4470430e3164c13932be8967961aede).
Other venues' contract sizes, for Tardis files, are in :mod:`.contracts`.
"""
from __future__ import annotations

import re
from collections.abc import Iterable

ALIASES = {"XBT": "BTC"}

# Tardis.dev exchange ids -> Liqscope exchange names
TARDIS_EXCHANGES = {
    "binance-futures": "binance", "binance-delivery": "binance", "binance": "binance-spot",
    "okex-swap": "okx", "okex-futures": "okx", "okex": "okx", "bybit": "bybit", "bitmex": "bitmex",
    "deribit": "deribit", "huobi-dm-swap": "huobi", "huobi-dm-linear-swap": "huobi", "huobi-dm": "huobi",
    "bitfinex-derivatives": "bitfinex", "gate-io-futures": "gate", "kucoin-futures": "kucoin",
    "bitget-futures": "bitget", "cryptofacilities": "kraken", "kraken-futures": "kraken",
    "ftx": "ftx", "phemex": "phemex", "dydx": "dydx", "dydx-v4": "dydx", "hyperliquid": "hyperliquid",
    "coinbase-international": "coinbase", "aster-futures": "aster", "lighter": "lighter",
}

_COINM = re.compile(r"^([A-Z0-9]+)USD_(PERP|\d{6})$")

_USD = "USDT|USDC|USD|BUSD|FDUSD"
_MONTH = r"[FGHJKMNQUVXZ]\d{2}"           # month code + year: BitMEX/Bybit dated futures (XBTZ25, BTCUSDH25)
_DMY = r"\d{1,2}[A-Z]{3}\d{2}"            # Deribit/Bybit dated futures (27JUN25)
_OPTION = r"(?:-\d+(?:[.D]\d+)?-[CP])?"   # an option's strike and type (BTC-27JUN25-100000-C, XRP_USDC-…-0d625-C)
# Quotes glued to the base (BTCUSDT) are ambiguous when one quote ends another (XB+TUSD or XBT+USD?
# BN+BUSD or BNB+USD?), so each venue family reads only the quotes it lists: Binance never quotes
# in plain USD on the venues Tardis records (COIN-M is BTCUSD_PERP), the others never in TUSD/BUSD/FDUSD.
BINANCE_QUOTES = ("USDT", "USDC", "BUSD", "FDUSD", "TUSD", "USDE", "DAI", "EUR", "TRY", "BTC", "ETH", "BNB")
OTHER_QUOTES = ("USDT", "USDC", "USD", "EUR", "GBP", "BTC", "ETH")


def _schemes(glued: tuple[str, ...]) -> list[tuple[str, re.Pattern, frozenset | None]]:
    """(scheme, regex with a 'base' group, the only exchanges it applies to or None) for one quote family."""
    q = "|".join(glued)
    return [(name, re.compile(rx), venues) for name, rx, venues in [
        ("unified BASE/QUOTE[:SETTLE] (ccxt)", r"(?P<base>[A-Z0-9]+)/[A-Z0-9]+(?::[A-Z0-9]+)?(?:-[A-Z0-9.-]+)?", None),
        ("Kraken Futures", r"(?:PI|PF|FI|FF)_(?P<base>[A-Z0-9]+?)(?:USD|USDT|USDC|EUR|GBP)(?:_\d{6})?", None),
        ("Bitfinex derivatives", r"(?P<base>[A-Z0-9]+?)F0:[A-Z]+F0", None),
        ("dated/perpetual with '-'", rf"(?P<base>[A-Z0-9]+?)(?:_(?:{_USD}))?-(?:PERPETUAL|PERP|{_DMY}|\d{{4}}|"
                                     rf"\d{{8}}){_OPTION}", None),
        ("BASE-QUOTE[-SWAP|-YYMMDD]", rf"(?P<base>[A-Z0-9]+)-(?:{_USD}|EUR|GBP|BTC|ETH)(?:-(?:SWAP|PERP|\d{{6}}))?"
                                      rf"{_OPTION}", None),
        ("Huobi futures alias", r"(?P<base>[A-Z0-9]+)_(?:CW|NW|CQ|NQ)", None),
        ("BASEQUOTE_PERP|_YYMMDD", r"(?P<base>[A-Z0-9]+?)(?:USDT|USDC|USD)_(?:PERP|\d{6})", None),
        ("BASE_QUOTE", rf"(?P<base>[A-Z0-9]+)_(?:{_USD})(?:_\d{{8}})?", None),
        ("Huobi futures contract code", r"(?P<base>[A-Z]+)\d{6}", None),
        ("KuCoin futures", r"(?P<base>[A-Z0-9]+?)(?:USDT|USDC|USD)M", frozenset({"kucoin-futures", "kucoin"})),
        ("Bybit USDC perpetual", r"(?P<base>[A-Z0-9]+?)PERP", None),
        ("BASEQUOTE[month]", rf"(?P<base>[A-Z0-9]+?)(?:{q})(?:{_MONTH}|\d{{4}})?", None),
        ("BitMEX dated", rf"(?P<base>[A-Z0-9]+?){_MONTH}", frozenset({"bitmex"})),
    ]]


SCHEMES = {"binance": _schemes(BINANCE_QUOTES), "other": _schemes(OTHER_QUOTES)}
_SUFFIX_MULTIPLIER = re.compile(r"^(?P<coin>[A-Z]+?)(?P<times>10+)$")  # Bybit SHIB1000 -> 1000SHIB


def known_asset(symbol: str, exchange: str | None = None) -> str | None:
    """The base asset of ``symbol`` if it follows a scheme above, else None.

    ``exchange`` (a Tardis id or Liqscope exchange name; None when unknown)
    picks the quotes a glued symbol is read with (Binance's ``BTCBUSD`` is
    BTC/BUSD; elsewhere ``BNBUSD`` is BNB/USD) and enables the venue-only
    schemes (KuCoin's ``…M``; BitMEX's quote-less dated ``XBTZ25``, also read
    when no exchange is given).
    """
    s = str(symbol).strip().upper()
    ex = str(exchange).strip().lower() if exchange else None
    for _, rx, venues in SCHEMES["binance" if ex and ex.startswith("binance") else "other"]:
        if venues is not None and (ex not in venues if ex is not None else "bitmex" not in venues):
            continue
        m = rx.fullmatch(s)
        if m:
            return _normal(m.group("base"))
    return None


def _normal(base: str) -> str:
    m = _SUFFIX_MULTIPLIER.match(base)
    if m and len(m.group("times")) >= 3:
        base = m.group("times") + m.group("coin")
    return ALIASES.get(base, base)


def asset_from_symbol(symbol: str, exchange: str | None = None) -> str:
    """BTCUSDT, BTC-USDT-SWAP, BTCUSD_PERP, PI_XBTUSD, XBTZ25 -> BTC; 1000PEPEUSDT -> 1000PEPE.

    A symbol of no known scheme is its own asset (upper-cased), never a guessed part of it.
    """
    return known_asset(symbol, exchange) or str(symbol).strip().upper()


def unknown_asset_note(symbols: Iterable[str], hint: str = "") -> str | None:
    """The warning for symbols whose asset could not be read (None if there are none)."""
    names = sorted({str(s).strip().upper() for s in symbols})
    if not names:
        return None
    shown = ", ".join(names[:8]) + (f" and {len(names) - 8} more" if len(names) > 8 else "")
    return (f"no known symbol scheme for {shown}: each is stored as its own asset, not counted under a coin"
            + (f" ({hint})" if hint else ""))


def tardis_exchange(exchange_id: str) -> str:
    e = str(exchange_id).strip().lower()
    return TARDIS_EXCHANGES.get(e, e.split("-", 1)[0])


def binance_coinm_usd(symbol: str) -> float | None:
    """USD per contract of a Binance COIN-M symbol (BTCUSD_PERP: 100, others 10), else None."""
    m = _COINM.match(str(symbol).strip().upper())
    if not m:
        return None
    return 100.0 if m.group(1) == "BTC" else 10.0
