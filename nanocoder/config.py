"""Settings from flags and the environment: a flag wins over a variable, a variable over a default."""
import math
import os
from dataclasses import dataclass

DEFAULT_MODEL = "gpt-4o"
PROVIDERS = {"openai": ("OPENAI_API_KEY", "OPENAI_BASE_URL", DEFAULT_MODEL),  # its key, its URL, its default
             "anthropic": ("ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL", "claude-sonnet-4-5")}
# USD per million tokens: (input, cached input, output), as the providers listed them in 2025.
# Prices move: NANOCODER_PRICE="input,cached,output" overrides, and unknown models show no cost.
PRICES = {"gpt-4o": (2.5, 1.25, 10), "gpt-4o-mini": (0.15, 0.075, 0.6), "gpt-4.1": (2, 0.5, 8),
          "gpt-4.1-mini": (0.4, 0.1, 1.6), "deepseek-chat": (0.28, 0.028, 0.42), "kimi-k2": (0.6, 0.15, 2.5)}


MAX_TIMEOUT = 86_400  # seconds; a larger timeout overflows the socket layer's clock


class ConfigError(Exception):
    """A setting that cannot be used, said in one line."""


@dataclass
class Config:
    model: str = DEFAULT_MODEL
    provider: str = "openai"  # which API family: the adapter cli.make_model picks
    api_key: str | None = None
    base_url: str | None = None
    max_tokens: int | None = None
    temperature: float | None = None
    max_context: int | None = None
    timeout: float | None = None  # seconds a provider may stay silent, mid-stream too
    max_turns: int | None = None  # rounds of tool calls in one turn; None: no cap
    price: tuple | None = None  # from NANOCODER_PRICE; else PRICES by model name

    @classmethod
    def load(cls, model=None, api_key=None, base_url=None, max_turns=None, env=None,
             provider=None) -> "Config":
        env = os.environ if env is None else env
        model = model or env.get("NANOCODER_MODEL")
        # named, else told by the model's name, else OpenAI-compatible (the most common API)
        provider = provider or env.get("NANOCODER_PROVIDER") or (
            "anthropic" if (model or "").startswith("claude-") else "openai")
        if provider not in PROVIDERS:
            raise ConfigError(f"--provider / NANOCODER_PROVIDER {provider!r} is not one of: "
                              + ", ".join(PROVIDERS))
        key, url, default = PROVIDERS[provider]  # the variables the provider's own SDK reads
        return cls(
            model=_text("-m / NANOCODER_MODEL", model or default),
            provider=provider,
            api_key=_text(f"--api-key / {key}", api_key or env.get(key) or None, ascii=True),
            base_url=_url(base_url or env.get(url) or None, f"--base-url / {url}"),
            max_tokens=_number(env, "NANOCODER_MAX_TOKENS", int),
            temperature=_number(env, "NANOCODER_TEMPERATURE", float, low=0),
            max_context=_number(env, "NANOCODER_MAX_CONTEXT", int, low=2000),
            timeout=_number(env, "NANOCODER_TIMEOUT", float, high=MAX_TIMEOUT),
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


def _text(name, value, ascii=False):
    """value, if a request can carry it: bytes that are not UTF-8 (from argv or the environment) cannot."""
    if value is None:
        return None
    try:
        value.encode("ascii" if ascii else "utf-8")
    except UnicodeEncodeError:
        if ascii:  # a key is never shown
            raise ConfigError(f"{name} holds characters an API key cannot (it is ASCII)") from None
        shown = repr(os.fsencode(value))[2:-1][:80]  # the bytes as given, \xff for one that is not UTF-8
        raise ConfigError(f"{name} '{shown}' is not valid UTF-8") from None
    return value


def _url(url, name="--base-url / OPENAI_BASE_URL"):
    """An http(s) URL with a host (and a port that is a number), or one clear line."""
    if _text(name, url) is None:
        return None
    from urllib.parse import urlsplit  # here: the URL is rarely set, and --help stays fast
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 (reading it checks it)
    except ValueError as e:  # a port that is no number, an unclosed [ of an IPv6 address
        raise ConfigError(f"{name} {url!r} is not a valid URL ({e})") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"{name} {url!r} is not an http(s) URL with a host, "
                          "such as http://localhost:11434/v1")
    return url


def _number(env, name, kind, low=None, high=None):
    """A positive number (or one >= low, <= high), or None if unset; anything else is one clear line."""
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
    if high is not None and value > high:
        raise ConfigError(f"{name}={raw!r} must be at most {high:,}")
    return value
