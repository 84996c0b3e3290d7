"""AdversaryHook: the adversary/optimizer-wrapper consistency check and the adv_norm / adv_lr logs."""
import glob
import socket
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
import torch.distributed as dist
from mmengine.hooks import LoggerHook
from mmengine.logging import MessageHub
from mmengine.model import BaseModel
from mmengine.optim import OptimWrapper, build_optim_wrapper
from mmengine.registry import DefaultScope
from mmengine.runner import Runner
from torch import nn

from adpe_mm.engine.hooks import AdversaryHook
from adpe_mm.adversary import adversary_parameter

ADV_CFG = dict(
    type='AdvOptimWrapper',
    optimizer=dict(type='AdamW', lr=0.01, weight_decay=0.05),
    paramwise_cfg=dict(custom_keys={'adv_': dict(decay_mult=0., maximize=True, lr_mult=0.5)}))


class ToyModel(BaseModel):
    """``linear(inputs + adv_delta)`` with an MSE loss; ``adv_delta`` is an l2 adversary of radius 0.5."""

    def __init__(self, with_adversary=True):
        super().__init__()
        self.linear = nn.Linear(4, 1)
        if with_adversary:
            self.adv_delta = adversary_parameter(4, 'l2', 0.5)

    def forward(self, inputs, targets=None, mode='tensor'):  # inputs: [N, 4], targets: [N, 1]
        delta = getattr(self, 'adv_delta', None)
        out = self.linear(inputs if delta is None else inputs + delta)
        if mode == 'loss':
            return dict(loss=((out - targets)**2).mean())
        return out


def build(model, cfg=ADV_CFG):
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        return build_optim_wrapper(model, cfg)


def fake_runner(model, optim_wrapper, logger_interval=None, num_batches=100):
    hooks = [] if logger_interval is None else [LoggerHook(interval=logger_interval)]
    return SimpleNamespace(model=model, optim_wrapper=optim_wrapper, hooks=hooks,
                           message_hub=MessageHub.get_instance(f'test-adv-hook-{id(model)}'),
                           train_dataloader=range(num_batches))


def test_adversarial_model_with_plain_optim_wrapper_is_a_runtime_error():
    model = ToyModel()
    runner = fake_runner(model, OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.1)))
    with pytest.raises(RuntimeError, match=r"adversaries \['adv_delta'\] .* OptimWrapper"):
        AdversaryHook().before_train(runner)


def test_model_without_adversaries_and_plain_optim_wrapper_logs_nothing():
    model = ToyModel(with_adversary=False)
    runner = fake_runner(model, OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.1)))
    hook = AdversaryHook(interval=1)
    hook.before_train(runner)
    hook.after_train_iter(runner, batch_idx=0)
    assert 'train/adv_norm' not in runner.message_hub.log_scalars


def test_adversary_left_out_of_the_optimizer_is_a_runtime_error():
    model, other = ToyModel(), ToyModel()
    runner = fake_runner(model, build(other))  # a wrapper that trains another model's adversary
    with pytest.raises(RuntimeError, match=r"\['adv_delta'\] are not in any"):
        AdversaryHook().before_train(runner)


def test_hook_logs_adv_norm_and_lr_every_logger_interval():
    model = ToyModel()
    runner = fake_runner(model, build(model), logger_interval=3)
    hook = AdversaryHook()
    hook.before_train(runner)
    with torch.no_grad():
        model.adv_delta.copy_(torch.tensor([0.3, 0., 0.4, 0.]))
    hook.after_train_iter(runner, batch_idx=0)
    assert 'train/adv_norm' not in runner.message_hub.log_scalars
    hook.after_train_iter(runner, batch_idx=2)
    assert runner.message_hub.get_scalar('train/adv_norm').current() == pytest.approx(0.5)
    assert runner.message_hub.get_scalar('train/adv_lr').current() == pytest.approx(0.005)


def test_interval_without_logger_hook_is_50():
    model = ToyModel()
    hook = AdversaryHook()
    hook.before_train(fake_runner(model, build(model)))
    assert hook.interval == 50


def test_ddp_wrapped_model_is_unwrapped_for_the_check():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        port = s.getsockname()[1]
    dist.init_process_group('gloo', init_method=f'tcp://127.0.0.1:{port}', rank=0, world_size=1)
    try:
        model = nn.parallel.DistributedDataParallel(ToyModel())
        runner = fake_runner(model, OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.1)))
        with pytest.raises(RuntimeError, match=r"\['adv_delta'\]"):  # named as in the bare model
            AdversaryHook().before_train(runner)
    finally:
        dist.destroy_process_group()


def toy_runner(tmp_path, optim_wrapper, custom_hooks=(dict(type='AdversaryHook'), )):
    g = torch.Generator().manual_seed(0)
    dataset = [dict(inputs=torch.randn(4, generator=g), targets=torch.randn(1, generator=g))
               for _ in range(16)]
    return Runner(
        model=ToyModel(),
        work_dir=str(tmp_path),
        train_dataloader=dict(dataset=dataset, batch_size=4, sampler=dict(type='DefaultSampler'),
                              collate_fn=dict(type='default_collate')),
        train_cfg=dict(by_epoch=False, max_iters=6),
        optim_wrapper=optim_wrapper,
        default_hooks=dict(logger=dict(type='LoggerHook', interval=2), checkpoint=None),
        custom_hooks=list(custom_hooks),
        default_scope='mmpretrain',
        experiment_name=f'adv-hook-{tmp_path.name}')


def test_runner_training_logs_adv_norm_and_adv_lr(tmp_path):
    runner = toy_runner(tmp_path, ADV_CFG)
    runner.train()
    norm = runner.message_hub.get_scalar('train/adv_norm').current()
    assert 0 < norm <= 0.5 + 1e-6
    log_text = Path(glob.glob(f'{tmp_path}/*/*.log')[0]).read_text()
    assert 'adv_norm' in log_text and 'adv_lr' in log_text


def test_runner_with_plain_optim_wrapper_and_adversarial_model_fails_before_training(tmp_path):
    runner = toy_runner(tmp_path, dict(type='OptimWrapper', optimizer=dict(type='SGD', lr=0.1)))
    with pytest.raises(RuntimeError, match='AdvOptimWrapper'):
        runner.train()


def test_without_the_hook_a_plain_optim_wrapper_is_refused_at_the_first_step_and_nothing_moves(tmp_path):
    runner = toy_runner(tmp_path, dict(type='OptimWrapper', optimizer=dict(type='AdamW', lr=0.1)), custom_hooks=())
    before = {k: v.clone() for k, v in runner.model.state_dict().items()}
    with pytest.raises(RuntimeError, match=r'param group 0 of AdamW holds adversaries \(\(4,\) in an l2 ball of '
                                           r'eps 0.5\).*AdvOptimWrapper'):
        runner.train()
    assert all(torch.equal(v, runner.model.state_dict()[k]) for k, v in before.items())


def test_the_guard_checks_a_param_group_added_after_the_first_step():
    model = ToyModel()
    optimizer = torch.optim.SGD(model.linear.parameters(), lr=0.1)
    wrapper = OptimWrapper(optimizer)
    wrapper.update_params(model(torch.randn(2, 4), torch.randn(2, 1), mode='loss')['loss'])  # no adversary: fine
    optimizer.add_param_group(dict(params=[model.adv_delta]))
    with pytest.raises(RuntimeError, match='param group 1 of SGD'):
        wrapper.update_params(model(torch.randn(2, 4), torch.randn(2, 1), mode='loss')['loss'])
    assert model.adv_delta.abs().sum() == 0
