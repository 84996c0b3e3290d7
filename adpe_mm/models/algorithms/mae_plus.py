"""MAE+ (and AdPE, which is MAE+ with adversaries): multi-crop masked image modeling."""
from typing import Dict, List, Optional, Union

import torch
import torch.distributed as torch_dist
from mmengine.dist import get_rank, get_world_size
from mmpretrain.models.selfsup import BaseSelfSupervisor
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample

from adpe_mm.adversary import adversary_norm, named_adversaries, pgd_attack, start_values, substituted


FRESH_STARTS = (None, 'zero', 'random')


@MODELS.register_module()
class MAEPlus(BaseSelfSupervisor):
    """MAE+: k crops per image, every crop encoded whole with masked tokens as a mask token, a light decoder.

    The k crops of a batch of B images come from the data pipeline as a list of k tensors [B, 3, h, w]
    (``MultiCrop`` + ``SelfSupDataPreprocessor``) and are stacked crop-major into one batch of k*B
    independent samples. The loss is the head's (normalised-pixel MSE over masked patches of all crops).

    Training masks come from a counter-based stream: the masks of the t-th training forward are drawn from a
    generator seeded with (process seed, rank, t), and t is the persistent buffer ``mask_step``. A resumed
    run therefore draws exactly the masks the uninterrupted run would have drawn.

    Args:
        backbone (dict): the encoder, ``MAEPlusViT``.
        neck (dict): the decoder, ``MAEPlusDecoder``.
        head (dict): the reconstruction head, mmpretrain's ``MAEPretrainHead``.
        adversary (dict, optional): the AdPE adversary, ``dict(pe='ape' | 'rpe', mode='embed' | 'coord',
            norm='l2' | 'linf', eps=float)``, handed to the backbone and the neck so a config states it
            once. None (default) is the MAE+ baseline.
        log_adv_gap (bool): with an adversary, also compute the clean loss of the same crops and masks
            (no gradient, one extra forward) and log ``adv_gap`` = adversarial - clean loss. Defaults to
            False.
        adversary_steps (int): 0 (default) is the paper's parallel mode: the optimizer ascends the adversaries
            in the weights' step. K > 0 is the sequential mode of the paper's footnote 1: before the forward
            that trains the weights, K PGD ascent steps on the adversaries with the weights frozen (inside
            the loss computation, so it works under DDP, where the model's ``train_step`` is bypassed; the
            adversary gradients are all-reduced explicitly). Pair it with ``lr_mult=0`` for the ``adv_``
            group so the optimizer leaves the adversaries to this loop.
        adversary_step_size (float): PGD step of the sequential mode as a fraction of eps (l_inf: ``+ step *
            eps * sign(g)``; l2: ``+ step * eps * g / ||g||``), followed by the projection. Defaults to 0.5.
        adversary_fresh (str, optional): None (default) keeps the adversaries persistent (the paper's
            parallel mode, or sequential mode with ``adversary_steps``). ``'zero'`` or ``'random'`` makes them
            fresh (beyond the paper): every iteration an attack starts at zero (or uniformly inside the
            ball), takes ``adversary_steps`` >= 1 PGD steps on the batch with the weights frozen and keeps the
            iterate with the highest loss (the start included), and the weights then take their step at that
            adversary. The ``adv_`` parameters stay at zero and out of the graph (they only carry the ball; no
            gradient, so the optimizer wrapper never moves them and logs ``adv_norm`` 0; the attack's size is
            logged as ``adv_attack_norm``), and a weight cannot learn to cancel an adversary that restarts.
            With ``'zero'`` the logged ``adv_gap`` is the chosen iterate's loss minus the start's, >= 0 by
            construction.
        adversary_per_sample (bool): with a fresh coordinate-mode adversary, one shift per crop ([k*B, 2],
            per block for RPE) instead of one for the batch. Defaults to False.
        Other arguments: see ``BaseSelfSupervisor``.
    """

    def __init__(self,
                 backbone: dict,
                 neck: dict,
                 head: dict,
                 adversary: Optional[dict] = None,
                 log_adv_gap: bool = False,
                 adversary_steps: int = 0,
                 adversary_step_size: float = 0.5,
                 adversary_fresh: Optional[str] = None,
                 adversary_per_sample: bool = False,
                 pretrained: Optional[str] = None,
                 data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[Union[dict, list]] = None) -> None:
        if adversary is not None:
            backbone = dict(backbone, adversary=adversary)
            neck = dict(neck, adversary=adversary)
        super().__init__(backbone=backbone, neck=neck, head=head, pretrained=pretrained,
                         data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        self.log_adv_gap = log_adv_gap and adversary is not None
        if isinstance(adversary_steps, bool) or not isinstance(adversary_steps, int) or adversary_steps < 0:
            raise ValueError(f'adversary_steps must be an integer >= 0, got {adversary_steps!r}')
        if adversary_steps and adversary is None:
            raise ValueError(f'adversary_steps={adversary_steps} needs an adversary (model.adversary is None)')
        if not adversary_step_size > 0:
            raise ValueError(f'adversary_step_size must be > 0, got {adversary_step_size!r}')
        if adversary_fresh not in FRESH_STARTS:
            raise ValueError(f'adversary_fresh must be one of {FRESH_STARTS}, got {adversary_fresh!r}')
        if adversary_fresh is not None and not adversary_steps:
            raise ValueError(f'adversary_fresh={adversary_fresh!r} needs adversary_steps >= 1 (the attack\'s PGD '
                             'steps), got adversary_steps=0')
        if adversary_per_sample and (adversary_fresh is None or adversary['mode'] != 'coord'):
            raise ValueError('adversary_per_sample=True needs a fresh (adversary_fresh) coordinate-mode adversary, '
                             f'got adversary_fresh={adversary_fresh!r}, adversary={adversary!r}')
        self.adversary_steps = adversary_steps
        self.adversary_step_size = float(adversary_step_size)
        self.adversary_fresh = adversary_fresh
        self.adversary_per_sample = bool(adversary_per_sample)
        if adversary_fresh is not None:
            # Fresh adversaries are stand-ins: the parameters stay at zero and out of the graph (no gradient,
            # so the optimizer skips them), and DDP must not wait for their gradients.
            self._ddp_params_and_buffers_to_ignore = list(named_adversaries(self))
        self.register_buffer('mask_step', torch.zeros((), dtype=torch.long))

    def step_generator(self, salt: int = 0) -> torch.Generator:
        """A CPU generator of the current training forward, seeded with (process seed, rank, ``mask_step``,
        ``salt``): the masks use salt 0, a random fresh-adversary start salt 1."""
        seed = (torch.initial_seed() * 1_000_003 + get_rank() * 7_919 + int(self.mask_step) + salt * 104_729)
        return torch.Generator().manual_seed(seed % (2**63))

    def draw_mask(self, batch_size: int, device: torch.device) -> torch.Tensor:
        """Masks [B, N] of the next training forward from the resumable counter-based stream."""
        generator = self.step_generator()
        self.mask_step += 1
        return self.backbone.random_masking(batch_size, device, generator)

    def extract_feat(self, inputs: torch.Tensor):
        """Unmasked encoder features of images [B, 3, H, W] (see ``MAEPlusViT.forward``)."""
        return self.backbone(inputs, mask=None)

    @staticmethod
    def stack_crops(inputs: Union[torch.Tensor, List[torch.Tensor]]) -> torch.Tensor:
        """k crop tensors [B, 3, h, w] -> one crop-major batch [k*B, 3, h, w] (sample c*B + b)."""
        if isinstance(inputs, torch.Tensor):
            return inputs
        shapes = {tuple(t.shape) for t in inputs}
        if len(shapes) != 1:
            raise ValueError(f'all crops must have one shape to be stacked, got {sorted(shapes)}')
        return torch.cat(list(inputs), dim=0)

    def reconstruct(self, crops: torch.Tensor, adversarial: bool = True, patch_mask=None):
        """Predicted pixels [B, N, p*p*3] and the mask [B, N] of crop batch [B, 3, h, w]."""
        latent, mask = self.backbone(crops, patch_mask=patch_mask, adversarial=adversarial)
        return self.neck(latent, mask, adversarial=adversarial), mask

    def sample_losses(self, pred: torch.Tensor, crops: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Per-crop reconstruction loss [B]; every crop masks the same number of patches, so its mean is the
        head's loss."""
        target = self.head.construct_target(crops)
        per_patch = self.head.loss_module.penalty(pred, target).mean(dim=-1)  # [B, N]
        mask = mask.to(per_patch.dtype)
        return (per_patch * mask).sum(-1) / mask.sum(-1) / self.head.loss_module.channel

    def attack(self, crops: torch.Tensor, mask: torch.Tensor, start: str, select: str,
               generator: Optional[torch.Generator] = None, steps: Optional[int] = None,
               step_size: Optional[float] = None, on_iterate=None):
        """PGD on the adversaries with the weights frozen (:func:`~adpe_mm.adversary.pgd_attack`), from
        ``start`` ('zero', 'random' from ``generator``, or 'current'); one value per crop with
        ``adversary_per_sample``. ``steps`` and ``step_size`` default to the model's ``adversary_steps`` and
        ``adversary_step_size`` (the probe and the study's attack pass their own)."""
        params = named_adversaries(self)
        batch = crops.shape[0] if self.adversary_per_sample else None
        values = start_values(params, start, batch, generator)
        world = get_world_size()

        def global_mean(t: torch.Tensor) -> torch.Tensor:  # identical adversaries on every rank
            if world > 1:
                t = t.clone()
                torch_dist.all_reduce(t)
                t /= world
            return t

        def loss_fn(v):
            with substituted(self, v):
                pred, _ = self.reconstruct(crops, patch_mask=mask)
            return self.sample_losses(pred, crops, mask)

        return pgd_attack(loss_fn, values, {n: p.adv_ball for n, p in params.items()},
                          self.adversary_steps if steps is None else steps,
                          self.adversary_step_size if step_size is None else step_size,
                          per_sample=batch is not None, select=select, reduce_grad=global_mean,
                          reduce_loss=global_mean, on_iterate=on_iterate)

    def ascend_adversaries(self, crops: torch.Tensor, mask: torch.Tensor) -> None:
        """Sequential mode: ``adversary_steps`` projected ascent steps on the persistent adversaries."""
        result = self.attack(crops, mask, start='current', select='last')
        with torch.no_grad():
            for name, p in named_adversaries(self).items():
                p.copy_(result.values[name])

    def loss(self, inputs: Union[torch.Tensor, List[torch.Tensor]], data_samples: List[DataSample],
             **kwargs) -> Dict[str, torch.Tensor]:
        """The reconstruction loss of all crops (the adversaries ascend it, everything else descends)."""
        crops = self.stack_crops(inputs)  # [k*B, 3, h, w]
        if self.adversary_fresh is not None and self.training:
            return self.fresh_loss(crops)
        patch_mask = self.draw_mask(crops.shape[0], crops.device)
        if self.adversary_steps and self.training:
            self.ascend_adversaries(crops, patch_mask)
        pred, mask = self.reconstruct(crops, patch_mask=patch_mask)
        losses = dict(loss=self.head.loss(pred, crops, mask))
        if self.log_adv_gap:
            with torch.no_grad():
                clean_pred, _ = self.reconstruct(crops, adversarial=False, patch_mask=mask)
                clean = self.head.loss(clean_pred, crops, mask)
            losses['adv_gap'] = losses['loss'].detach() - clean
        return losses

    def fresh_loss(self, crops: torch.Tensor) -> Dict[str, torch.Tensor]:
        """The loss at a fresh adversary: attack the batch, then train the weights at the chosen iterate."""
        generator = self.step_generator(salt=1)  # drawn before draw_mask advances the counter
        patch_mask = self.draw_mask(crops.shape[0], crops.device)
        result = self.attack(crops, patch_mask, start=self.adversary_fresh, select='best', generator=generator)
        with substituted(self, result.values):
            pred, mask = self.reconstruct(crops, patch_mask=patch_mask)
        losses = dict(loss=self.head.loss(pred, crops, mask))
        if self.log_adv_gap:
            if self.adversary_fresh == 'zero':  # the attack's start is the clean forward
                clean = result.start.mean()
            else:
                with torch.no_grad():
                    clean_pred, _ = self.reconstruct(crops, adversarial=False, patch_mask=mask)
                    clean = self.sample_losses(clean_pred, crops, mask).mean()
            losses['adv_gap'] = (result.chosen.mean() - clean).detach()
        balls = {n: p.adv_ball for n, p in named_adversaries(self).items()}
        losses['adv_attack_norm'] = max(  # the attack's size in its ball's norm (mean over crops if per sample)
            adversary_norm(v, balls[n], int(self.adversary_per_sample)).mean() for n, v in result.values.items())
        return losses
