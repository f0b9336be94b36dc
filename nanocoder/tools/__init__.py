"""The tool registry: what an agent may call. Built-ins, a library user's own tools and (later) MCP tools
register alike: a maker builds the tool for one agent (and its sub-agents, each with its own `cd`)."""
from dataclasses import dataclass
from typing import Callable

from .agent import AgentTool
from .bash import BashTool
from .edit import EditFileTool
from .files import ReadFileTool, WriteFileTool
from .search import GlobTool, GrepTool
from .todo import TodoWriteTool


@dataclass(frozen=True)
class Entry:
    name: str
    make: Callable  # make(workspace, spawn) -> the tool, or None where it cannot be made


class Registry:
    def __init__(self, entries=()):
        self.entries: dict[str, Entry] = {entry.name: entry for entry in entries}

    def add(self, name: str, make: Callable) -> None:
        """Register a tool maker; one of a name already taken replaces it (a custom tool over a built-in)."""
        self.entries[name] = Entry(name, make)

    def add_tool(self, tool) -> None:
        """Register one tool object, shared by every agent given this registry (its sub-agents too)."""
        self.add(tool.name, lambda workspace, spawn: tool)

    def copy(self) -> "Registry":
        return Registry(self.entries.values())

    def build(self, workspace, spawn=None) -> dict:
        """The tools, by name, for an agent on this workspace; spawn makes its sub-agents (None: none)."""
        made = {name: entry.make(workspace, spawn) for name, entry in self.entries.items()}
        return {name: tool for name, tool in made.items() if tool is not None}


def _on_workspace(tool_class):
    return lambda workspace, spawn: tool_class(workspace)


def builtins() -> Registry:
    """The built-in tools, fresh for each agent around its own Workspace."""
    tools = Registry(Entry(tool.name, _on_workspace(tool)) for tool in (
        BashTool, ReadFileTool, WriteFileTool, EditFileTool, GlobTool, GrepTool, TodoWriteTool))
    # no spawn (a sub-agent at the depth limit): no agent tool
    tools.add(AgentTool.name, lambda workspace, spawn: AgentTool(spawn) if spawn else None)
    return tools
