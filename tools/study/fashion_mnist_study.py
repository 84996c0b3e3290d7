"""A small real-data study on Fashion-MNIST: MAE vs MAE+ vs AdPE (4 modes) vs random init, on a 2-core CPU.

Every (method, seed) run pretrains a tiny ViT (except ``random``), then evaluates its encoder by
  * a linear probe: frozen encoder, average-pooled patch features of the 56 px image (14x14 tokens),
    standardised, a linear classifier fitted with L-BFGS;
  * fine-tuning: the whole encoder + a linear head, AdamW, a short cosine schedule;
  * the mean attention distance per block (``adpe_mm.analysis``) of the pretrained encoder at 56 px;
and writes ``<out>/runs/<method>_s<seed>.json`` (finished runs are skipped, so the script resumes).
``random`` is the fine-tune schedule from random init (its linear probe reads the frozen random encoder). At the end it writes ``aggregate.json``, ``table.md``
and plots (``accuracy.png``, ``attention_distance.png``, ``pretrain_loss.png``) under ``<out>``.

Data: Debian's ``dataset-fashion-mnist`` (idx gz files, read with numpy; installed with apt-get if missing
and ``--install-data`` is given). 28x28 grayscale -> 3 identical channels; the full image is upsampled to
56 px (patch 4 -> 14x14 tokens, like MAE's 224/16); MAE+ crops are 28 px random-resized crops (7x7 tokens,
like the paper's 112/16). ``--synthetic`` replaces the data with random images for the tests ONLY.

    python tools/study/fashion_mnist_study.py --pilot --out work_dirs/fmnist_pilot
    python tools/study/fashion_mnist_study.py --seeds 0 1 2 --out work_dirs/fmnist_study
"""
import argparse
import contextlib
import fcntl
import gzip
import json
import math
import os
import os.path as osp
import subprocess
import sys
import time
from typing import Dict, List, Optional

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

DATA_DIR = '/usr/share/datasets/fashion-mnist'
FILES = dict(train_images='train-images-idx3-ubyte.gz', train_labels='train-labels-idx1-ubyte.gz',
             test_images='t10k-images-idx3-ubyte.gz', test_labels='t10k-labels-idx1-ubyte.gz')
IMG = 56  # full image, 14x14 patches of 4 px
CROP = 28  # MAE+ crop, 7x7 patches
PATCH = 4
ARCH = dict(embed_dims=96, num_layers=4, num_heads=4, feedforward_channels=384)
DECODER = dict(decoder_embed_dim=64, decoder_depth=2, decoder_num_heads=4)
RPE = dict(ratio=1.9, index_mode='relaxed')
ADV_STEPS_TO_EPS = 50  # the adversary's step is eps / 50: it can cross its ball in ~50 steps

# eps from Table A.2 (the crops are 7x7 tokens as in the paper, so patch units carry over unscaled)
METHODS: Dict[str, dict] = {
    'mae': dict(kind='mae'),
    'maeplus': dict(kind='maeplus'),
    'maeplus_rpe': dict(kind='maeplus', rpe=True),
    'adpe_ape_embed': dict(kind='maeplus', adversary=dict(pe='ape', mode='embed', norm='l2', eps=3.)),
    'adpe_ape_coord': dict(kind='maeplus', adversary=dict(pe='ape', mode='coord', norm='l2', eps=3.)),
    'adpe_rpe_embed': dict(kind='maeplus', rpe=True, adversary=dict(pe='rpe', mode='embed', norm='linf', eps=20.)),
    # run with the original lookup, which clamps the index at the last bucket (docs/method_notes.md)
    'adpe_rpe_coord': dict(kind='maeplus', rpe=True, adversary=dict(pe='rpe', mode='coord', norm='linf', eps=20.,
                                                                    edge='clamp')),
    'random': dict(kind='random'),
    # Issue 12's rows (docs/study.md, "Adversaries that stay adversarial"):
    # the corrected RPE-coord geometry (no zero-gradient region inside the ball)
    'adpe_rpe_coord_fade': dict(kind='maeplus', rpe=True, adversary=dict(pe='rpe', mode='coord', norm='linf',
                                                                         eps=20., edge='fade')),
    # the per-bucket RPE-embed adversary at a budget on the scale of the learned tables (l2 norm 1.8-3.6 per
    # block in MAE+ with iRPE, finding 3), not the paper's l_inf 20 per entry
    'adpe_rpe_embed_l2eps1': dict(kind='maeplus', rpe=True, adversary=dict(pe='rpe', mode='embed', norm='l2',
                                                                           eps=1.)),
    # fresh adversaries: one PGD step of the whole ball from zero every iteration, best iterate kept
    'adpe_ape_embed_fresh': dict(kind='maeplus', adversary=dict(pe='ape', mode='embed', norm='l2', eps=3.),
                                 fresh=True),
    'adpe_rpe_coord_fresh': dict(kind='maeplus', rpe=True, adversary=dict(pe='rpe', mode='coord', norm='linf',
                                                                          eps=20., edge='fade'), fresh=True),
}
# a fresh method's attack: adversary_steps PGD steps of adversary_step_size * eps from zero
FRESH = dict(adversary_steps=1, adversary_step_size=1., adversary_fresh='zero')

