"""Who decides whether a tool call runs. Each tool says what a call would do (Tool.permission): read, edit in
the workspace, run something, write outside it where commands may write too (the temp folder, caches), write
elsewhere, touch a protected file (.git internals, start-up files, keys: asked every time) or something
forbidden (`rm -rf ~`: denied, even with --yes). A mode allows the kinds ALLOWED lists for it, asks for the
rest; "always" remembers the scope a call states (its key) for the session, protected calls excepted."""
from pathlib import Path

MODES = ("ask", "edits", "yes", "plan")
READ, EDIT, RUN, OUTSIDE, PROTECTED, FORBIDDEN = "read", "edit", "run", "outside", "protected", "forbidden"
ELSEWHERE = "elsewhere"  # a write where no sandboxed command could write: asked even under --yes
# plan: reading; a write of any kind is refused (Calls._permit), commands run read-only (Workspace.policy)
ALLOWED = {"ask": {READ}, "edits": {READ, EDIT}, "yes": {READ, EDIT, RUN, OUTSIDE}, "plan": {READ}}
# Under HOME: files and folders whose contents run at login, at a shell's or a tool's start
SHELL_FILES = (".bashrc", ".bash_profile", ".bash_login", ".bash_logout", ".bash_aliases", ".profile",
               ".zshrc", ".zshenv", ".zprofile", ".zlogin", ".zlogout", ".config/fish", ".xprofile",
               ".xsessionrc", ".xinitrc", ".pam_environment", ".config/environment.d", ".config/autostart",
               ".config/systemd/user", ".gitconfig", ".config/git", ".config/direnv", ".tmux.conf", ".vimrc",
               ".config/nvim", ".emacs", ".emacs.d", ".npmrc", ".cargo/env", ".cargo/config.toml",
               ".ipython/profile_default/startup")
# what nanocoder puts in the prompt itself: the model may read it (still asked before writing there)
SHARED = (".nanocoder/AGENTS.md",)
UNREADABLE = (".ssh", ".aws", ".gnupg", ".config/gh", ".netrc", ".docker/config.json", ".kube", ".nanocoder")


class Permissions:
    def __init__(self, mode: str = "ask"):
        if mode not in MODES:  # later changes come from /mode, which offers MODES only
            raise ValueError(f"unknown permission mode {mode!r}; choose one of {', '.join(MODES)}")
        self.mode = mode
        self.always: set[str] = set()  # keys from Tool.permission, approved for the session

    def check(self, kind: str, key: str) -> str:
        """"allow", "ask" or "deny" for a call of this kind, remembered under key."""
        if kind == FORBIDDEN:
            return "deny"
        return "allow" if kind in ALLOWED[self.mode] or (kind != PROTECTED and key in self.always) else "ask"


def secrets(home: Path | None = None) -> list[Path]:
    """Where keys and credentials live (and nanocoder's settings and sessions)."""
    home = (home or Path.home()).resolve()
    return [home / name for name in UNREADABLE]


def read_kind(path: Path, home: Path | None = None) -> tuple[str, str]:
    """What reading this (resolved) path means: (READ, "") but for keys and credentials."""
    if any(path.is_relative_to((home or Path.home()).resolve() / name) for name in SHARED):
        return READ, ""
    if held := [s for s in secrets(home) if path.is_relative_to(s)]:
        return PROTECTED, f"{path} holds keys or credentials ({held[0]})"
    return READ, ""


def path_kind(path: Path, root: Path, home: Path | None = None, writable=()) -> tuple[str, str]:
    """What writing this (resolved) path means: (EDIT, "") inside the workspace, else why not. writable: the
    folders (resolved) the workspace-write policy lets commands write; --yes writes there too, no further."""
    home = (home or Path.home()).resolve()
    if ".git" in (part.lower() for part in path.parts):  # .git/config, a .git file, .GIT on macOS
        return PROTECTED, f"{path} is git's own data (hooks and config there run programs)"
    if any(path.is_relative_to(home / name) for name in SHELL_FILES + UNREADABLE):
        return PROTECTED, f"{path} runs at login or at a tool's start, or holds keys or nanocoder's settings"
    if path.is_relative_to(root):
        return EDIT, ""
    if any(path.is_relative_to(folder) for folder in writable):
        return OUTSIDE, f"{path} is outside the workspace {root}"
    return ELSEWHERE, f"{path} is outside the workspace {root}, where no command may write either"
