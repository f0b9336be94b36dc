"""nanocoder: a minimal AI coding agent for the terminal."""
__version__ = "0.1.0"
__all__ = ("Agent", "LLM", "Tool", "__version__")


def __getattr__(name):
    # Lazy, so `nanocoder --version` and `import nanocoder` stay instant (no openai, no rich).
    if name == "Agent":
        from .agent import Agent
        return Agent
    if name == "LLM":
        from .llm import LLM
        return LLM
    if name == "Tool":
        from .tools.base import Tool
        return Tool
    raise AttributeError(f"module 'nanocoder' has no attribute {name!r}")
