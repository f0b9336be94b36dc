"""The agent tool: hand a sub-task to a fresh agent with its own, empty context.

Its first request holds only its own system prompt and the task, so a long search or a
noisy investigation never fills the parent's context; only the final answer comes back.
"""
from .base import Tool


class AgentTool(Tool):
    name = "agent"
    description = ("Give a self-contained task to a sub-agent with a fresh context and the same "
                   "file and shell tools. It cannot see this conversation, so say everything it "
                   "needs. Returns only its final answer. Good for searches and investigations "
                   "whose details you do not need to keep.")
    parameters = {"type": "object", "properties": {
        "task": {"type": "string", "description": "The complete task description."}},
        "required": ["task"]}
    read_only = True  # the sub-agent's own tools ask for approval where needed

    def __init__(self, parent):
        self.parent = parent
        self.running = []

    def execute(self, task: str) -> str:
        from ..agent import Agent  # here, because agent.py imports this package
        p = self.parent
        sub = Agent(p.llm, callbacks=_Quiet(p.callbacks), cwd=p.workspace.cwd,
                    max_context=p.context.window, sub_agents=False, usage=p.usage,
                    permissions=p.permissions)  # an "always" or a mode switch counts for both
        sub.workspace.root = p.workspace.root  # the parent's `cd` does not move what counts as inside
        self.running.append(sub)
        try:
            answer = sub.chat(task)
        finally:
            self.running.remove(sub)
        return answer or "(the sub-agent gave no answer)"

    def cancel(self):
        for sub in list(self.running):
            sub.cancel()


class _Quiet:
    """Shows the parent's user what the sub-agent does with tools, but not its streamed text."""
    def __init__(self, parent):
        self.parent = parent

    def text(self, chunk): pass
    def reasoning(self, chunk): pass
    def notice(self, message): self.parent.notice(f"sub-agent {message}")
    def retry(self, message): self.parent.retry(f"sub-agent: {message}")
    def tool_start(self, name, args): self.parent.tool_start(name, args, depth=1)
    def tool_end(self, name, args, result): self.parent.tool_end(name, args, result, depth=1)
    def approve(self, name, args, why="", preview=""): return self.parent.approve(name, args, why, preview)
