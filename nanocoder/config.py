"""Settings: flags win over the environment, the environment over ~/.nanocoder/settings.json, that over the
defaults. Each is checked, with one line if wrong. A project's .env is not read: a key kept in the workspace
is one that commands and the model can read, and a file that commands can write must not steer nanocoder."""
import json
import math
import os
import re
from dataclasses import dataclass
from pathlib import Path

DEFAULT_MODEL = "gpt-4o"
PROVIDERS = {"openai": ("OPENAI_API_KEY", "OPENAI_BASE_URL", DEFAULT_MODEL),  # its key, its URL, its default
             "anthropic": ("ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL", "claude-sonnet-4-5")}


MAX_TIMEOUT = 86_400  # seconds; a larger timeout overflows the socket layer's clock
SETTINGS_KEYS = ("model", "provider", "base_url", "api_key_env")
ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class ConfigError(Exception):
    """A setting that cannot be used, said in one line."""


@dataclass
class Config:
    model: str = DEFAULT_MODEL
    provider: str = "openai"  # which API family: the adapter app.make_model picks
    api_key: str | None = None
    base_url: str | None = None
    max_tokens: int | None = None
    temperature: float | None = None
    max_context: int | None = None
    timeout: float | None = None  # seconds a provider may stay silent, mid-stream too
    max_turns: int | None = None  # rounds of tool calls in one turn; None: no cap
    api_key_env: str = "OPENAI_API_KEY"  # where the key was looked for (settings.json may name another)
    auth_token: str | None = None  # anthropic without a key: ANTHROPIC_AUTH_TOKEN, sent as a bearer token

    @classmethod
    def load(cls, model=None, api_key=None, base_url=None, max_turns=None, env=None, *,
             settings=None, provider=None) -> "Config":
        """From the flags given (None: not given), env, and settings.json's content (read_settings)."""
        env = os.environ if env is None else env
        chosen = settings or {}
        if model is not None:  # given, so checked: `-m ""` is no way to ask for the default
            check_model(model, "-m")
        if max_turns is not None and max_turns < 1:
            raise ConfigError(f"--max-turns {max_turns} must be at least 1 (leave it out for no cap)")
        model = model or env.get("NANOCODER_MODEL") or chosen.get("model")
        # named, else told by the model's name, else OpenAI-compatible (the most common API)
        provider = (provider or env.get("NANOCODER_PROVIDER") or chosen.get("provider")
                    or ("anthropic" if (model or "").startswith("claude-") else "openai"))
        if provider not in PROVIDERS:
            raise ConfigError(f"--provider / NANOCODER_PROVIDER {provider!r} is not one of: "
                              + ", ".join(PROVIDERS))
        key, url, default = PROVIDERS[provider]  # the variables the provider's own SDK reads
        key_env = chosen.get("api_key_env") or key
        api_key = api_key or env.get(key_env) or None
        token = env.get("ANTHROPIC_AUTH_TOKEN") if provider == "anthropic" and not api_key else None
        return cls(
            model=check_model(model or default, "-m / NANOCODER_MODEL"),
            api_key=_text(f"--api-key / {key_env}", api_key, ascii=True),
            auth_token=_text("ANTHROPIC_AUTH_TOKEN", token or None, ascii=True),
            base_url=_url(base_url or env.get(url) or chosen.get("base_url") or None, f"--base-url / {url}"),
            max_tokens=_number(env, "NANOCODER_MAX_TOKENS", int),
            temperature=_number(env, "NANOCODER_TEMPERATURE", float, low=0),
            max_context=_number(env, "NANOCODER_MAX_CONTEXT", int, low=2000),
            timeout=_number(env, "NANOCODER_TIMEOUT", float, high=MAX_TIMEOUT),
            max_turns=max_turns or _number(env, "NANOCODER_MAX_TURNS", int),
            provider=provider, api_key_env=key_env,
        )


def check_model(name, where: str) -> str:
    """A model name a request can carry: some text, without spaces or control characters."""
    if isinstance(name, str) and _text(where, name) and all(c.isprintable() and c != " " for c in name):
        return name
    raise ConfigError(f"{where} {name!r} is not a model name (some text, without spaces or control "
                      "characters, such as gpt-4o)")


def read_settings(path: Path, notes: list) -> dict:
    """settings.json's content, checked ({} if there is none): a value of the wrong kind is an error, an
    unknown key (a typo) a line added to notes."""
    try:
        settings = json.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, NotADirectoryError):
        return {}
    except (OSError, ValueError) as e:
        raise ConfigError(f"{path} is unreadable ({e})") from None
    if not isinstance(settings, dict):
        raise ConfigError(f"{path} must hold a JSON object, such as {{\"model\": \"gpt-4o\"}}")
    where = "settings.json"
    if "hooks" in settings:  # a PreToolUse hook may be someone's guard: refuse rather than run without it
        raise ConfigError(f"{path}: hooks are no longer supported; remove \"hooks\" (none of them would run)")
    for key, value in settings.items():
        if key not in SETTINGS_KEYS:
            notes.append(f"{where}: unknown key {key!r} ignored (known: {', '.join(SETTINGS_KEYS)})")
        elif key == "model":
            check_model(value, f'{where}: "model"')
        elif key in ("provider", "base_url", "api_key_env") and not isinstance(value, str):
            raise ConfigError(f'{where}: "{key}" must be a string, not {type(value).__name__}')
        elif key == "provider" and value not in PROVIDERS:
            raise ConfigError(f'{where}: "provider" {value!r} is not one of {", ".join(PROVIDERS)}')
        elif key == "base_url":
            _url(value, f'{where}: "base_url"')
        elif key == "api_key_env" and not ENV_NAME.fullmatch(value):
            raise ConfigError(f'{where}: "api_key_env" {value!r} is not the name of an environment '
                              "variable (the key itself is never stored here)")
    return settings


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
