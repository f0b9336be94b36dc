"""Landlock sandbox (Linux 5.13+, stdlib only) for nanocoder's commands. Not covered: named unix sockets,
UDP, reading.

nanocoder never restricts itself: it spawns
`python -I -S sandbox.py POLICY [-w DIR]... [-r PATH]... -- CMD...`, which restricts itself and execs CMD,
or prints one line and exits 126: a command never runs unsandboxed by accident. Sandbox.describe says what
each policy (Codex's names) enforces here. A private mount namespace, if one can be made, keeps modes,
owners, times (Landlock leaves them alone) and .git too; root keeps only Docker's default capabilities."""
import os
import struct
import sys
from functools import cached_property

POLICIES = ("read-only", "workspace-write", "off")
CACHES = (".cache", ".npm", ".cargo/registry", ".cargo/git", "go/pkg/mod")  # under HOME: pip, uv, go-build...
CREATE_RULESET, ADD_RULE, RESTRICT_SELF, NO_NEW_PRIVS = 444, 445, 446, 38
WRITE = 0x1FF2  # ABI 1: write_file, remove_dir/file, make_char/dir/reg/sock/fifo/block/sym
LATER = {2: 1 << 13, 3: 1 << 14, 5: 1 << 15}  # refer, truncate, ioctl_dev: from the ABI that has them
ON_FILES = 1 << 1 | 1 << 14 | 1 << 15  # the write rights a rule on a file (not a folder) may carry
NEWNS, NEWUSER, REC, PRIVATE, BIND, RECURSIVE = 0x20000, 0x10000000, 0x4000, 1 << 18, 4096, 0x8000
MOUNT_SETATTR, CAPBSET_READ, CAPBSET_DROP = 442, 23, 24
KEEP_CAPS = (0, 1, 3, 4, 5, 6, 7, 8, 10, 13, 18, 27, 29, 31)  # Docker's default set: no sys_admin, module...


def _c(function, *args) -> int:
    """Call a libc function, ints passed as C longs; raise OSError when it fails."""
    import ctypes  # here, so that importing nanocoder stays light
    call = getattr(ctypes.CDLL(None, use_errno=True), function)
    call.restype = ctypes.c_long
    if (result := call(*(ctypes.c_long(a) if isinstance(a, int) else a for a in args))) < 0:
        raise OSError(ctypes.get_errno(), os.strerror(ctypes.get_errno()))
    return result


def _read_only(path: bytes, yes: bool, flags=0):
    _c("syscall", MOUNT_SETATTR, -100, path, flags, struct.pack("=4Q", yes, not yes, 0, 0), 32)


def private_mounts(writable, readonly) -> bool:
    """Enter a private mount namespace, all read-only but `writable` (and `readonly` inside it); False if
    none here."""
    uid, gid = os.getuid(), os.getgid()
    try:
        try:
            _c("unshare", NEWNS)
        except OSError:  # without CAP_SYS_ADMIN: in a user namespace of one's own, as oneself
            _c("unshare", NEWNS | NEWUSER)
            for name, line in (("setgroups", "deny"), ("uid_map", f"{uid} {uid} 1"),
                               ("gid_map", f"{gid} {gid} 1")):
                with open(f"/proc/self/{name}", "w") as f:
                    f.write(line)
        _c("mount", None, b"/", None, REC | PRIVATE, None)
    except OSError:  # e.g. Ubuntu lets the namespace be made but not used
        return False
    _read_only(b"/", True, RECURSIVE)
    # each bound onto itself: a mount point cannot be renamed or removed
    for path, yes in [(p, False) for p in writable] + [(p, True) for p in readonly]:
        _c("mount", path.encode(), path.encode(), None, BIND | REC, None)
        _read_only(path.encode(), yes)
    os.chdir(os.getcwd())  # a cwd inside a new mount point would still be the folder beneath it
    return True


def drop_capabilities():
    """Without CAP_SYS_ADMIN root cannot undo the mounts (Landlock does not stop mount_setattr), load
    modules..."""
    with open("/proc/sys/kernel/cap_last_cap") as f:
        last = int(f.read())
    for cap in set(range(last + 1)) - set(KEEP_CAPS):
        if _c("prctl", CAPBSET_READ, cap, 0, 0, 0):
            _c("prctl", CAPBSET_DROP, cap, 0, 0, 0)


def restrict(policy, writable):
    """Landlock this process: the write rights the ABI has are denied but beneath `writable`."""
    abi = _c("syscall", CREATE_RULESET, None, 0, 1)
    fs = WRITE | sum(right for since, right in LATER.items() if abi >= since)
    net = 3 if policy == "read-only" and abi >= 4 else 0  # bind_tcp, connect_tcp
    # signals (both policies), abstract unix sockets
    scoped = (2 | (policy == "read-only")) if abi >= 6 else 0
    attr = struct.pack("=3Q", fs, net, scoped)[:8 * (1 if abi < 4 else 2 if abi < 6 else 3)]
    ruleset = _c("syscall", CREATE_RULESET, attr, len(attr), 0)
    for path in filter(os.path.exists, writable + ["/dev/null", "/dev/tty"]):
        rule = struct.pack("=Qi", fs if os.path.isdir(path) else fs & ON_FILES,
                           os.open(path, os.O_PATH | os.O_CLOEXEC))
        _c("syscall", ADD_RULE, ruleset, 1, rule, 0)  # the exec closes the path's fd, and the ruleset's
    _c("prctl", NO_NEW_PRIVS, 1, 0, 0, 0)
    _c("syscall", RESTRICT_SELF, ruleset, 0)


