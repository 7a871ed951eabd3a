"""Device description and the thread count torch keeps."""

from __future__ import annotations

import torch

from quintet.core.devices import describe_device, keeping_torch_threads


def test_the_cpu_description_counts_threads_in_words() -> None:
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        assert describe_device(torch.device("cpu")) == "cpu (1 thread)"
        torch.set_num_threads(2)
        assert describe_device(torch.device("cpu")) == "cpu (2 threads)"
    finally:
        torch.set_num_threads(before)


def test_the_thread_count_set_inside_the_block_is_undone() -> None:
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        with keeping_torch_threads():
            torch.set_num_threads(1)
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
