"""Masked reconstruction and encoder features of a pretraining checkpoint, from Python in three lines::

    from adpe_mm.apis import MIMInferencer
    inferencer = MIMInferencer('configs/mae_plus/maeplus_vit-tiny-p16_4x112-1xb8-300iter_embedded.py',
                               'work_dirs/maeplus_tiny/iter_300.pth')
    result = inferencer('data/embedded/train/skimage/chelsea.png')[0]  # .reconstruction, .features, ...

Works for every pretraining config of the package (MAE, MAE+, AdPE, FGSM). Each image is brought to the
model's pretraining input as ``tools/analysis_tools/reconstruct.py`` does it (shorter side resized, centre
square; MAE 224 px, MAE+ 112 px crops), masked with the model's mask ratio from ``seed`` and reconstructed.
"""
from dataclasses import dataclass
from typing import List, Optional, Sequence, Union

import mmcv
import numpy as np
import torch

from ..analysis.pretrained import centre_square, input_size, load_pretrainer, normalisation
from ..analysis.reconstruct import reconstruct
from ..visualization.reconstruction import reconstruction_panel

ImageInput = Union[str, np.ndarray]


@dataclass
class MIMResult:
    """What :class:`MIMInferencer` returns per image. Images are RGB uint8 [s, s, 3], s = the input size.

    Attributes:
        image: the centre square the model saw.
        mask: [h, w] bool patch grid, True = masked.
        masked_input: ``image`` with the masked patches grey.
        reconstruction: every patch as predicted, in pixels (a ``norm_pix`` model predicts each patch up to
            its mean and variance; as in MAE's demo these come from the true patch).
        pasted: the visible patches of ``image`` with the predicted masked ones.
        loss: the model's reconstruction loss on the masked patches of this image (its own loss function).
        features: the encoder's output for the unmasked image, as the backbone's ``out_type`` gives it
            (for the MAE+ encoders: the token features [1 + N, D], cls first).
    """
    image: np.ndarray
    mask: np.ndarray
    masked_input: np.ndarray
    reconstruction: np.ndarray
    pasted: np.ndarray
    loss: float
    features: torch.Tensor


class MIMInferencer:
    """A pretraining model (config + runner checkpoint) in eval mode, called on image paths or arrays.

    Args:
        config (str): the pretraining config of the checkpoint.
        checkpoint (str, optional): a runner checkpoint of that config; None keeps the initialisation.
        device (str): where the model runs. Defaults to 'cpu'.
        cfg_options (dict, optional): config overrides, as ``--cfg-options``.
    """

    def __init__(self, config: str, checkpoint: Optional[str] = None, device: str = 'cpu',
                 cfg_options: Optional[dict] = None):
        self.model = load_pretrainer(config, checkpoint, device, cfg_options)
        self.size = input_size(self.model)
        self.device = torch.device(device)

    def prepare(self, image: ImageInput) -> np.ndarray:
        """The BGR uint8 centre square [s, s, 3] of an image path or an HxWx3 BGR uint8 array (as
        ``mmcv.imread`` gives it)."""
        if isinstance(image, str):
            array = mmcv.imread(image, channel_order='bgr')
            if array is None:
                raise FileNotFoundError(f'no readable image at {image}')
        else:
            array = np.asarray(image)
            if array.ndim != 3 or array.shape[2] != 3 or array.dtype != np.uint8:
                raise ValueError(f'an image array must be HxWx3 uint8 (BGR), got shape {array.shape} and dtype '
                                 f'{array.dtype}')
        return centre_square(array, self.size)

    @torch.no_grad()
    def __call__(self, images: Union[ImageInput, Sequence[ImageInput]], seed: int = 0,
                 adversarial: bool = False) -> List[MIMResult]:
        """Reconstruct ``images`` (one path or array, or a list) under masks drawn from ``seed``;
        ``adversarial`` applies the AdPE adversaries (default off: what the model has learned)."""
        if isinstance(images, (str, np.ndarray)):
            images = [images]
        bgr = np.stack([self.prepare(img) for img in images])
        batch = torch.from_numpy(bgr).permute(0, 3, 1, 2).contiguous().to(self.device)  # [B, 3, s, s]
        inputs = self.model.data_preprocessor(dict(inputs=batch, data_samples=None), False)['inputs']
        pred, mask = reconstruct(self.model, inputs, seed=seed, adversarial=adversarial)  # [B, N, P], [B, N]
        head = self.model.head
        losses = [float(head.loss(pred[i:i + 1], inputs[i:i + 1], mask[i:i + 1])) for i in range(len(bgr))]
        mean, std = normalisation(self.model)
        panel = reconstruction_panel(pred, mask, inputs, head.patch_size, mean, std, norm_pix=bool(head.norm_pix))
        features = self.model.extract_feat(inputs)
        features = features[-1] if isinstance(features, (tuple, list)) else features
        s, grid = self.size, self.size // head.patch_size
        results = []
        for i in range(len(bgr)):
            row = panel[i * s:(i + 1) * s]  # [s, 4s, 3]: original | masked input | reconstruction | pasted
            _, masked_input, recon, pasted = (row[:, j * s:(j + 1) * s] for j in range(4))
            results.append(MIMResult(image=np.ascontiguousarray(bgr[i][..., ::-1]), mask=mask[i].bool().reshape(grid, grid).cpu().numpy(),
                                     masked_input=masked_input, reconstruction=recon, pasted=pasted,
                                     loss=losses[i], features=features[i].cpu()))
        return results
