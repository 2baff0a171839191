"""The long reliability runs are marked `soak`: `make soak` runs them (MDM_SOAK=1),
`make test` skips them."""

from __future__ import annotations

import os

import pytest


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if os.environ.get("MDM_SOAK"):
        return
    skip = pytest.mark.skip(reason="a soak run: `make soak`")
    for item in items:
        if "soak" in item.keywords:
            item.add_marker(skip)
