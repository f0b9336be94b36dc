"""Settings from flags and the environment: a flag wins over a variable, a variable over a default."""
import math
import os
from dataclasses import dataclass

DEFAULT_MODEL = "gpt-4o"


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
        )


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
