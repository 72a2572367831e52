"""Exchange names and assets derived from exchange symbols, and Binance COIN-M contract sizes.

Binance COIN-M -- "the contract multiplier for BTC coin-margined contracts is
100 USD ... altcoin contracts have a multiplier of 10 USD" (Binance FAQ,
"Coin-Margined Futures Contract Specifications",
https://www.binance.com/en/support/faq/a4470430e3164c13932be8967961aede).
Other venues' contract sizes, for Tardis files, are in :mod:`.contracts`.
"""
from __future__ import annotations

import re

QUOTES = ("USDT", "USDC", "FDUSD", "BUSD", "TUSD", "USDE", "DAI", "USD", "EUR", "TRY", "BTC", "ETH", "BNB")
ALIASES = {"XBT": "BTC"}

# Tardis.dev exchange ids -> Liqscope exchange names
TARDIS_EXCHANGES = {
    "binance-futures": "binance", "binance-delivery": "binance", "binance": "binance-spot",
    "okex-swap": "okx", "okex-futures": "okx", "okex": "okx", "bybit": "bybit", "bitmex": "bitmex",
    "deribit": "deribit", "huobi-dm-swap": "huobi", "huobi-dm-linear-swap": "huobi", "huobi-dm": "huobi",
    "bitfinex-derivatives": "bitfinex", "gate-io-futures": "gate", "kucoin-futures": "kucoin",
    "bitget-futures": "bitget", "cryptofacilities": "kraken", "kraken-futures": "kraken",
    "ftx": "ftx", "phemex": "phemex", "dydx": "dydx", "hyperliquid": "hyperliquid", "coinbase-international": "coinbase",
}

_COINM = re.compile(r"^([A-Z0-9]+)USD_(PERP|\d{6})$")
_MULTIPLIER = re.compile(r"^1(?:0{2,})(?=[A-Z])")


def asset_from_symbol(symbol: str) -> str:
    """BTCUSDT, BTC-USDT-SWAP, BTCUSD_PERP, BTC-PERPETUAL, XBTUSD, 1000PEPEUSDT -> BTC ... PEPE."""
    s = re.split(r"[/\-_:]", str(symbol).strip().upper(), maxsplit=1)[0]
    for alias, real in ALIASES.items():  # XBTUSD: XBT + USD, not XB + TUSD
        if s.startswith(alias):
            return real
    for q in QUOTES:
        if s.endswith(q) and len(s) > len(q):
            s = s[: -len(q)]
            break
    s = _MULTIPLIER.sub("", s)
    return ALIASES.get(s, s)


def tardis_exchange(exchange_id: str) -> str:
    e = str(exchange_id).strip().lower()
    return TARDIS_EXCHANGES.get(e, e.split("-", 1)[0])


def binance_coinm_usd(symbol: str) -> float | None:
    """USD per contract of a Binance COIN-M symbol (BTCUSD_PERP: 100, others 10), else None."""
    m = _COINM.match(str(symbol).strip().upper())
    if not m:
        return None
    return 100.0 if m.group(1) == "BTC" else 10.0
