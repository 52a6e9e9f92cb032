"""Suite-wide test settings.

The clip-verdict path (issue 4) is still being built: until its trained model ``checkpoints/clip.pt`` is shipped,
the tests that need that model are skipped with that reason (they run as soon as the file exists).
"""
from pathlib import Path

import pytest

CLIP_CHECKPOINT = Path(__file__).resolve().parents[1] / "checkpoints" / "clip.pt"
NEEDS_CLIP_MODEL = {"test_clip_score.py", "test_clip_app.py"}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if CLIP_CHECKPOINT.is_file():
        return
    skip = pytest.mark.skip(reason="checkpoints/clip.pt is not shipped yet (issue 4 in progress)")
    for item in items:
        if item.path.name in NEEDS_CLIP_MODEL or item.name == "test_clip_page_in_browser":
            item.add_marker(skip)