BASELINES = ('mae', 'maeplus', 'maeplus_rpe')  # every other method is compared with these, seed by seed

DEFAULTS = dict(pretrain_images=10000, pretrain_epochs=5, batch_size=64, crops=4, lr=1e-3,
                probe_images=10000, finetune_images=10000, finetune_epochs=5, finetune_lr=1e-3, layer_decay=1.,
                test_images=10000, attn_images=256)
PILOT = dict(pretrain_images=2048, pretrain_epochs=3, batch_size=64, crops=4, lr=1e-3,
             probe_images=2000, finetune_images=2000, finetune_epochs=1, finetune_lr=1e-3, layer_decay=1.,
             test_images=2000, attn_images=128)


# ----------------------------------------------------------------------------------------------- data
def read_idx(path: str) -> np.ndarray:
    """An idx file (optionally gzipped) as a numpy array (big-endian header: 0, 0, dtype code, ndim)."""
    opener = gzip.open if path.endswith('.gz') else open
    with opener(path, 'rb') as f:
        data = f.read()
    if data[0] != 0 or data[1] != 0:
        raise ValueError(f'{path}: not an idx file')
    dtypes = {0x08: np.uint8, 0x09: np.int8, 0x0B: '>i2', 0x0C: '>i4', 0x0D: '>f4', 0x0E: '>f8'}
    dtype, ndim = np.dtype(dtypes[data[2]]), data[3]
    shape = tuple(int.from_bytes(data[4 + 4 * i:8 + 4 * i], 'big') for i in range(ndim))
    arr = np.frombuffer(data, dtype=dtype, offset=4 + 4 * ndim)
    if arr.size != int(np.prod(shape)):
        raise ValueError(f'{path}: {arr.size} values for shape {shape}')
    return arr.reshape(shape)


def ensure_data(data_dir: str, install: bool) -> None:
    if all(osp.exists(osp.join(data_dir, f)) for f in FILES.values()):
        return
    if not install:
        sys.exit(f'Fashion-MNIST not found in {data_dir}: `apt-get install -y dataset-fashion-mnist` '
                 '(or pass --install-data)')
    subprocess.run(['apt-get', 'install', '-y', 'dataset-fashion-mnist'], check=True)


def load_data(data_dir: str, synthetic: bool = False) -> dict:
    """uint8 images [N, 28, 28] and int64 labels of the train and test splits."""
    if synthetic:  # FOR TESTS ONLY: random images whose label is encoded in their mean brightness
        g = np.random.default_rng(0)
        out = {}
        for split, n in (('train', 600), ('test', 200)):
            y = g.integers(0, 10, n)
            x = g.integers(0, 60, (n, 28, 28)) + (y * 19)[:, None, None]
            out[split] = (x.astype(np.uint8), y.astype(np.int64))
        return out
    return {split: (read_idx(osp.join(data_dir, FILES[f'{split}_images'])),
                    read_idx(osp.join(data_dir, FILES[f'{split}_labels'])).astype(np.int64))
            for split in ('train', 'test')}


def to_tensor(images: np.ndarray, mean: float, std: float) -> torch.Tensor:
    """uint8 [N, 28, 28] -> normalised float [N, 3, 28, 28] (grayscale replicated to 3 channels)."""
    x = (torch.from_numpy(np.array(images, dtype=np.float32)) - mean) / std
    return x[:, None].expand(-1, 3, -1, -1).contiguous()


def upsample(x: torch.Tensor, size: int = IMG) -> torch.Tensor:
    return F.interpolate(x, size=(size, size), mode='bilinear', align_corners=False)


