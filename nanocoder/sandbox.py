"""The kernel sandbox (Linux, stdlib only) for nanocoder's commands: Landlock, a private mount namespace where
one can be made, a seccomp filter on sockets, and a helper that outlives nothing it started. nanocoder never
restricts itself: it spawns this file as the helper, from an interpreter and source read when the Sandbox is
made (a command may replace either later). A failed step prints one line and exits 126: never unsandboxed."""
import _signal  # the signal module without its enums: a third of the helper's start-up less
import os
import struct
import sys

POLICIES = ("read-only", "workspace-write", "off")
CACHES = (".cache/pip", ".cache/uv", ".cache/go-build", ".npm", ".cargo/registry", ".cargo/git", "go/pkg/mod")
# Landlock (syscall numbers alike on x86_64 and aarch64)
CREATE_RULESET, ADD_RULE, RESTRICT_SELF, NO_NEW_PRIVS = 444, 445, 446, 38
SCOPE_ABSTRACT_UNIX, SCOPE_SIGNAL = 1, 2  # Landlock ABI 6
EXECUTE, READ_FILE = 1 << 0, 1 << 2
WRITE = 0x1FF2  # ABI 1: write_file, remove_dir/file, make_char/dir/reg/sock/fifo/block/sym
LATER = {2: 1 << 13, 3: 1 << 14, 5: 1 << 15}  # refer, truncate, ioctl_dev: from the ABI that has them
ON_FILES = EXECUTE | 1 << 1 | READ_FILE | 1 << 14 | 1 << 15  # the rights a rule on a file (not a folder) has
# mounts
NEWNS, NEWUSER, REC, PRIVATE, BIND, RECURSIVE = 0x20000, 0x10000000, 0x4000, 1 << 18, 4096, 0x8000
RDONLY, NOSUID, NODEV, NOEXEC = 0x1, 0x2, 0x4, 0x8  # alike as mount(2) flags and mount_setattr(2) attributes
MOUNT_SETATTR = 442
# capabilities: root keeps chown, dac_override, kill, setgid, setuid, setpcap, net_bind_service; no mknod,
# net_raw, fowner, fsetid, setfcap, sys_chroot, audit_write (Docker keeps those), nor sys_admin, module...
CAPBSET_DROP, KEEP_CAPS = 24, (0, 1, 5, 6, 7, 8, 10)
# seccomp: a filter on socket(2) by address family; socketpair(2) stays allowed
SET_SECCOMP, FILTER_MODE, CHILD_SUBREAPER, DUMPABLE = 22, 2, 36, 4
AF_UNIX, AF_INET, AF_NETLINK, AF_INET6 = 1, 2, 16, 10
ARCHES = {"x86_64": (0xC000003E, 41), "aarch64": (0xC00000B7, 198)}  # audit arch, socket(2)
X32, IO_URING_SETUP, EACCES = 0x40000000, 425, 13  # io_uring makes sockets past the filter: not at all
LOAD, JEQ, JGE, RET = 0x20, 0x15, 0x35, 0x06  # BPF: ld [k]; jeq/jge #k, true, false; ret #k
ALLOW, DENY, KILL = 0x7FFF0000, 0x50000 | EACCES, 0x80000000
TERM, HUP, INT, KILL_SIG, ALRM, PIPE, XFSZ = 15, 1, 2, 9, 14, 13, 25


def _libc(function):
    """A libc function, ints passed as C longs, that raises OSError when it fails (for calls in a loop)."""
    import ctypes  # here, so that importing nanocoder stays light
    call = getattr(ctypes.CDLL(None, use_errno=True), function)
    call.restype = ctypes.c_long

    def checked(*args) -> int:
        if (result := call(*(ctypes.c_long(a) if isinstance(a, int) else a for a in args))) < 0:
            raise OSError(ctypes.get_errno(), os.strerror(ctypes.get_errno()))
        return result
    return checked


