"""An iRPE fine-tuning config, loading a tiny AdPE RPE-coord checkpoint, trains and validates on two CPU
processes (gloo) through tools/dist_train.sh, and both ranks end with the same weights."""
import torch

import adpe_mm  # noqa: F401
from adpe_mm.models.pos_embed import decode_lookup
from dist_helpers import differing_entries, dist_train, run_log, with_rank_states
from transfer_helpers import last_checkpoint, tiny_classifier_config
from transfer_helpers import ckpts  # noqa: F401  (session fixture: the tiny pretraining checkpoints)


def test_irpe_finetune_config_trains_on_two_ranks_and_they_end_identical(ckpts, embedded_data, tmp_path):
    tiny = tiny_classifier_config(str(tmp_path), 'finetune/vit-tiny-p16-rpe_1xb8-coslr-10e_embedded.py',
                                  ckpts['rpe'], embedded_data)
    # 16 images: one epoch is 2 iterations of 4 images on each of the 2 ranks, then a distributed validation.
    cfg = with_rank_states(tiny, str(tmp_path / 'config.py'), {'train_dataloader.dataset.indices': 16})
    work_dir = str(tmp_path / 'work')
    _, states = dist_train(cfg, work_dir)
    log = run_log(work_dir)
    assert 'GPU number: 2' in log and 'accuracy/top1' in log

    assert differing_entries(states) == []
    pretrained = torch.load(ckpts['rpe'], map_location='cpu', weights_only=True)['state_dict']
    qkv = 'backbone.layers.0.attn.qkv.weight'
    assert not torch.equal(states[0][qkv], pretrained[qkv])  # it trained
    assert decode_lookup(states[1]['backbone.layers.0.attn.rpe._extra_state'])['index_mode'] == 'relaxed'
    saved = torch.load(last_checkpoint(work_dir), weights_only=True)['state_dict']
    assert differing_entries([saved, states[1]]) == []
