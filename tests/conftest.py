"""Shared fixtures: random concave problems and the bundled examples."""

import pytest

from optimizer.exact import random_problem  # noqa: F401  (re-exported for tests)


@pytest.fixture
def make_problem():
    return random_problem


@pytest.fixture(autouse=True, scope="session")
def _isolated_fit_cache(tmp_path_factory):
    """Fits are cached per test session, never in the user's cache folder."""
    import os

    from models.cache import CACHE_ENV

    old = os.environ.get(CACHE_ENV)
    os.environ[CACHE_ENV] = str(tmp_path_factory.mktemp("fit-cache"))
    yield
    if old is None:
        os.environ.pop(CACHE_ENV, None)
    else:
        os.environ[CACHE_ENV] = old