def _c(function, *args) -> int:
    """Call a libc function once (see _libc)."""
    return _libc(function)(*args)


def _attrs(path: bytes, set_: int, clear=0, flags=0):
    _c("syscall", MOUNT_SETATTR, -100, path, flags, struct.pack("=4Q", set_, clear, 0, 0), 32)


def private_mounts(writable, readonly, unreadable) -> bool:
    """Enter a private mount namespace, all read-only but `writable` (and `readonly` inside it), nothing to
    read in `unreadable`; False if none here."""
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
    _attrs(b"/", RDONLY, 0, RECURSIVE)
    # each bound onto itself: a mount point cannot be renamed or removed; nothing made there runs setuid
    for path, set_, clear in [(p, NOSUID | NODEV, RDONLY) for p in writable] + [
            (p, RDONLY | NOSUID | NODEV, 0) for p in readonly]:
        _c("mount", path.encode(), path.encode(), None, BIND | REC, None)
        _attrs(path.encode(), set_, clear)
    for path in unreadable:  # an empty folder, or a file nothing can open
        empty = RDONLY | NOSUID | NODEV | NOEXEC
        if os.path.isdir(path):
            _c("mount", b"tmpfs", path.encode(), b"tmpfs", empty, b"mode=000,size=4k")
        else:
            _c("mount", b"/dev/null", path.encode(), None, BIND, None)
            _attrs(path.encode(), empty)
    os.chdir(os.getcwd())  # a cwd inside a new mount point would still be the folder beneath it
    return True


def drop_capabilities():
    """Without CAP_SYS_ADMIN root cannot undo the mounts (Landlock does not stop mount_setattr), load
    modules...; without mknod, fowner, fsetid, setfcap it makes no device nodes or privileged files."""
    with open("/proc/sys/kernel/cap_last_cap") as f:
        last = int(f.read())
    prctl = _libc("prctl")
    for cap in set(range(last + 1)) - set(KEEP_CAPS):
        prctl(CAPBSET_DROP, cap, 0, 0, 0)  # (one dropped already stays dropped)


def readable_elsewhere(unreadable) -> list[str]:
    """Landlock only grants: to keep `unreadable` from being read, reading is granted on each of their
    siblings along the way down from / (not on the folders above them: that would cover them too)."""
    above, grant = set(), []
    for path in unreadable:
        while path != "/" and (path := os.path.dirname(path)) not in above:
            above.add(path)
    for folder in sorted(above):
        for entry in os.scandir(folder):  # a link is followed where it leads, and judged there
            if entry.path not in above and entry.path not in unreadable and not entry.is_symlink():
                grant.append(entry.path)
    return grant


def restrict(policy, writable, unreadable):
    """Landlock this process: the write rights the ABI has are denied but beneath `writable`; reading is
    denied in `unreadable` (files; listing stays allowed: names are no secret)."""
    abi = _c("syscall", CREATE_RULESET, None, 0, 1)
    write = WRITE | sum(right for since, right in LATER.items() if abi >= since)
    read = READ_FILE if unreadable else 0
    net = 3 if policy == "read-only" and abi >= 4 else 0  # bind_tcp, connect_tcp
    scoped = 0
    if abi >= 6:  # signals out of the sandbox under both policies; abstract unix sockets under read-only
        scoped = SCOPE_SIGNAL | (SCOPE_ABSTRACT_UNIX if policy == "read-only" else 0)
    attr = struct.pack("=3Q", write | read, net, scoped)[:8 * (1 if abi < 4 else 2 if abi < 6 else 3)]
    ruleset = _c("syscall", CREATE_RULESET, attr, len(attr), 0)
    rules = [(path, write) for path in writable + ["/dev/null", "/dev/tty"]]
    if read:
        rules += [(path, read) for path in readable_elsewhere(unreadable)]
    syscall = _libc("syscall")
    for path, rights in rules:
        try:
            fd = os.open(path, os.O_PATH | os.O_CLOEXEC)  # the exec closes it, and the ruleset's
        except OSError:  # gone meanwhile, or no such device
            continue
        folder = os.fstat(fd).st_mode & 0o170000 == 0o040000
        syscall(ADD_RULE, ruleset, 1, struct.pack("=Qi", rights if folder else rights & ON_FILES, fd), 0)
    _c("prctl", NO_NEW_PRIVS, 1, 0, 0, 0)
    _c("syscall", RESTRICT_SELF, ruleset, 0)


