"""nanocoder: a minimal AI coding agent for the terminal."""
__version__ = "0.1.0"
__all__ = ("Agent", "LLM", "Tool", "__version__")
LAZY = {"Agent": ".agent", "LLM": ".llm", "Tool": ".tools.base"}  # name -> the module that defines it


def __getattr__(name):
    # Lazy, so `nanocoder --version` and `import nanocoder` stay instant (no openai, no rich).
    if name not in LAZY:
        raise AttributeError(f"module 'nanocoder' has no attribute {name!r}")
    from importlib import import_module
    return getattr(import_module(LAZY[name], __name__), name)
