"""Real CIFAR-10, rebuilt from the JPEG copy in ../shared (skipped where ../shared is absent).

The module fixture rebuilds ``cifar-10-python.tar.gz`` with ``shared/tools/cifar_jpeg_to_python.py``
(about 30 s), fetches it through :func:`trainact.data.download.download` from a ``file://`` URL with the md5
the tool printed, and prepares it, exactly as the workflow's download and prepare rules do.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from trainact.data import cifar, download, prepare

SHARED = Path(__file__).resolve().parents[3] / "shared"
TOOL = SHARED / "tools" / "cifar_jpeg_to_python.py"
JPEG_ARCHIVE = SHARED / "data" / "cifar10-jpeg.tar.gz"

pytestmark = [
    pytest.mark.shared,
    pytest.mark.slow,
    pytest.mark.skipif(
        not (TOOL.is_file() and JPEG_ARCHIVE.is_file()),
        reason=f"needs {TOOL} and {JPEG_ARCHIVE}",
    ),
]


@pytest.fixture(scope="module")
def real_archive(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """The rebuilt archive and the md5 the tool printed for it."""
    folder = tmp_path_factory.mktemp("real-cifar")
    rebuilt = folder / "rebuilt.tar.gz"
    result = subprocess.run(
        [sys.executable, str(TOOL), str(JPEG_ARCHIVE), str(rebuilt)],
        capture_output=True,
        text=True,
        check=True,
    )
    return rebuilt, result.stdout.strip().splitlines()[-1]


@pytest.fixture(scope="module")
def real_prepared(real_archive: tuple[Path, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Path of the prepared .npz of the full real data set."""
    rebuilt, md5 = real_archive
    folder = tmp_path_factory.mktemp("real-prepared")
    archive = download.download(rebuilt.as_uri(), md5, folder / "cifar-10-python.tar.gz", progress=False)
    yield prepare.prepare(archive, folder / "cifar10.npz", progress=False)


def test_real_cifar_prepared_counts(real_archive: tuple[Path, str], real_prepared: Path) -> None:
    prepared = cifar.load_prepared(real_prepared)
    assert prepared.train_images.shape == (50000, 3, 32, 32)
    assert prepared.test_images.shape == (10000, 3, 32, 32)
    assert prepared.train_images.dtype == prepared.test_images.dtype == np.uint8
    assert np.bincount(prepared.train_labels, minlength=10).tolist() == [5000] * 10
    assert np.bincount(prepared.test_labels, minlength=10).tolist() == [1000] * 10
    assert prepared.class_names == list(cifar.CLASS_NAMES)
    assert prepared.source_md5 == real_archive[1]
    # Real photographs, not blank or constant images.
    assert 80 < prepared.train_images.mean() < 180
    assert prepared.train_images.std() > 40


def test_real_cifar_small_relu_one_epoch(real_prepared: Path, tmp_path: Path) -> None:
    """The small ReLU CNN, one epoch of the paper's setting on all 50,000 images: > 40% test accuracy."""
    from trainact.nn.models import build_model
    from trainact.training.random_state import seed_everything
    from trainact.training.train import fit
    from trainact.training.train_settings import TrainSettings

    settings = TrainSettings(epochs=1, device="cpu")
    seed_everything(settings.seed)
    model = build_model("small", "relu")
    history = fit(model, cifar.load_prepared(real_prepared), settings, tmp_path, progress=False)
    print(f"small ReLU CNN, 1 epoch on real CIFAR-10: {history[-1]}")
    assert history[-1]["status"] == "ok"
    assert history[-1]["val_acc"] > 0.40
