import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))


def pytest_collection_modifyitems(config, items):
    """Tests under tests/hardware/ need a real GPU: mark them so `-m hardware` selects them."""
    for item in items:
        if f"{os.sep}hardware{os.sep}" in str(item.fspath):
            item.add_marker(pytest.mark.hardware)