def socket_filter(machine: str, families) -> bytes:
    """A seccomp program: socket(2) fails with EACCES but for `families`; io_uring is refused (it makes
    sockets the filter never sees); another architecture's calls (x32, i386 on x86_64) end the process."""
    arch, socket = ARCHES[machine]
    # (code, k, where to go when true, when false); None: the next step
    steps = [(LOAD, 4, None, None), (JEQ, arch, None, "kill"), (LOAD, 0, None, None),
             *([(JGE, X32, "kill", None)] if machine == "x86_64" else []),
             (JEQ, IO_URING_SETUP, "deny", None), (JEQ, socket, None, "allow"), (LOAD, 16, None, None),
             *[(JEQ, family, "allow", None) for family in families], (RET, DENY, "deny", None),
             (RET, ALLOW, "allow", None), (RET, KILL, "kill", None)]
    at = {label: i for i, (code, k, label, _) in enumerate(steps) if code == RET}
    jump = lambda i, label: 0 if label is None else at[label] - i - 1
    return b"".join(struct.pack("=HBBI", code, jump(i, yes) if code != RET else 0, jump(i, no), k)
                    for i, (code, k, yes, no) in enumerate(steps))


def filter_sockets(policy, unix_sockets):
    """No socket under read-only; under workspace-write the network's and the kernel's (netlink), and
    named unix sockets (tmux, ssh-agent, D-Bus, docker.sock...) only with --allow-unix-sockets."""
    import ctypes
    families = [] if policy == "read-only" else [AF_INET, AF_INET6, AF_NETLINK]
    if unix_sockets and policy == "workspace-write":
        families.append(AF_UNIX)
    program = ctypes.create_string_buffer(socket_filter(os.uname().machine, families))
    steps = len(program.raw) // 8  # (the buffer's own NUL at the end is no step)
    _c("prctl", SET_SECCOMP, FILTER_MODE, struct.pack("@HP", steps, ctypes.addressof(program)))


def descendants() -> list[int]:
    """Every process below this one, found by each process's parent in /proc."""
    children = {}
    for name in os.listdir("/proc"):
        try:
            with open(f"/proc/{name}/stat", "rb") as f:  # "pid (name) state ppid ..."
                children.setdefault(int(f.read().rpartition(b")")[2].split()[1]), []).append(int(name))
        except (OSError, ValueError, IndexError):  # not a process, or gone meanwhile
            pass
    found, todo = [], [os.getpid()]
    while todo:
        found += (more := children.get(todo.pop(), []))
        todo += more
    return found


def signal_all(sig):
    for pid in descendants():
        try:
            os.kill(pid, sig)
        except OSError:
            pass


def stop(signum, frame):
    """nanocoder's SIGTERM (cancel, timeout) is passed to all the command started; SIGKILL follows in 1 s."""
    signal_all(TERM)
    _signal.signal(ALRM, lambda *_: signal_all(KILL_SIG))
    _signal.alarm(1)


