"""The sandbox tests' second mode: an ordinary user for whom unshare(2) is refused, as Ubuntu 24.04's AppArmor
rule and Docker's seccomp profile make most real users. There Landlock is all the sandbox has.

Run as a script, this is the wrapper (root starts it):
    python -I -S tests/unprivileged.py --user NAME | --no-caps -- CMD...
It installs a seccomp filter like Docker's (unshare and setns fail with EPERM, clone with any namespace flag
too, clone3 with ENOSYS so that libc falls back to clone), then becomes NAME (no groups, no capabilities) or
stays uid 0 with every capability gone, and execs CMD. The filter is installed while still root, as runc
does, so the user's process does not carry no_new_privs: it is an ordinary login, not a sandbox.

As a module it sets the mode up once per test session (see `setup`), and runs one test inside it (see
`run_test`): the same test, in a pytest of its own, as that user.
"""
import os
import struct
import sys

USER = "nanocoder-test"
INSIDE = "NANOCODER_TESTS_INSIDE"  # set in the nested pytest: run the test's body here
ARCHES = {  # audit arch, unshare, setns, clone, clone3
    "x86_64": (0xC000003E, 272, 308, 56, 435),
    "aarch64": (0xC00000B7, 97, 268, 220, 435),
}
NAMESPACES = 0x7E020000  # CLONE_NEWNS | NEWCGROUP | NEWUTS | NEWIPC | NEWUSER | NEWPID | NEWNET
ALLOW, ERRNO, EPERM, ENOSYS = 0x7FFF0000, 0x00050000, 1, 38
LD_ABS, JEQ, JSET, RET = 0x20, 0x15, 0x45, 0x06
PR_SET_SECCOMP, SECCOMP_MODE_FILTER, CAPBSET_DROP, CAP_AMBIENT, CAP_AMBIENT_CLEAR_ALL = 22, 2, 24, 47, 4


def program(machine: str) -> bytes:
    """The BPF filter: jumps are written by label, then counted."""
    arch, unshare, setns, clone, clone3 = ARCHES[machine]
    code = [  # (opcode, jump if true, jump if false, k)
        (LD_ABS, None, None, 4), (JEQ, None, "allow", arch),  # another ABI's calls: left alone
        (LD_ABS, None, None, 0),
        (JEQ, "eperm", None, unshare), (JEQ, "eperm", None, setns), (JEQ, "enosys", None, clone3),
        (JEQ, None, "allow", clone), (LD_ABS, None, None, 16), (JSET, "eperm", "allow", NAMESPACES),
        "allow", (RET, None, None, ALLOW), "eperm", (RET, None, None, ERRNO | EPERM),
        "enosys", (RET, None, None, ERRNO | ENOSYS)]
    labels, at = {}, 0
    for line in code:
        if isinstance(line, str):
            labels[line] = at
        else:
            at += 1
    out, at = b"", 0
    for line in code:
        if isinstance(line, str):
            continue
        op, yes, no, k = line
        jump = [labels[target] - at - 1 if target else 0 for target in (yes, no)]
        out += struct.pack("=HBBI", op, *jump, k)
        at += 1
    return out


def install_filter():
    import ctypes
    filters = program(os.uname().machine)
    buffer = ctypes.create_string_buffer(filters)
    fprog = struct.pack("=HxxxxxxQ", len(filters) // 8, ctypes.addressof(buffer))
    libc = ctypes.CDLL(None, use_errno=True)
    if os.geteuid() != 0:  # an ordinary user already: without CAP_SYS_ADMIN a filter needs no_new_privs
        libc.prctl(38, 1, 0, 0, 0)
    if libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.c_char_p(fprog), 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "cannot install the seccomp filter")


def drop_all_capabilities():
    """Stay uid 0 with nothing: an empty bounding set, so exec grants no capability back, and none now."""
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    with open("/proc/sys/kernel/cap_last_cap") as f:
        last = int(f.read())
    for cap in range(last + 1):
        libc.prctl(CAPBSET_DROP, cap, 0, 0, 0)
    libc.prctl(CAP_AMBIENT, CAP_AMBIENT_CLEAR_ALL, 0, 0, 0)
    header, data = struct.pack("=Ii", 0x20080522, 0), ctypes.create_string_buffer(24)  # version 3, this pid
    if libc.capset(ctypes.c_char_p(header), data) != 0:
        raise OSError(ctypes.get_errno(), "capset")


def main(args):
    split = args.index("--")
    how, argv = args[:split], args[split + 1:]
    import warnings  # noqa: F401  (execvp's PATH search needs it; as the user, root's stdlib may be out of reach)
    install_filter()
    if how[0] == "--user":
        import pwd
        user = pwd.getpwnam(how[1])
        os.setgroups([])
        os.setresgid(user.pw_gid, user.pw_gid, user.pw_gid)
        os.setresuid(user.pw_uid, user.pw_uid, user.pw_uid)  # from 0 to another uid: every capability goes
    else:
        drop_all_capabilities()
    os.execvp(argv[0], argv)


# --- setting the mode up, and running a test in it ------------------------------------------------