class Sandbox:
    """What the kernel here can enforce (probed once, on first use), and the argv that runs a command under a
    policy."""

    @cached_property
    def _landlock(self) -> tuple[int, str | None]:
        if sys.platform != "linux":
            return 0, f"Landlock needs Linux, this is {sys.platform}"
        try:
            return _c("syscall", CREATE_RULESET, None, 0, 1), None  # the ABI version
        except OSError as e:
            return 0, {38: "the kernel is too old for Landlock (5.13+)", 95: "Landlock is off in this kernel"
                       }.get(e.errno, f"Landlock is blocked here ({e.strerror})")

    @property
    def abi(self) -> int:
        """The Landlock ABI version the kernel offers; 0 when it offers none."""
        return self._landlock[0]

    def support(self) -> str | None:
        """None when commands can be sandboxed here, else one honest line why not."""
        return (why := self._landlock[1]) and f"no sandbox: {why}; commands run with your full rights"

    @cached_property
    def mounts(self) -> bool:
        """Whether a private mount namespace can be made here (see above); costs a process."""
        import subprocess
        probe = [sys.executable, "-I", "-S", __file__, "--probe"]
        return subprocess.run(probe, stderr=subprocess.DEVNULL).returncode == 0

    def writable(self, root) -> list[str]:
        import tempfile
        folders = [str(root), tempfile.gettempdir(), "/dev/shm",
                   *(os.path.expanduser(f"~/{c}") for c in CACHES)]
        return [f for f in folders if os.path.isdir(f)]

    def describe(self, policy, root) -> str:
        """One line: what is enforced on commands run under this policy."""
        if policy == "off" or self.support():
            return "sandbox off: commands run with your full rights" if policy == "off" else self.support()
        what = "commands write nothing (but /dev/null) and open no TCP connections" if policy == "read-only" \
            else f"commands write only in {', '.join(self.writable(root))}; " \
                 ".git/hooks, .git/config, ~/.ssh and shell start-up files stay read-only"
        if not self.mounts:
            what += "; but modes, owners, times and attributes are not restricted, " \
                    "nor .git protected, here (no private mount namespace)"
        gaps = [gap for since, gap in ((3, "truncate"), (4, "TCP"), (6, "signals")) if self.abi < since]
        return f"sandbox {policy} (Landlock ABI {self.abi}): {what}" + (
            f"; this kernel cannot restrict {', '.join(gaps)}" if gaps else "")

    def command(self, argv, policy, root) -> list[str]:
        """The argv to spawn: argv itself when off or unsupported, else argv under the helper."""
        if policy == "off" or not self.abi:
            return list(argv)
        args = [sys.executable, "-I", "-S", __file__, policy]
        if policy == "workspace-write":
            from .permissions import SHELL_FILES  # here: the helper itself runs without the package
            writable, git, home = self.writable(root), os.path.join(root, ".git"), os.path.expanduser("~")
            private = [os.path.join(home, name) for name in (".ssh", *SHELL_FILES)]
            # a .git file points elsewhere: keep it pointing there (a .git folder is made a mount point)
            readonly = [git + "/hooks", git + "/config"] + [git] * os.path.isfile(git) + [
                p for p in private if any(p.startswith(w.rstrip("/") + "/") for w in writable)]
            for flag, paths in (("-w", writable + [git] * os.path.isdir(git)), ("-r", readonly)):
                args += [a for path in paths for a in (flag, path)]
        return args + ["--", *argv]


def main(args):
    try:
        if args == ["--probe"]:
            sys.exit(0 if private_mounts([os.path.dirname(__file__)], [__file__]) else 1)
        split = args.index("--")
        pairs, argv = list(zip(args[1:split:2], args[2:split:2])), args[split + 1:]
        pick = lambda flag: [path for f, path in pairs if f == flag and os.path.lexists(path)]
        if args[0] not in POLICIES[:2] or not argv:
            raise ValueError(f"usage: sandbox.py {'|'.join(POLICIES[:2])} [-w|-r PATH]... -- CMD...")
        writable = pick("-w") if args[0] == "workspace-write" else []
        private_mounts(writable, pick("-r"))
        if os.geteuid() == 0:
            drop_capabilities()
        restrict(args[0], writable)
        for sig in (13, 25):  # SIGPIPE, SIGXFSZ: Python ignored them; reset as subprocess does
            _c("signal", sig, 0)  # (via libc: the signal module costs a third of the start-up)
        os.execvp(argv[0], argv)
    except Exception as e:
        print(f"nanocoder sandbox: {e}", file=sys.stderr)
        sys.exit(126)


if __name__ == "__main__":
    main(sys.argv[1:])
