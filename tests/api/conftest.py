from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from mdm.services.context import Registry
from tests.conftest import ADMIN_KEY


@pytest.fixture
def client(registry: Registry) -> Iterator[TestClient]:
    app = create_app(registry.settings, registry=registry)
    with TestClient(app, headers={"Authorization": f"Bearer {ADMIN_KEY}"}) as c:
        yield c
