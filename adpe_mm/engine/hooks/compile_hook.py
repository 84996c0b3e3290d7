"""Opt-in ``torch.compile`` of the encoder and the decoder, in place, before training."""
from typing import Sequence

from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.model import is_model_wrapper
from mmpretrain.registry import HOOKS


@HOOKS.register_module()
class CompileHook(Hook):
    """Compile the model's ``backbone`` and ``neck`` (or other submodules) with ``nn.Module.compile``.

    Why not mmengine's own ``compile=True`` runner option: it compiles the whole ``model.train_step`` (data
    preprocessor, loss parsing, backward and the optimizer wrapper with its adversary step hooks), which
    dynamo (torch 2.14) fails on for these models (``InternalTorchDynamoError``). Compiling the two
    transformers is where the FLOPs are; masking, the loss and the optimizer stay eager.

    ``nn.Module.compile`` compiles the module's ``__call__`` in place, so parameter names, the state dict,
    checkpoints, DDP and the optimizer's param groups are exactly those of the eager model. The first
    iterations (and the first of every new input shape) are slow while the graphs are built.

    Args:
        enable (bool): compile, or do nothing (the default, so that the hook can sit in a shared config and be
            switched with ``--cfg-options default_hooks.compile.enable=True``). Defaults to False.
        targets (sequence of str): attribute names of the submodules to compile. Defaults to
            ``('backbone', 'neck')``.
        **compile_kwargs: passed to ``torch.compile`` (``backend``, ``mode``, ``dynamic``, ...).
    """

    priority = 'VERY_HIGH'

    def __init__(self, enable: bool = False, targets: Sequence[str] = ('backbone', 'neck'), **compile_kwargs):
        if isinstance(targets, str) or not targets:
            raise ValueError(f'targets must be a non-empty sequence of submodule names, got {targets!r}')
        self.enable = bool(enable)
        self.targets = tuple(targets)
        self.compile_kwargs = compile_kwargs

    def before_train(self, runner) -> None:
        if not self.enable:
            return
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        missing = [t for t in self.targets if getattr(model, t, None) is None]
        if missing:
            raise ValueError(f'CompileHook: {type(model).__name__} has no submodule(s) {missing} to compile')
        for name in self.targets:
            getattr(model, name).compile(**self.compile_kwargs)
        print_log(f'CompileHook: compiled {list(self.targets)} with {self.compile_kwargs or "defaults"}',
                  logger='current')