def supervise(child: int):
    """Wait for the command; end what it left behind (a subreaper inherits every orphan below it); exit as
    the command did."""
    while (ended := os.waitpid(-1, 0))[0] != child:  # orphans are reaped as they end
        pass
    while True:
        try:
            if os.waitpid(-1, os.WNOHANG)[0]:
                continue
        except ChildProcessError:  # none left
            break
        signal_all(KILL_SIG)
        os.waitpid(-1, 0)
    if os.WIFSIGNALED(ended[1]):  # die of the same signal, so nanocoder reports it as such
        _c("prctl", DUMPABLE, 0, 0, 0, 0)  # the command dumped its core if it was to
        if os.WTERMSIG(ended[1]) != KILL_SIG:  # (SIGKILL's action cannot be set: it is always the default)
            _signal.signal(os.WTERMSIG(ended[1]), _signal.SIG_DFL)
        os.kill(os.getpid(), os.WTERMSIG(ended[1]))
    os._exit(os.waitstatus_to_exitcode(ended[1]) & 0xFF)


def main(args):
    try:
        if args == ["--probe"]:
            sys.exit(0 if private_mounts(["/"], ["/"], []) else 1)
        split = args.index("--")
        policy, flags, argv = args[0], args[1:split], args[split + 1:]
        unix_sockets = "--allow-unix-sockets" in flags
        rest = [flag for flag in flags if flag != "--allow-unix-sockets"]
        pairs = list(zip(rest[::2], rest[1::2]))
        pick = lambda flag: [path for f, path in pairs if f == flag and os.path.lexists(path)]
        if policy not in POLICIES or not argv:
            raise ValueError(f"usage: sandbox.py {'|'.join(POLICIES)} [--allow-unix-sockets] "
                             "[-w|-r|-n PATH]... -- CMD...")
        if sys.executable.startswith("/proc/self/fd/"):  # the interpreter nanocoder passed: not the command's
            os.set_inheritable(int(sys.executable.rpartition("/")[2]), False)
        _c("prctl", CHILD_SUBREAPER, 1, 0, 0, 0)
        writable, unreadable = pick("-w") if policy == "workspace-write" else [], pick("-n")
        mounts = policy != "off" and private_mounts(writable, pick("-r"), unreadable)
        if policy != "off" and os.geteuid() == 0:
            drop_capabilities()
        for sig in (TERM, HUP, INT):  # before the fork: the helper is never without it
            _signal.signal(sig, stop)
        if child := os.fork():
            supervise(child)
    except Exception as e:
        print(f"nanocoder sandbox: {e}", file=sys.stderr)
        sys.exit(126)
    try:  # the command: outside the helper's Landlock domain, so it can neither signal nor trace the helper
        for sig in (TERM, HUP, INT, PIPE, XFSZ):  # Python ignored the last two; reset as subprocess does
            _signal.signal(sig, _signal.SIG_DFL)
        if policy != "off":
            restrict(policy, writable, [] if mounts else [os.path.realpath(p) for p in unreadable])
            if os.uname().machine in ARCHES:
                filter_sockets(policy, unix_sockets)
        os.execvp(argv[0], argv)
    except Exception as e:
        print(f"nanocoder sandbox: {e}", file=sys.stderr)
    os._exit(126)


if __name__ == "__main__":  # the helper: main() ends the process, so it never reads on
    main(sys.argv[1:])

# --- nanocoder's side: what the kernel here offers, and the argv that starts the helper ---------------------

RUN_CODE = "import marshal, sys; exec(marshal.loads(bytes.fromhex(sys.argv.pop(1))))"  # -c RUN_CODE CODE ARGS

from functools import cached_property  # noqa: E402 (below the helper, which has no use for it)


