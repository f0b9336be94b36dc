"""The built-in tools, made fresh for each agent around its own Workspace."""
from .agent import AgentTool
from .bash import BashTool
from .edit import EditFileTool
from .files import ReadFileTool, WriteFileTool
from .search import GlobTool, GrepTool


def builtin_tools(workspace, spawn=None) -> list:
    """spawn: makes a sub-agent for the agent tool; None gives no agent tool (sub-agents get none)."""
    tools = [tool(workspace)
             for tool in (BashTool, ReadFileTool, WriteFileTool, EditFileTool, GlobTool, GrepTool)]
    return tools + [AgentTool(spawn)] if spawn else tools
