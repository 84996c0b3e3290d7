import socket

import pytest
import torch
import torch.multiprocessing as mp

import _ddp_worker


def free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


@pytest.mark.parametrize('mode', ['rpe-coord', 'ape-embed', 'rpe-embed+seq', 'ape-embed+fresh', 'rpe-coord+fresh-ps'])
def test_two_process_ddp_keeps_adversaries_identical_and_equal_to_one_process(tmp_path, mode):
    mp.start_processes(_ddp_worker.run, args=(2, free_port(), str(tmp_path), mode), nprocs=2, join=True,
                       start_method='spawn')
    _ddp_worker.run(0, 1, 0, str(tmp_path), mode)
    rank0, rank1 = (torch.load(tmp_path / f'world2_rank{r}.pth') for r in (0, 1))
    single = torch.load(tmp_path / 'world1_rank0.pth')
    advs = [k for k in single if k.rsplit('.', 1)[-1].startswith('adv_')]
    assert advs
    for key in single:
        assert torch.equal(rank0[key], rank1[key]), key  # all-reduced gradients: identical ranks
        torch.testing.assert_close(rank0[key], single[key], rtol=1e-4, atol=1e-6, msg=key)  # = global batch
    for key in advs:  # and the adversaries really moved (a fresh one is a stand-in: its parameter stays zero)
        assert (rank0[key].abs().sum() == 0) == ('fresh' in mode), key