class Unprivileged:
    """How to run something in the user mode: `wrap(argv)` and `env`; `how` is "user" (a real ordinary
    user) or "no-caps" (uid 0 without capabilities, where the user cannot reach the checkout or a Python);
    `python` is an interpreter that mode can run, with this venv's packages and a `nanocoder` beside it."""

    def __init__(self, how, python, env, prefix):
        self.how, self.python, self.env, self.prefix = how, python, env, prefix

    def wrap(self, argv):
        return [*self.prefix, *argv]

    def run(self, argv, env=None, **kwargs):
        import subprocess
        return subprocess.run(self.wrap(argv), env=env or self.env, capture_output=True, text=True, **kwargs)


def _user():
    """The test user, made once (useradd is idempotent here: only when missing)."""
    import pwd
    import subprocess
    try:
        return pwd.getpwnam(USER)
    except KeyError:
        subprocess.run(["useradd", "--create-home", "--shell", "/bin/bash", USER], check=True,
                       capture_output=True)
        return pwd.getpwnam(USER)


def _python_for_the_user(folder):
    """A venv in `folder` whose interpreter the user can run and whose site-packages sees this venv's
    (a .pth), with the installed `nanocoder` command beside it. The running interpreter often lives where
    the user cannot go (/root/.pyenv); a system Python of the same version can stand in for it."""
    import shutil
    import subprocess
    import sysconfig
    version = f"{sys.version_info[0]}.{sys.version_info[1]}"
    bases = [os.path.realpath(getattr(sys, "_base_executable", sys.executable)),
             f"/usr/bin/python{version}", f"/usr/local/bin/python{version}"]
    sites = sorted({sysconfig.get_paths()[k] for k in ("purelib", "platlib")})
    nanocoder = os.path.join(os.path.dirname(sys.executable), "nanocoder")
    for n, base in enumerate(b for b in dict.fromkeys(bases) if os.path.isfile(b)):
        venv = os.path.join(folder, f"venv{n}")
        if subprocess.run([base, "-m", "venv", "--without-pip", venv], capture_output=True).returncode:
            continue
        python = os.path.join(venv, "bin", "python")
        site = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                              capture_output=True, text=True).stdout.strip()
        with open(os.path.join(site, "nanocoder-tests.pth"), "w") as f:
            f.write("".join(f"import site; site.addsitedir({s!r})\n" for s in sites))
        with open(nanocoder) as f:
            script = f.read().split("\n", 1)[1]
        with open(os.path.join(venv, "bin", "nanocoder"), "w") as f:
            f.write(f"#!{python}\n{script}")
        os.chmod(os.path.join(venv, "bin", "nanocoder"), 0o755)
        yield python
        shutil.rmtree(venv)


def setup(rootdir, folder):
    """An Unprivileged for this machine, or a reason why none can be made. `folder` (root's, mode 0755,
    outside the temp folder: a sandboxed command must not be able to replace this interpreter) holds the
    user's venv."""
    if os.uname().machine not in ARCHES:
        return f"no seccomp filter written for {os.uname().machine}"
    wrapper = [sys.executable, "-I", "-S", os.path.abspath(__file__)]
    check = ["-c", f"import nanocoder, pytest, openai, pexpect; open({str(rootdir / 'tests' / 'conftest.py')!r})"]
    if os.geteuid() != 0:  # already an ordinary user: only the filter
        return Unprivileged("user", sys.executable, dict(os.environ), wrapper + ["--no-caps", "--"])
    why = "no test user"
    try:
        user = _user()
    except Exception as e:
        user, why = None, f"cannot add the user {USER} ({e})"
    if user:
        env = {**os.environ, "HOME": user.pw_dir, "USER": USER, "LOGNAME": USER}
        for python in _python_for_the_user(folder):
            env_here = {**env, "PATH": f"{os.path.dirname(python)}:{os.environ.get('PATH', '')}"}
            mode = Unprivileged("user", python, env_here, wrapper + ["--user", USER, "--"])
            result = mode.run([python, *check], cwd=rootdir)
            if result.returncode == 0:
                return mode
            why = f"the user {USER} cannot run the tests here: {result.stderr.strip().splitlines()[-1:]}"
    # e.g. a checkout under /root (mode 0700): uid 0 with no capability left is what is possible
    mode = Unprivileged("no-caps", sys.executable, dict(os.environ), wrapper + ["--no-caps", "--"])
    result = mode.run([sys.executable, *check], cwd=rootdir)
    if result.returncode == 0:
        print(f"\nuser mode: uid 0 without capabilities ({why})", file=sys.stderr)
        return mode
    return f"the user mode cannot be set up here: {why}; {result.stderr.strip()[-300:]}"


def run_test(mode, rootdir, nodeid):
    """Run one test in a pytest of its own in the user mode; fail or skip as it did."""
    import re
    import pytest
    argv = [mode.python, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", "-p", "no:hypothesispytest",
            "-p", "no:anyio", nodeid]  # plugins the sandbox tests do not use cost start-up time
    result = mode.run(argv, cwd=rootdir, timeout=600, env={**mode.env, INSIDE: mode.how})
    out = result.stdout + result.stderr
    if result.returncode == 0 and re.search(r"\b1 passed\b", out):
        return
    if result.returncode == 0 and (skipped := re.search(r"SKIPPED \[\d+\] [^:]+:\d+: (.*)", out)):
        pytest.skip(f"as an ordinary user: {skipped.group(1)}")
    pytest.fail(f"as an ordinary user ({mode.how}), the test failed:\n{out[-6000:]}", pytrace=False)


if __name__ == "__main__":
    main(sys.argv[1:])
