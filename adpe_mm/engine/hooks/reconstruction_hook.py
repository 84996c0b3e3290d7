"""Write reconstruction panels of a fixed probe batch during MAE+/AdPE pretraining."""
import os.path as osp
from typing import Optional

import mmcv
import torch
from mmengine.dist import master_only
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmpretrain.registry import HOOKS

from ...analysis.pretrained import normalisation
from ...visualization import reconstruction_panel


@HOOKS.register_module()
class ReconstructionHook(Hook):
    """Every ``interval`` iterations and after training, save ``<work_dir>/reconstructions/iter_<n>.png``
    and send the same panel (RGB) to the runner's visualizer as image ``reconstructions`` at step ``n``.

    The probe is the first ``num_images`` crops of the first training batch, kept for the whole run, and
    its mask is drawn from a private generator with a fixed seed, so the panels are comparable across
    iterations and the training run's own random stream is not disturbed. The model must provide
    ``reconstruct(crops, adversarial=...)`` (``MAEPlus``).

    Args:
        interval (int): iterations between panels. Defaults to 1000.
        num_images (int): crops per panel. Defaults to 4.
        adversarial (bool): apply the adversaries when reconstructing. Defaults to False (what the model
            has learned, not what the adversary does to it).
        seed (int): seed of the probe masks. Defaults to 0.
    """
    priority = 'LOW'

    def __init__(self, interval: int = 1000, num_images: int = 4, adversarial: bool = False, seed: int = 0):
        if interval < 1 or num_images < 1:
            raise ValueError(f'ReconstructionHook needs interval >= 1 and num_images >= 1, got '
                             f'interval={interval}, num_images={num_images}')
        self.interval = interval
        self.num_images = num_images
        self.adversarial = adversarial
        self.seed = seed
        self._probe: Optional[dict] = None

    def before_train_iter(self, runner, batch_idx: int, data_batch=None) -> None:
        if self._probe is None and data_batch is not None:
            self._probe = data_batch

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        if self.every_n_train_iters(runner, self.interval):
            self.save(runner, runner.iter + 1)

    def after_train(self, runner) -> None:
        self.save(runner, runner.iter)

    @master_only
    def save(self, runner, iteration: int) -> Optional[str]:
        """Write the panel of the probe batch for ``iteration``; return its path."""
        if self._probe is None:
            return None
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        was_training = model.training
        model.eval()
        with torch.no_grad():
            data = model.data_preprocessor(self._probe, False)
            crops = model.stack_crops(data['inputs'])[:self.num_images]
            # fixed masks from a private generator: comparable panels, training's random stream untouched
            patch_mask = model.backbone.fixed_masking(crops.shape[0], crops.device, self.seed)
            pred, mask = model.reconstruct(crops, adversarial=self.adversarial, patch_mask=patch_mask)
            panel = reconstruction_panel(pred, mask, crops, model.head.patch_size, *normalisation(model),
                                         norm_pix=model.head.norm_pix)
        model.train(was_training)
        path = osp.join(runner.work_dir, 'reconstructions', f'iter_{iteration}.png')
        mmcv.imwrite(panel[..., ::-1], path)  # RGB -> BGR for cv2
        # and to the visualizer's backends (TensorBoard with tools/train.py --tensorboard)
        runner.visualizer.add_image('reconstructions', panel, step=iteration)
        runner.logger.info(f'reconstructions written to {path}')
        return path
