"""Settings from flags and the environment: a flag wins over a variable, a variable over a default."""
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

    @classmethod
    def load(cls, model=None, api_key=None, base_url=None, env=None) -> "Config":
        env = os.environ if env is None else env
        return cls(
            model=model or env.get("NANOCODER_MODEL") or DEFAULT_MODEL,
            api_key=api_key or env.get("OPENAI_API_KEY") or None,
            base_url=base_url or env.get("OPENAI_BASE_URL") or None,
            max_tokens=_number(env, "NANOCODER_MAX_TOKENS", int),
            temperature=_number(env, "NANOCODER_TEMPERATURE", float),
            max_context=_number(env, "NANOCODER_MAX_CONTEXT", int),
            timeout=_number(env, "NANOCODER_TIMEOUT", float),
        )


def _number(env, name, kind):
    raw = env.get(name, "").strip()
    if not raw:
        return None
    try:
        value = kind(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not a {'whole ' if kind is int else ''}number") from None
    if value < 0 or (kind is int and value == 0):
        raise ConfigError(f"{name}={raw!r} must be positive")
    return value
