"""Exchange names, assets and contract sizes derived from exchange symbols.

Contract sizes (USD per contract) are only applied where they are documented:
Binance COIN-M -- "the contract multiplier for BTC coin-margined contracts is
100 USD ... altcoin contracts have a multiplier of 10 USD" (Binance FAQ,
"Coin-Margined Futures Contract Specifications",
https://www.binance.com/en/support/faq/a4470430e3164c13932be8967961aede);
Deribit inverse perpetuals/futures -- "for perpetual and inverse futures the
amount is in USD units" (Deribit API docs, ``amount``); BitMEX XBTUSD -- one
contract is 1 USD.
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


def inverse_usd_per_unit(tardis_exchange_id: str, symbol: str) -> float | None:
    """USD value of one ``amount`` unit for inverse contracts in Tardis data, else None (base units)."""
    ex, sym = str(tardis_exchange_id).lower(), str(symbol).upper()
    if ex == "binance-delivery":
        return binance_coinm_usd(sym)
    if ex == "deribit" and "_" not in sym and re.match(r"^[A-Z]+-(PERPETUAL|\d{1,2}[A-Z]{3}\d{2})$", sym):
        return 1.0
    if ex == "bitmex" and sym == "XBTUSD":
        return 1.0
    return None
