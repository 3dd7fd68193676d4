import os
from pathlib import Path

import pytest

from pixelwise.data.synthetic import write_shapes_dataset

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("PIXELWISE_SHARED_DATA", REPO.parent / "shared" / "data"))


def shared_dataset(name: str) -> Path:
    """Path of a dataset under ../shared/data, or skip the test with the reason."""
    path = SHARED_DATA / name
    if not path.is_dir():
        pytest.skip(f"{path} not found (the shared datasets live beside the repository)")
    return path


@pytest.fixture(scope="session")
def shapes_data(tmp_path_factory) -> Path:
    return write_shapes_dataset(
        tmp_path_factory.mktemp("shapes"), n_train=12, n_val=4, size=48, seed=0
    )


@pytest.fixture(scope="session", autouse=True)
def runtime_cache(tmp_path_factory):
    """The runtime probe (pixelwise.runtime) measures once per test session into a temporary
    cache shared with subprocesses, never into the user's cache directory."""
    if "PIXELWISE_CACHE" not in os.environ:
        os.environ["PIXELWISE_CACHE"] = str(tmp_path_factory.mktemp("pixelwise-cache"))
    yield
