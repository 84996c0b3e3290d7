"""A hook for the resume test: records what a run starts training from (after load_or_resume)."""
import torch
from mmengine.hooks import Hook
from mmengine.registry import HOOKS


@HOOKS.register_module()
class ResumeProbeHook(Hook):
    """Saves ``iter`` and the optimizer state to ``out_file`` at ``before_train``, i.e. before the first step."""

    priority = 'VERY_LOW'

    def __init__(self, out_file: str):
        self.out_file = out_file

    def before_train(self, runner) -> None:
        torch.save(dict(iter=runner.iter, optimizer=runner.optim_wrapper.state_dict()), self.out_file)
