"""Data sets for pcoh: one entry point, :func:`load`, with deterministic splits.

Every loader returns a :class:`DataSplit` holding a train and a test
:class:`torch.utils.data.Dataset` whose items are ``(image, label)`` pairs, with
``image`` a float32 tensor of shape ``(C, H, W)`` and ``label`` an int.

Data sets
---------
``digits`` (default; bundled, works offline)
    :func:`sklearn.datasets.load_digits`: 1,797 real 8x8 grey-scale images of
    hand-written digits, 10 classes. Images ``(n, 1, 8, 8)`` float32, scaled to
    [0, 1] (divided by 16), then by default standardised with the *train* split's
    mean and std. Stratified train/test split with
    ``sklearn.model_selection.train_test_split(..., stratify=y, random_state=seed)``.
    In-memory :class:`~torch.utils.data.TensorDataset`.
``mnist``
    :class:`torchvision.datasets.MNIST`: 60,000 train / 10,000 test 28x28
    grey-scale digits, 10 classes. Images ``(1, 28, 28)``, normalised with
    mean 0.1307, std 0.3081. Files in ``<root>/MNIST/raw/``.
``fashion_mnist``
    :class:`torchvision.datasets.FashionMNIST`: 60,000 / 10,000 28x28 grey-scale
    clothing images, 10 classes. Images ``(1, 28, 28)``, mean 0.2860, std 0.3530.
    Files in ``<root>/FashionMNIST/raw/``.
``cifar10``
    :class:`torchvision.datasets.CIFAR10`: 50,000 / 10,000 32x32 colour images,
    10 classes. Images ``(3, 32, 32)``, mean (0.4914, 0.4822, 0.4465),
    std (0.2470, 0.2435, 0.2616). Files in ``<root>/cifar-10-batches-py/``.
``cifar100``
    :class:`torchvision.datasets.CIFAR100`: 50,000 / 10,000 32x32 colour images,
    100 (fine) classes. Images ``(3, 32, 32)``, mean (0.5071, 0.4865, 0.4409),
    std (0.2673, 0.2564, 0.2762). Files in ``<root>/cifar-100-python/``.
``image_folder``
    A user's folder of images, read and never written: ``root/<class name>/<image files>``
    split by a deterministic stratified ``test_size`` fraction, or ``root/train/<class
    name>/...`` and ``root/test/<class name>/...`` (or ``val/``) used as the two splits.
    Hidden sub-folders and sub-folders without image files are not classes (an
    :class:`ImageFolderWarning` names them). Images of any size and mode (grey, palette,
    16-bit, RGBA, EXIF-rotated) are converted to RGB ``(3, image_size, image_size)`` and
    standardised with the train split's channel statistics (or given ones, e.g. a
    teacher's published preprocessing). Small folders are decoded once and held in
    memory as :class:`~torch.utils.data.TensorDataset`; larger ones are read item by item
    (:class:`ImageFiles`, in :class:`~torch.utils.data.Subset` objects for a fraction
    split). :func:`write_image_folder` writes arrays as such a folder.

Arrays you already hold go through :func:`from_arrays` (images ``(n, C, H, W)``,
``(n, H, W)``, or flat features ``(n, d)``).

The torchvision data sets (``mnist``, ``fashion_mnist``, ``cifar10``,
``cifar100``) use their own official train/test split, so ``test_size`` and
``seed`` are validated but otherwise ignored for them. They are never downloaded
unless ``download=True``; with the files missing :func:`load` raises
:class:`DatasetNotFoundError` (a :class:`FileNotFoundError`) naming the folder it
looked in.
"""
from __future__ import annotations

from .digits import from_arrays
from .errors import DatasetIntegrityError, DatasetNotFoundError
from .image_folder import (IMAGE_EXTENSIONS, IN_MEMORY_BYTES, ImageFiles, ImageFolderWarning, default_num_workers,
                           write_image_folder)
from .registry import available, dataset_folder, load
from .split import DataSplit

__all__ = [
    "DataSplit",
    "DatasetNotFoundError",
    "DatasetIntegrityError",
    "available",
    "IMAGE_EXTENSIONS",
    "IN_MEMORY_BYTES",
    "ImageFiles",
    "ImageFolderWarning",
    "dataset_folder",
    "default_num_workers",
    "from_arrays",
    "load",
    "write_image_folder",
]
