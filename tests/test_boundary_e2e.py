"""Issue 18: nothing that the repository or a command controls runs outside the sandbox. Each hole the red team
found, end to end through the installed command with the scripted model, against a scratch HOME outside the
temp folder (tests/test_sandbox.py's `scratch`), as root and as an ordinary user for whom unshare(2) is
refused (`mode`, tests/conftest.py and tests/unprivileged.py). Each asserts that the harm did not happen."""
import os
import subprocess
import sys

from nanocoder import sandbox
from test_sandbox import scratch  # noqa: F401  (the fixture)


# --- the user mode itself -----------------------------------------------------------------------

def test_the_user_mode_refuses_namespaces(mode):
    """Under the wrapper unshare(2) and clone(2) with a namespace flag fail, so nanocoder finds no mount
    namespace: Landlock is all it has. As root (the control) both work."""
    clone = ("import ctypes; libc = ctypes.CDLL(None, use_errno=True); "
             "r = libc.syscall(56 if __import__('os').uname().machine == 'x86_64' else 220, 0x10000000 | 17, 0, 0, 0, 0); "
             "print(r if r <= 0 else 'made', ctypes.get_errno()) if r != 0 else __import__('os')._exit(0)")
    unshare = subprocess.run(["unshare", "-Ur", "true"], capture_output=True, text=True)
    made = subprocess.run([sys.executable, "-c", clone], capture_output=True, text=True)
    if mode == "root":
        assert unshare.returncode == 0 and made.stdout.startswith("made"), (unshare, made)
        return
    assert unshare.returncode != 0 and "Operation not permitted" in unshare.stderr, unshare
    assert made.stdout == "-1 1\n", made  # EPERM
    assert subprocess.run(["unshare", "-m", "true"], capture_output=True).returncode != 0
    assert sandbox.Sandbox().mounts is False
    assert os.geteuid() != 0 or "CapEff:\t0000000000000000" in open("/proc/self/status").read()