class Sandbox:
    """What the kernel here can enforce (probed once, on first use), and the argv that runs a command."""

    def __init__(self):
        # the helper's interpreter and source, fixed now: a command may later replace either file
        self.fds, self._source = (), ""
        if sys.platform == "linux":
            import weakref
            python = os.open(os.path.realpath(sys.executable), os.O_RDONLY | os.O_CLOEXEC)
            weakref.finalize(self, os.close, python)
            with open(__file__, encoding="utf-8") as f:
                self.fds, self._source = (python,), f.read()

    @cached_property
    def _code(self) -> str:
        """The helper's source compiled once, marshalled, in hex: each call then skips compiling it."""
        import marshal
        return marshal.dumps(compile(self._source, "nanocoder/sandbox.py", "exec")).hex()

    def _helper(self, *args) -> list[str]:
        return [f"/proc/self/fd/{self.fds[0]}", "-I", "-S", "-c", RUN_CODE, self._code, *args]

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
        probe = subprocess.run(self._helper("--probe"), stderr=subprocess.DEVNULL, pass_fds=self.fds)
        return probe.returncode == 0

    def writable(self, root) -> list[str]:
        import tempfile
        folders = [str(root), tempfile.gettempdir(), "/dev/shm",
                   *(os.path.expanduser(f"~/{c}") for c in CACHES)]
        return [f for f in folders if os.path.isdir(f)]

    def describe(self, policy, root, unix_sockets=False) -> str:
        """One line: what is enforced on commands run under this policy, here; never more."""
        if policy == "off" or self.support():
            return "sandbox off: commands run with your full rights" if policy == "off" else self.support()
        from .permissions import UNREADABLE
        sockets = os.uname().machine in ARCHES  # the seccomp filter knows this architecture
        if policy == "read-only":
            what = ["commands write nothing (but /dev/null) and open "
                    + ("no sockets (network or unix)" if sockets else "no TCP connections")]
        else:
            what = [f"commands write only in {', '.join(self.writable(root))}"
                    + ("" if unix_sockets or not sockets else " and open no named unix sockets")]
        what.append(f"they cannot read {', '.join('~/' + name for name in UNREADABLE)}")
        if not self.mounts:
            what.append("without a private mount namespace here, modes, owners, times and attributes can "
                        "change, and nothing inside the writable folders is kept read-only while a command "
                        "runs (.git's config, hooks, commondir and info are put back after it)")
        elif policy == "workspace-write":
            what.append(".git/hooks, .git/config and shell start-up files stay read-only")
        gaps = [gap for since, gap in ((3, "truncate"), (4, "TCP"), (6, "signals"))
                if self.abi < since and not (gap == "TCP" and sockets and policy == "read-only")]
        gaps += [] if sockets else [f"sockets on {os.uname().machine}"]
        return f"sandbox {policy} (Landlock ABI {self.abi}): {'; '.join(what)}" + (
            f"; this kernel cannot restrict {', '.join(gaps)}" if gaps else "")

    def command(self, argv, policy, root, unix_sockets=False) -> list[str]:
        """The argv to spawn (with self.fds passed): under the helper on Linux, there only as a subreaper
        when off or unsupported; elsewhere argv itself."""
        if not self.fds:
            return list(argv)
        if policy == "off" or not self.abi:
            return self._helper("off", "--", *argv)
        from .permissions import SHELL_FILES, UNREADABLE  # here: the helper itself runs without the package
        home = os.path.expanduser("~")
        args = [policy, "--allow-unix-sockets"] if unix_sockets else [policy]
        # every credential path: the helper passes over those that do not exist (pick)
        args += [a for name in UNREADABLE for a in ("-n", os.path.join(home, name))]
        if policy == "workspace-write":
            writable, git = self.writable(root), os.path.join(root, ".git")
            private = [os.path.join(home, name) for name in SHELL_FILES]
            readonly = [git + "/hooks", git + "/config"]
            readonly += [p for p in private if any(p.startswith(w.rstrip("/") + "/") for w in writable)]
            if os.path.isfile(git):  # a .git file points elsewhere: keep it pointing there
                readonly.append(git)
            elif os.path.isdir(git):  # a .git folder is made a mount point: it cannot be renamed or replaced
                writable = [*writable, git]
            args += [a for path in writable for a in ("-w", path)]
            args += [a for path in readonly for a in ("-r", path)]
        return self._helper(*args, "--", *argv)
