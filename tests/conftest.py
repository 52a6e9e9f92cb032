"""Fixtures shared by several test modules."""
import pytest
import torch


@pytest.fixture(scope="module")
def one_thread():
    """One torch thread for a module: several threads on a busy 2-core machine are many times slower
    (crossemo_core/benchmark/runner.py)."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(autouse=True, scope="session")
def _private_workspace(tmp_path_factory):
    """The app keeps finished runs in ``$CROSSEMO_WORKSPACE``; the suite uses its own, never the project's."""
    import os

    before = os.environ.get("CROSSEMO_WORKSPACE")
    os.environ["CROSSEMO_WORKSPACE"] = str(tmp_path_factory.mktemp("workspace"))
    yield
    if before is None:
        os.environ.pop("CROSSEMO_WORKSPACE", None)
    else:
        os.environ["CROSSEMO_WORKSPACE"] = before
