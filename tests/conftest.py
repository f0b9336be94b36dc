"""Shared fixtures: the project's scripted OpenAI-compatible server and an LLM pointed at it."""
import os
import signal

import pytest

from history_rules import problems
from nanocoder.llm import LLM
from scripted import ScriptedServer

# A runner that starts pytest in the background of a shell without job control leaves SIGINT ignored, and
# every command the tests start inherits that: the Ctrl+C tests would fail, testing nothing. Python's own
# handler is put back (a command started from here gets the default again).
signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture
def server():
    with ScriptedServer() as srv:
        yield srv
    for n, request in enumerate(srv.requests):  # whatever a test did, no request broke the rules
        assert problems(request.get("messages") or []) == [], f"request {n}"


@pytest.fixture
def llm(server):
    # No retries: a scripted error must surface at once, not after backoff.
    return LLM("scripted", api_key="test", base_url=server.url, max_retries=0)


def assert_valid_history(messages):
    """The rules providers enforce on a chat history (nanocoder.history), and the system prompt first."""
    assert messages and messages[0]["role"] == "system"
    assert problems(messages) == []


# --- the sandbox tests' two modes: as root, and as an ordinary user with unshare(2) refused ---------------

@pytest.fixture(scope="session")
def unprivileged(request, tmp_path_factory):
    """The user mode, set up once (tests/unprivileged.py); its venv lives outside the temp folder."""
    import shutil
    import tempfile
    import unprivileged as setup
    base = "/var/tmp" if os.path.isdir("/var/tmp") and tempfile.gettempdir() != "/var/tmp" else None
    folder = tempfile.mkdtemp(prefix="nanocoder-user-python-", dir=base)
    os.chmod(folder, 0o755)
    try:
        yield setup.setup(request.config.rootpath, folder)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(params=["root", "user"])
def mode(request):
    """Which mode this test runs in. "user" tests run their body in a pytest of their own as that user (see
    pytest_pyfunc_call below); inside it, this is "user" too."""
    import unprivileged as setup
    if request.param == "root" and os.environ.get(setup.INSIDE):
        pytest.skip("the root mode runs in the outer pytest")
    if request.param == "root" and os.geteuid() != 0:
        pytest.skip("the tests do not run as root")
    if request.param == "user" and not os.environ.get(setup.INSIDE):
        made = request.getfixturevalue("unprivileged")
        if isinstance(made, str):
            pytest.skip(made)
    return request.param


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem):
    import unprivileged as setup
    callspec = getattr(pyfuncitem, "callspec", None)
    if callspec and callspec.params.get("mode") == "user" and not os.environ.get(setup.INSIDE):
        made = pyfuncitem._request.getfixturevalue("unprivileged")
        setup.run_test(made, pyfuncitem.config.rootpath, pyfuncitem.nodeid)
        return True
    return None
