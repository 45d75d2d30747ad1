"""The devices a device-parametrised test runs on: the CPU always, CUDA when present (skipped otherwise).

A list, not a fixture, because ``pytest.mark.parametrize`` needs it when the tests are collected.
"""
import pytest
import torch

DEVICES = [
    "cpu",
    pytest.param(
        "cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA is not available")
    ),
]