def random_resized_crops(x: torch.Tensor, out_size: int, generator: torch.Generator,
                         scale=(0.35, 1.0), ratio=(3 / 4, 4 / 3), flip: bool = True) -> torch.Tensor:
    """One random-resized (and randomly flipped) crop per image of x [B, C, H, W] -> [B, C, out, out],
    batched with an affine sampling grid."""
    B = x.shape[0]
    area = torch.empty(B).uniform_(*scale, generator=generator)
    logr = torch.empty(B).uniform_(math.log(ratio[0]), math.log(ratio[1]), generator=generator)
    r = torch.exp(logr)
    w = torch.sqrt(area * r).clamp(max=1.)  # fraction of the width
    h = torch.sqrt(area / r).clamp(max=1.)
    cx = (torch.rand(B, generator=generator) * (1 - w) + w / 2) * 2 - 1  # centre in [-1, 1]
    cy = (torch.rand(B, generator=generator) * (1 - h) + h / 2) * 2 - 1
    sx = w * (torch.where(torch.rand(B, generator=generator) < 0.5, -1., 1.) if flip else 1.)
    theta = torch.zeros(B, 2, 3)
    theta[:, 0, 0], theta[:, 0, 2], theta[:, 1, 1], theta[:, 1, 2] = sx, cx, h, cy
    grid = F.affine_grid(theta, (B, x.shape[1], out_size, out_size), align_corners=False)
    return F.grid_sample(x, grid, mode='bilinear', padding_mode='border', align_corners=False)


# --------------------------------------------------------------------------------------------- models
def pretrainer_cfg(method: str, adversary: Optional[dict] = None) -> dict:
    """The model config of ``method``'s pretraining; an MAE+ variant gets ``adversary`` instead of its own when
    given (``positional_attack.py`` attacks every pretrained model with every adversary that fits it)."""
    spec = dict(METHODS[method])
    if adversary is not None:
        spec['adversary'] = adversary
        spec.pop('fresh', None)  # the caller attacks the model itself
    head = dict(type='MAEPretrainHead', norm_pix=True, patch_size=PATCH,
                loss=dict(type='PixelReconstructionLoss', criterion='L2'))
    if spec['kind'] == 'mae':
        cfg = dict(type='MAE', backbone=dict(type='MAEViT', arch=ARCH, img_size=IMG, patch_size=PATCH),
                   neck=dict(type='MAEPretrainDecoder', num_patches=(IMG // PATCH)**2, patch_size=PATCH,
                             embed_dim=ARCH['embed_dims'], **DECODER), head=head)
    else:
        rpe = RPE if spec.get('rpe') else None
        cfg = dict(type='MAEPlus', adversary=spec.get('adversary'), log_adv_gap=spec.get('adversary') is not None,
                   **(FRESH if spec.get('fresh') else {}),
                   backbone=dict(type='MAEPlusViT', arch=ARCH, img_size=CROP, patch_size=PATCH, rpe=rpe),
                   neck=dict(type='MAEPlusDecoder', num_patches=(CROP // PATCH)**2, patch_size=PATCH,
                             embed_dim=ARCH['embed_dims'], rpe=rpe, **DECODER), head=head)
    return cfg


def build_pretrainer(method: str, adversary: Optional[dict] = None) -> nn.Module:
    """The initialised pretraining model of :func:`pretrainer_cfg`."""
    import adpe_mm  # noqa: F401
    from mmpretrain.registry import MODELS
    model = MODELS.build(pretrainer_cfg(method, adversary))
    model.init_weights()
    return model


def build_encoder(method: str, state: Optional[dict], drop_path: float = 0.) -> nn.Module:
    """The downstream ViT at 56 px (IRPEViT, iRPE when the pretraining had it), average-pooled output,
    loaded with the checked encoder loader (the APE is resized from the crop grid to 14x14)."""
    import adpe_mm  # noqa: F401
    from adpe_mm.models.backbones.pretrained import load_pretrained_encoder
    from mmpretrain.registry import MODELS
    rpe = RPE if METHODS[method].get('rpe') else None
    enc = MODELS.build(dict(type='IRPEViT', arch=ARCH, img_size=IMG, patch_size=PATCH, rpe=rpe,
                            out_type='avg_featmap', drop_path_rate=drop_path))
    enc.init_weights()
    if state is not None:
        load_pretrained_encoder(enc, dict(state_dict=state), prefix='backbone.')
    return enc


class Classifier(nn.Module):

    def __init__(self, encoder: nn.Module, num_classes: int = 10):
        super().__init__()
        self.encoder = encoder
        self.head = nn.Linear(ARCH['embed_dims'], num_classes)
        nn.init.trunc_normal_(self.head.weight, std=0.02)
        nn.init.zeros_(self.head.bias)

    def forward(self, x):
        return self.head(self.encoder(x)[-1])


def cosine(step: int, total: int, warmup: int) -> float:
    if step < warmup:
        return (step + 1) / warmup
    return 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, total - warmup)))


