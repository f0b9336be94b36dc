"""The built-in tools, made fresh for each agent around its own Workspace."""


def builtin_tools(workspace, parent=None) -> list:
    """parent: the Agent that may start sub-agents; None gives none (sub-agents get none)."""
    # Imported here so that `nanocoder.tools.base` (used by sessions) does not pull in every tool.
    from .agent import AgentTool
    from .bash import BashTool
    from .edit import EditFileTool
    from .files import ReadFileTool, WriteFileTool
    from .search import GlobTool, GrepTool
    tools = [BashTool(workspace), ReadFileTool(workspace), WriteFileTool(workspace),
             EditFileTool(workspace), GlobTool(workspace), GrepTool(workspace)]
    return tools + [AgentTool(parent)] if parent else tools
