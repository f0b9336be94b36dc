"""The agent tool: hand a sub-task to a fresh agent, so a long search or a noisy investigation never fills the
parent's context; only the final answer comes back."""
from .base import Tool


class AgentTool(Tool):
    name = "agent"
    description = ("Give a self-contained task to a sub-agent with a fresh context and the same file "
                   "and shell tools. It cannot see this conversation, so say everything it needs. "
                   "Returns only its final answer. "
                   "Good for searches and investigations whose details you do not need to keep.")
    parameters = {"type": "object", "properties": {
        "task": {"type": "string", "description": "The complete task description."}},
        "required": ["task"]}
    read_only = True  # the sub-agent's own tools ask for approval where needed

    def __init__(self, spawn):
        self.spawn = spawn  # the parent's factory: no import of the agent module, so no cycle
        self.running = []

    def execute(self, task: str) -> str:
        sub = self.spawn()
        self.running.append(sub)
        try:
            return sub.chat(task) or "(the sub-agent gave no answer)"
        finally:
            self.running.remove(sub)

    def cancel(self):
        for sub in list(self.running):
            sub.cancel()