# ------------------------------------------------------------------------------------------- training
def pretrain(method: str, x_train: torch.Tensor, cfg: dict, seed: int, log_every: int = 10) -> dict:
    """Pretrain on x_train [N, 3, 28, 28]; returns the model state, the loss / adv_gap curves and timing."""
    from mmengine.optim import build_optim_wrapper
    from mmengine.registry import DefaultScope
    spec = METHODS[method]
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    model = build_pretrainer(method)
    lr, adv = cfg['lr'], spec.get('adversary')
    optim = dict(type='AdamW', lr=lr, weight_decay=0.05, betas=(0.9, 0.95))
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        if adv is None:
            wrapper = build_optim_wrapper(model, dict(type='OptimWrapper', optimizer=optim))
        else:  # signed (l_inf) / normalised (l2) PGD ascent whose step crosses eps in ADV_STEPS_TO_EPS steps
            wrapper = build_optim_wrapper(model, dict(
                type='AdvOptimWrapper', optimizer=optim, adv_update='ascent',
                adv_grad_transform='sign' if adv['norm'] == 'linf' else 'l2_normalize',
                paramwise_cfg=dict(custom_keys={'adv_': dict(
                    decay_mult=0., maximize=True, lr_mult=adv['eps'] / ADV_STEPS_TO_EPS / lr)})))
    groups = wrapper.optimizer.param_groups
    base = [pg['lr'] for pg in groups]
    n, bs = x_train.shape[0], cfg['batch_size']
    steps_per_epoch = n // bs
    total = steps_per_epoch * cfg['pretrain_epochs']
    warmup = max(1, total // 20)
    curve, gaps, buf, gbuf = [], [], [], []
    model.train()
    t0 = time.time()
    step = 0
    for _ in range(cfg['pretrain_epochs']):
        perm = torch.randperm(n, generator=g)
        for i in range(steps_per_epoch):
            imgs = x_train[perm[i * bs:(i + 1) * bs]]
            for pg, b in zip(groups, base):
                pg['lr'] = b * cosine(step, total, warmup)
            if spec['kind'] == 'mae':
                losses = model.loss(random_resized_crops(imgs, IMG, g), [])
            else:
                model.log_adv_gap = adv is not None and step % log_every == 0
                losses = model.loss([random_resized_crops(imgs, CROP, g) for _ in range(cfg['crops'])], [])
            wrapper.update_params(losses['loss'])
            buf.append(losses['loss'].item())
            if 'adv_gap' in losses:
                gbuf.append(losses['adv_gap'].item())
            step += 1
            if step % log_every == 0 or step == total:
                curve.append([step, float(np.mean(buf))])
                buf = []
                if gbuf:
                    gaps.append([step, float(np.mean(gbuf))])
                    gbuf = []
    wall = time.time() - t0
    advs = {k: dict(norm=float(p.detach().float().norm()), absmax=float(p.detach().abs().max()))
            for k, p in model.named_parameters() if k.rsplit('.', 1)[-1].startswith('adv_')}
    return dict(state={k: v.detach().clone() if torch.is_tensor(v) else v
                       for k, v in model.state_dict().items()}, loss_curve=curve,
                adv_gap_curve=gaps, pretrain_wall_s=wall, pretrain_steps=total,
                pretrain_images_seen=total * bs, adversaries_final=advs)


@torch.no_grad()
def features(enc: nn.Module, x: torch.Tensor, bs: int = 256) -> torch.Tensor:
    enc.eval()
    return torch.cat([enc(upsample(x[i:i + bs]))[-1] for i in range(0, x.shape[0], bs)])


def linear_probe(enc, xtr, ytr, xte, yte, wd: float = 1e-4, iters: int = 100) -> float:
    ftr, fte = features(enc, xtr), features(enc, xte)
    mu, sd = ftr.mean(0), ftr.std(0) + 1e-6
    ftr, fte = (ftr - mu) / sd, (fte - mu) / sd
    lin = nn.Linear(ftr.shape[1], 10)
    opt = torch.optim.LBFGS(lin.parameters(), lr=1, max_iter=iters, history_size=20,
                            line_search_fn='strong_wolfe')

    def closure():
        opt.zero_grad()
        loss = F.cross_entropy(lin(ftr), ytr) + wd * lin.weight.pow(2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    with torch.no_grad():
        return float((lin(fte).argmax(1) == yte).float().mean())


def finetune_param_groups(clf: Classifier, lr: float, layer_decay: float, weight_decay: float = 0.05) -> list:
    """One AdamW group per parameter: lr scaled by ``layer_decay ** (top - depth)`` with mmpretrain's ViT
    depth (0 embeddings, i + 1 block i, top = norm and head), no weight decay on norms, biases, tokens, PE."""
    groups = []
    for name, p in clf.named_parameters():
        depth, num = clf.encoder.get_layer_depth(name, prefix='encoder.')
        plain = p.ndim == 1 or name.endswith(('cls_token', 'pos_embed'))
        base = lr * layer_decay**(num - 1 - depth)
        groups.append(dict(params=[p], lr=base, base_lr=base, weight_decay=0. if plain else weight_decay))
    return groups


def finetune(method, state, xtr, ytr, xte, yte, cfg, seed) -> dict:
    torch.manual_seed(seed + 1000)
    g = torch.Generator().manual_seed(seed + 1000)
    clf = Classifier(build_encoder(method, state, drop_path=0.1))
    opt = torch.optim.AdamW(finetune_param_groups(clf, cfg['finetune_lr'], cfg['layer_decay']), betas=(0.9, 0.999))
    n, bs = xtr.shape[0], 64
    total = (n // bs) * cfg['finetune_epochs']
    warmup, step = max(1, total // 10), 0
    t0 = time.time()
    for _ in range(cfg['finetune_epochs']):
        clf.train()
        perm = torch.randperm(n, generator=g)
        for i in range(n // bs):
            idx = perm[i * bs:(i + 1) * bs]
            for pg in opt.param_groups:
                pg['lr'] = pg['base_lr'] * cosine(step, total, warmup)
            imgs = random_resized_crops(xtr[idx], IMG, g, scale=(0.6, 1.))
            loss = F.cross_entropy(clf(imgs), ytr[idx], label_smoothing=0.1)
            opt.zero_grad()
            loss.backward()
            opt.step()
            step += 1
    wall = time.time() - t0
    clf.eval()
    with torch.no_grad():
        pred = torch.cat([clf(upsample(xte[i:i + 256])).argmax(1) for i in range(0, xte.shape[0], 256)])
    return dict(finetune_acc=float((pred == yte).float().mean()), finetune_wall_s=wall, finetune_steps=total)


def pretrained_model(method: str, seed: int, x_train: torch.Tensor, cfg: dict, ckpt: Optional[str]) -> dict:
    """``pretrain``'s output, read from ``ckpt`` when an earlier call wrote it with the same sizes, else
    computed and written there atomically (the whole pretraining model state and its record)."""
    key = {k: cfg[k] for k in ('pretrain_images', 'pretrain_epochs', 'batch_size', 'crops', 'lr')}
    if ckpt is not None and osp.exists(ckpt):
        saved = torch.load(ckpt, map_location='cpu', weights_only=True)
        if saved.get('sizes') == key:
            print(f'[reuse] {method} seed {seed}: pretrained model from {ckpt}', flush=True)
            return dict(saved['record'], state=saved['state'])
        print(f'[stale] {ckpt} was pretrained with {saved.get("sizes")}, not {key}: pretraining again', flush=True)
    out = pretrain(method, x_train, cfg, seed)
    if ckpt is not None:
        os.makedirs(osp.dirname(ckpt), exist_ok=True)
        record = {k: v for k, v in out.items() if k != 'state'}
        torch.save(dict(sizes=key, state=out['state'], record=record), ckpt + '.tmp')
        os.replace(ckpt + '.tmp', ckpt)
    return out


def run_one(method: str, seed: int, data: dict, cfg: dict, ckpt: Optional[str] = None) -> dict:
    from adpe_mm.analysis.attention_distance import attention_distance_per_layer
    rec = dict(method=method, seed=seed, config=dict(cfg, arch=ARCH, decoder=DECODER, spec=METHODS[method]))
    xtr, ytr, xte, yte = data['xtr'], data['ytr'], data['xte'], data['yte']
    torch.manual_seed(seed)
    state = None
    if METHODS[method]['kind'] != 'random':
        out = pretrained_model(method, seed, xtr[:cfg['pretrain_images']], cfg, ckpt)
        state = out.pop('state')
        rec.update(out)
    else:
        rec['pretrain_wall_s'] = 0.
    torch.manual_seed(seed + 500)  # the same probe whether pretraining ran now or was read back
    enc = build_encoder(method, state)  # random: the probe reads the frozen randomly initialised encoder
    t0 = time.time()
    rec['linear_probe_acc'] = linear_probe(enc, xtr[:cfg['probe_images']], ytr[:cfg['probe_images']], xte, yte)
    rec['linear_probe_wall_s'] = time.time() - t0
    dist = attention_distance_per_layer(enc, upsample(xte[:cfg['attn_images']]), batch_size=64)
    rec['attention_distance'] = dist.mean(1).tolist()  # per layer, mean over heads, in patches
    rec.update(finetune(method, state, xtr[:cfg['finetune_images']], ytr[:cfg['finetune_images']], xte, yte,
                        cfg, seed))
    return rec


def write_json(obj, path: str) -> None:
    """``obj`` as JSON at ``path``, written to a temporary file and renamed (never a half-written record)."""
    with open(path + '.tmp', 'w') as f:
        json.dump(obj, f)
    os.replace(path + '.tmp', path)


@contextlib.contextmanager
def claim(lock_path: str):
    """Yields True when this process holds an exclusive lock on ``lock_path`` (False when another process
    does), so several workers (``--threads 1`` each) can share one ``--out``. The lock is the kernel's
    (flock), so a killed worker never leaves a stale one."""
    f = open(lock_path, 'a+')
    try:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)
    finally:
        f.close()


# ----------------------------------------------------------------------------------------- reporting
def mean_std(vals: List[float]) -> dict:
    return dict(mean=float(np.mean(vals)), std=float(np.std(vals, ddof=1)) if len(vals) > 1 else 0., n=len(vals))


def aggregate(runs: List[dict], methods: List[str]) -> dict:
    agg = {}
    for m in methods:
        rs = [r for r in runs if r['method'] == m]
        if not rs:
            continue
        a = dict(seeds=[r['seed'] for r in rs])
        per_run = {key: [r[key] for r in rs if key in r]
                   for key in ('linear_probe_acc', 'finetune_acc', 'pretrain_wall_s', 'linear_probe_wall_s',
                               'finetune_wall_s')}
        per_run['wall_s'] = [run_wall_s(r) for r in rs]
        per_run['final_pretrain_loss'] = [r['loss_curve'][-1][1] for r in rs if r.get('loss_curve')]
        # mean adversarial - clean loss over the second half of pretraining
        per_run['adv_gap_late'] = [float(np.mean([v for _, v in c[len(c) // 2:]]))
                                   for c in (r.get('adv_gap_curve') for r in rs) if c]
        a.update({key: mean_std(vals) for key, vals in per_run.items() if vals})
        dist = np.array([r['attention_distance'] for r in rs])  # [runs, blocks]
        a['attention_distance'] = dist.mean(0).tolist()
        a['attention_distance_std'] = (dist.std(0, ddof=1) if len(rs) > 1 else np.zeros(dist.shape[1])).tolist()
        agg[m] = a
    for m, a in agg.items():  # a baseline is compared with the baselines before it, any other method with all
        bases = BASELINES[:BASELINES.index(m)] if m in BASELINES else BASELINES
        a['paired'] = {b: {key: paired_difference(runs, m, b, key) for key in ('linear_probe_acc', 'finetune_acc')}
                       for b in bases if b in agg}
    return agg


def run_wall_s(run: dict) -> float:
    """Pretraining + linear probe + fine-tuning seconds of a run. Not ``total_wall_s``: a run that reused a
    saved pretrained model did not pretrain in its own process, but its pretraining time is in the JSON."""
    return sum(run.get(k, 0.) for k in ('pretrain_wall_s', 'linear_probe_wall_s', 'finetune_wall_s'))


def paired_difference(runs: List[dict], method: str, baseline: str, key: str) -> Optional[dict]:
    """``method`` - ``baseline`` of ``key`` over the seeds both have (a seed fixes the image order of both, and
    for two MAE+ variants also their crops and masks): mean, sample std, n and the half-width of the 95%
    Student-t interval of the mean."""
    from scipy.stats import t as student_t
    by_seed = {(r['method'], r['seed']): r[key] for r in runs if key in r}
    diffs = [by_seed[(method, s)] - by_seed[(baseline, s)] for (m, s) in sorted(by_seed)
             if m == method and (baseline, s) in by_seed]
    if not diffs:
        return None
    n, mean = len(diffs), float(np.mean(diffs))
    std = float(np.std(diffs, ddof=1)) if n > 1 else float('nan')
    ci95 = float(student_t.ppf(0.975, n - 1) * std / math.sqrt(n)) if n > 1 else float('nan')
    return dict(mean=mean, std=std, n=n, ci95=ci95, diffs=diffs)


def fmt(d, scale=100., digits=1):
    if d is None:
        return '-'
    return f"{d['mean'] * scale:.{digits}f} ± {d['std'] * scale:.{digits}f}" if d['n'] > 1 \
        else f"{d['mean'] * scale:.{digits}f}"


def table(agg: dict) -> str:
    lines = ['| method | seeds | linear probe acc (%) | fine-tune acc (%) | final pretrain loss | adv gap (late) '
             '| mean attn dist per block (patches) | pretrain wall (s) | fine-tune wall (s) | run wall (s) |',
             '|---|---|---|---|---|---|---|---|---|---|']
    for m, a in agg.items():
        lines.append(f"| {m} | {len(a['seeds'])} | {fmt(a.get('linear_probe_acc'))} | {fmt(a.get('finetune_acc'))} "
                     f"| {fmt(a.get('final_pretrain_loss'), 1., 3)} | {fmt(a.get('adv_gap_late'), 1., 3)} | "
                     f"{' / '.join(f'{d:.2f}' for d in a['attention_distance'])} | "
                     f"{fmt(a.get('pretrain_wall_s'), 1., 0)} | {fmt(a.get('finetune_wall_s'), 1., 0)} | "
                     f"{fmt(a.get('wall_s'), 1., 0)} |")
    return '\n'.join(lines) + '\n'


def paired_table(agg: dict) -> str:
    """Per-seed differences from each baseline, in accuracy points: mean ± 95% half-width (n seeds)."""
    bases = [b for b in BASELINES if b in agg]
    head = ' | '.join(f'{what} vs {b}' for what in ('Δ probe', 'Δ fine-tune') for b in bases)
    lines = [f'| method | {head} |', '|---' * (1 + 2 * len(bases)) + '|']

    def cell(d):
        if d is None:
            return '-'
        if d['n'] < 2:
            return f"{d['mean'] * 100:+.1f} (n=1)"
        return f"{d['mean'] * 100:+.1f} ± {d['ci95'] * 100:.1f}"

    for m, a in agg.items():
        cells = [cell(a['paired'][b][key]) if b in a['paired'] else '·'
                 for key in ('linear_probe_acc', 'finetune_acc') for b in bases]
        lines.append(f"| {m} | {' | '.join(cells)} |")
    return '\n'.join(lines) + '\n'


def plots(runs: List[dict], agg: dict, out: str) -> None:
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    names = list(agg)
    fig, ax = plt.subplots(figsize=(9, 3.8))
    xs = np.arange(len(names))
    for off, key, label in ((-0.2, 'linear_probe_acc', 'linear probe'), (0.2, 'finetune_acc', 'fine-tune')):
        mean = [agg[m][key]['mean'] * 100 if key in agg[m] else np.nan for m in names]
        std = [agg[m][key]['std'] * 100 if key in agg[m] else 0 for m in names]
        ax.bar(xs + off, mean, 0.4, yerr=std, capsize=3, label=label)
    ax.set_xticks(xs, names, rotation=25, ha='right')
    ax.set_ylabel('test accuracy (%)')
    lo = np.nanmin([agg[m][k]['mean'] * 100 for m in names for k in ('linear_probe_acc', 'finetune_acc')
                    if k in agg[m]])
    ax.set_ylim(max(0, lo - 10), 100)
    ax.legend()
    fig.tight_layout()
    fig.savefig(osp.join(out, 'accuracy.png'), dpi=100)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(6, 3.8))
    for m in names:
        blocks = np.arange(1, len(agg[m]['attention_distance']) + 1)
        ax.errorbar(blocks, agg[m]['attention_distance'], yerr=agg[m]['attention_distance_std'], fmt='o-',
                    capsize=2, label=m)
    ax.set_xlabel('block')
    ax.set_ylabel('mean attention distance (patches)')
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(osp.join(out, 'attention_distance.png'), dpi=100)
    plt.close(fig)

    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
    for m in names:
        for ax, key in zip(axes, ('loss_curve', 'adv_gap_curve')):
            curves = [np.array(r[key]) for r in runs if r['method'] == m and r.get(key)]
            if curves:  # every seed logs at the same steps: the mean curve over seeds
                ax.plot(curves[0][:, 0], np.mean([c[:, 1] for c in curves], 0), label=f'{m} ({len(curves)})')
    axes[0].set(xlabel='step', ylabel='pretraining loss (adversarial for AdPE)', title='mean over seeds')
    axes[1].set(xlabel='step', ylabel='adv_gap = adversarial - clean loss', title='AdPE, mean over seeds')
    for ax in axes:
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(osp.join(out, 'pretrain_loss.png'), dpi=100)
    plt.close(fig)


# ---------------------------------------------------------------------------------------------- main
def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--out', default='work_dirs/fmnist_study')
    p.add_argument('--methods', nargs='+', default=list(METHODS), choices=list(METHODS))
    p.add_argument('--seeds', nargs='+', type=int, default=[0, 1, 2])
    p.add_argument('--pilot', action='store_true', help='tiny sizes (about 15 minutes for all methods, 1 seed)')
    for k, v in DEFAULTS.items():
        p.add_argument('--' + k.replace('_', '-'), type=type(v), default=None, help=f'default {v} (pilot {PILOT[k]})')
    p.add_argument('--data-dir', default=DATA_DIR)
    p.add_argument('--install-data', action='store_true', help='apt-get install dataset-fashion-mnist if missing')
    p.add_argument('--synthetic', action='store_true', help='TESTS ONLY: random images instead of Fashion-MNIST')
    p.add_argument('--eval-on', choices=('test', 'val'), default='test',
                   help='test: the official test split; val: the last --test-images train images (held out '
                   'from every training subset), for choosing a protocol without looking at the test split')
    p.add_argument('--threads', type=int, default=2)
    p.add_argument('--aggregate-only', action='store_true',
                   help='run nothing: aggregate the finished runs of these methods and seeds (missing ones are '
                        'listed and left out)')
    return p.parse_args(argv)


def study_data(args, cfg: dict) -> dict:
    """The train and evaluation tensors of ``args`` (installing Fashion-MNIST with ``--install-data``)."""
    if not args.synthetic:
        ensure_data(args.data_dir, args.install_data)
    raw = load_data(args.data_dir, args.synthetic)
    xtr_u8, ytr = raw['train']
    xte_u8, yte = raw['test']
    mean, std = float(xtr_u8.mean()), float(xtr_u8.std())
    if args.eval_on == 'val':  # held out: the last train images, which no pretraining / probe / fine-tune reads
        n_val = cfg['test_images']
        used = max(cfg['pretrain_images'], cfg['probe_images'], cfg['finetune_images'])
        if used + n_val > len(xtr_u8):
            raise ValueError(f'--eval-on val: {used} training images + {n_val} validation images exceed the '
                             f'{len(xtr_u8)} of the train split; lower --test-images')
        xte_u8, yte = xtr_u8[-n_val:], ytr[-n_val:]
    n_test = min(cfg['test_images'], len(xte_u8))
    return dict(xtr=to_tensor(xtr_u8, mean, std), ytr=torch.from_numpy(ytr),
                xte=to_tensor(xte_u8[:n_test], mean, std), yte=torch.from_numpy(yte[:n_test]))


def main(argv=None) -> dict:
    args = parse_args(argv)
    cfg = dict(PILOT if args.pilot else DEFAULTS)
    for k in DEFAULTS:
        if getattr(args, k) is not None:
            cfg[k] = getattr(args, k)
    torch.set_num_threads(args.threads)
    from mmengine.logging import MMLogger
    import logging
    MMLogger.get_instance('mmengine').setLevel(logging.WARNING)
    data = None if args.aggregate_only else study_data(args, cfg)
    os.makedirs(osp.join(args.out, 'runs'), exist_ok=True)
    for seed in args.seeds:
        for m in args.methods:
            path = osp.join(args.out, 'runs', f'{m}_s{seed}.json')
            if osp.exists(path):
                print(f'[skip] {m} seed {seed}: {path} exists', flush=True)
                continue
            if args.aggregate_only:
                print(f'[absent] {m} seed {seed}: no {path}, left out of the aggregate', flush=True)
                continue
            with claim(path + '.lock') as mine:
                if not mine or osp.exists(path):  # another worker runs it, or has just finished it
                    print(f'[busy] {m} seed {seed}: another worker holds {path}.lock', flush=True)
                    continue
                t0 = time.time()
                rec = run_one(m, seed, data, cfg, ckpt=osp.join(args.out, 'pretrained', f'{m}_s{seed}.pth'))
                rec.update(total_wall_s=time.time() - t0, synthetic_data=args.synthetic, threads=args.threads,
                           host_cpus=os.cpu_count())
                write_json(rec, path)
                os.remove(path + '.lock')  # safe: a worker that gets the lock next sees the json and skips
            print(f"[done] {m} seed {seed}: probe {rec.get('linear_probe_acc', float('nan')):.4f} "
                  f"finetune {rec['finetune_acc']:.4f} wall {rec['total_wall_s']:.0f}s", flush=True)
    runs = []  # every finished run of these seeds and methods, whichever worker wrote it
    for seed in args.seeds:
        for m in args.methods:
            path = osp.join(args.out, 'runs', f'{m}_s{seed}.json')
            if osp.exists(path):
                with open(path) as f:
                    runs.append(json.load(f))
    if not runs:
        print('no finished runs yet: nothing to aggregate', flush=True)
        return {}
    agg = aggregate(runs, args.methods)
    with open(osp.join(args.out, 'aggregate.json'), 'w') as f:
        json.dump(dict(config=cfg, methods=agg, total_wall_s=sum(run_wall_s(r) for r in runs)), f, indent=1)
    with open(osp.join(args.out, 'table.md'), 'w') as f:
        f.write(table(agg) + '\n' + paired_table(agg))
    plots(runs, agg, args.out)
    print(table(agg) + '\n' + paired_table(agg))
    return agg


if __name__ == '__main__':
    main()
