"""Load a pretraining model (MAE, MAE+, AdPE, FGSM) from its config and checkpoint, and images for it."""
import os
import os.path as osp
from typing import List, Optional, Sequence, Tuple

import mmcv
import numpy as np
import torch
from torch import nn

IMAGE_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.bmp', '.webp', '.tif', '.tiff')


def load_pretrainer(config: str, checkpoint: Optional[str], device: str = 'cpu',
                    cfg_options: Optional[dict] = None) -> nn.Module:
    """The ``model`` of a pretraining config in eval mode, with the weights of a runner checkpoint.

    Every parameter must come from the checkpoint and every checkpoint entry must fit the model: a
    config/checkpoint mix-up fails here rather than drawing maps of half-initialised weights. Buffers missing
    from the checkpoint (e.g. counters added after it was written) keep their initial value.
    ``checkpoint=None`` keeps the initialisation.
    """
    import adpe_mm  # noqa: F401  (registers the models and the checkpoint allow-list)
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    from mmengine.runner import CheckpointLoader
    from mmpretrain.registry import MODELS

    cfg = Config.fromfile(config)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    init_default_scope(cfg.get('default_scope', 'mmpretrain'))
    # as the Runner does: a top-level data_preprocessor is the model's when the model names none
    model_cfg = cfg.model.copy()
    if 'data_preprocessor' not in model_cfg and cfg.get('data_preprocessor') is not None:
        model_cfg['data_preprocessor'] = cfg.data_preprocessor
    model = MODELS.build(model_cfg)
    if checkpoint is None:
        model.init_weights()
    else:
        state = CheckpointLoader.load_checkpoint(checkpoint, map_location='cpu')
        state = state.get('state_dict', state)
        missing, unexpected = model.load_state_dict(state, strict=False)
        parameters = dict(model.named_parameters())
        missing_parameters = [k for k in missing if k in parameters]
        if missing_parameters or unexpected:
            raise ValueError(f'{checkpoint} does not fit {config}: missing parameters {missing_parameters}, '
                             f'unexpected entries {unexpected}')
    model.to(device)
    model.eval()  # not chained: some mmpretrain backbones' train() returns None
    return model


def input_size(model: nn.Module) -> int:
    """Side in pixels of the images the encoder was pretrained on (MAE: 224, MAE+ crops: 112)."""
    return int(model.backbone.img_size[0])


def normalisation(model: nn.Module) -> Tuple[List[float], List[float]]:
    """RGB mean and std (0-255 scale) of the model's data preprocessor; (0, 1) when it does not normalise."""
    pre = model.data_preprocessor
    if getattr(pre, '_enable_normalize', False):
        return pre.mean.flatten().tolist(), pre.std.flatten().tolist()
    return [0.] * 3, [1.] * 3


def list_images(paths: Sequence[str], limit: Optional[int] = None) -> List[str]:
    """Image files named by ``paths`` (files, or folders searched recursively, sorted), at most ``limit``."""
    found = []
    for path in paths:
        if osp.isdir(path):
            for root, _, files in sorted(os.walk(path)):
                found += [osp.join(root, f) for f in sorted(files) if f.lower().endswith(IMAGE_EXTENSIONS)]
        elif osp.isfile(path):
            found.append(path)
        else:
            raise FileNotFoundError(f'no image or folder at {path}')
    if not found:
        raise FileNotFoundError(f'no images ({", ".join(IMAGE_EXTENSIONS)}) under {list(paths)}')
    return found[:limit] if limit else found


def centre_square(img: np.ndarray, size: int) -> np.ndarray:
    """Resize the shorter side of an HxWx3 image to ``size`` (bicubic), then crop the central size x size."""
    h, w = img.shape[:2]
    scale = size / min(h, w)
    new_w, new_h = max(size, round(w * scale)), max(size, round(h * scale))
    img = mmcv.imresize(img, (new_w, new_h), interpolation='bicubic')
    top, left = (new_h - size) // 2, (new_w - size) // 2
    return img[top:top + size, left:left + size]


@torch.no_grad()
def load_images(model: nn.Module, paths: Sequence[str], size: Optional[int] = None) -> torch.Tensor:
    """Images as the model sees them, [B, 3, size, size]: centre squares of side ``size`` (default: the
    pretraining input size) passed through the model's own data preprocessor (BGR -> RGB, normalisation)."""
    size = size or input_size(model)
    bgr = [centre_square(mmcv.imread(p, channel_order='bgr'), size) for p in paths]
    batch = torch.from_numpy(np.stack(bgr)).permute(0, 3, 1, 2).contiguous()  # [B, 3, s, s] uint8 BGR
    device = next(model.parameters()).device
    return model.data_preprocessor(dict(inputs=batch.to(device), data_samples=None), False)['inputs']
