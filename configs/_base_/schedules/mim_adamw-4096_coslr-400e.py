# Appendix A schedule, shared by MAE, MAE+ and AdPE: 4096 images per step (8 GPUs x 128 x 4 accumulation
# steps), AdamW (0.9, 0.95), lr 1.5e-4 x 4096 / 256, wd 0.05 except norms, biases, tokens and positional
# embeddings (APE and iRPE tables), 20 warmup epochs then cosine (40 for 1600 epochs), AMP, no clipping.
# Also the pretraining runtime (it inherits default_runtime.py and sets resume, checkpoints, seed).
# The lr is written out for 4096 and stays so whatever the batch. On fewer GPUs pass tools/train.py
# --auto-scale-lr: it scales by (GPUs x 128 x accumulative_counts) / 4096 (mmengine alone ignores accumulation).
# AMP is bfloat16 autocast: bf16 has float32's exponent range, so the loss is not scaled (a static scale of
# 1.0); the GradScaler is kept only for its finite check, so a step with inf/NaN gradients is still skipped,
# adversaries included. fp16 (GPUs without bf16) is the override
#   --cfg-options optim_wrapper.dtype=float16 optim_wrapper.loss_scale=dynamic
# AdamW runs torch's default implementation (foreach on CUDA); optim_wrapper.optimizer.fused=True selects the
# fused kernel (see docs/benchmarks.md, "GPU step", for when that is safe with adversaries).
_base_ = '../default_runtime.py'

optim_wrapper = dict(
    type='AmpOptimWrapper',
    dtype='bfloat16',
    loss_scale=1.0,
    accumulative_counts=4,
    # foreach/fused None: torch's default (foreach on CUDA); fused=True: one fused kernel per step
    optimizer=dict(type='AdamW', lr=1.5e-4 * 4096 / 256, betas=(0.9, 0.95), weight_decay=0.05, foreach=None,
                   fused=None),
    paramwise_cfg=dict(
        norm_decay_mult=0.0,
        bias_decay_mult=0.0,
        custom_keys={
            'pos_embed': dict(decay_mult=0.),
            'mask_token': dict(decay_mult=0.),
            'cls_token': dict(decay_mult=0.),
            'lookup_table': dict(decay_mult=0.),
        }))

param_scheduler = [
    dict(type='LinearLR', start_factor=1e-4, by_epoch=True, begin=0, end=20, convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', T_max=380, by_epoch=True, begin=20, end=400,
         convert_to_iter_based=True),
]

train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=400)
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=100),
    checkpoint=dict(type='AtomicCheckpointHook', interval=1, max_keep_ckpts=3),
    # opt-in torch.compile of the encoder and decoder: --cfg-options default_hooks.compile.enable=True
    compile=dict(type='CompileHook', enable=False))
randomness = dict(seed=0, diff_rank_seed=True)
resume = True
auto_scale_lr = dict(base_batch_size=4096, enable=False)
