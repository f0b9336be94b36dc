"""Settings from flags and the environment: a flag wins over a variable, a variable over a default."""
import math
import os
from dataclasses import dataclass

DEFAULT_MODEL = "gpt-4o"
# USD per million tokens: (input, cached input, output), as the providers listed them in 2025.
# Prices move: NANOCODER_PRICE="input,cached,output" overrides, and unknown models show no cost.
PRICES = {"gpt-4o": (2.5, 1.25, 10), "gpt-4o-mini": (0.15, 0.075, 0.6), "gpt-4.1": (2, 0.5, 8),
          "gpt-4.1-mini": (0.4, 0.1, 1.6), "deepseek-chat": (0.28, 0.028, 0.42), "kimi-k2": (0.6, 0.15, 2.5)}


class ConfigError(Exception):
    """A setting that cannot be used, said in one line."""


@dataclass
class Config:
    model: str = DEFAULT_MODEL
    api_key: str | None = None
    base_url: str | None = None
    max_tokens: int | None = None
    temperature: float | None = None
    max_context: int | None = None
    timeout: float | None = None  # seconds a provider may stay silent, mid-stream too
    max_turns: int | None = None  # rounds of tool calls in one turn; None: no cap
    price: tuple | None = None  # from NANOCODER_PRICE; else PRICES by model name

    @classmethod
    def load(cls, model=None, api_key=None, base_url=None, max_turns=None, env=None) -> "Config":
        env = os.environ if env is None else env
        return cls(
            model=model or env.get("NANOCODER_MODEL") or DEFAULT_MODEL,
            api_key=api_key or env.get("OPENAI_API_KEY") or None,
            base_url=base_url or env.get("OPENAI_BASE_URL") or None,
            max_tokens=_number(env, "NANOCODER_MAX_TOKENS", int),
            temperature=_number(env, "NANOCODER_TEMPERATURE", float, low=0),
            max_context=_number(env, "NANOCODER_MAX_CONTEXT", int, low=2000),
            timeout=_number(env, "NANOCODER_TIMEOUT", float),
            max_turns=max_turns or _number(env, "NANOCODER_MAX_TURNS", int),
            price=_price(env.get("NANOCODER_PRICE", "")),
        )


def cost(usage, model: str, price=None) -> float | None:
    """What the tokens so far cost in USD, if a price is known for the model."""
    price = price or PRICES.get(model.rsplit("/", 1)[-1])  # "openai/gpt-4o" on OpenRouter
    if not price:
        return None
    fresh = usage.prompt_tokens - usage.cached_tokens
    return (fresh * price[0] + usage.cached_tokens * price[1] + usage.completion_tokens * price[2]) / 1e6


def _price(raw: str):
    if not raw.strip():
        return None
    try:
        price = tuple(float(x) for x in raw.split(","))
    except ValueError:
        price = ()
    if len(price) != 3 or not all(math.isfinite(x) and x >= 0 for x in price):
        raise ConfigError(f"NANOCODER_PRICE={raw!r} must be three numbers: "
                          "input,cached,output (USD per million)")
    return price


def _number(env, name, kind, low=None):
    """A positive number (or one >= low), or None if unset; anything else is one clear line."""
    raw = env.get(name, "").strip()
    if not raw:
        return None
    try:
        value = kind(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not a {'whole ' if kind is int else ''}number") from None
    if not math.isfinite(value):
        raise ConfigError(f"{name}={raw!r} must be a finite number")
    if low is not None and value < low:
        raise ConfigError(f"{name}={raw!r} must be at least {low:,}")
    if low is None and value <= 0:
        raise ConfigError(f"{name}={raw!r} must be positive")
    return value
