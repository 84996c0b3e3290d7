"""mmengine's CheckpointHook, with checkpoints that are complete whenever they carry their name."""
import glob
import os
import os.path as osp

from mmengine.dist import is_main_process
from mmengine.fileio.backends import LocalBackend
from mmengine.hooks import CheckpointHook
from mmengine.registry import HOOKS

TMP_SUFFIX = '.tmp'


def fsync_dir(path: str) -> None:
    """Make a rename or unlink in directory ``path`` durable (a no-op where directories cannot be opened)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def commit_file(tmp_path: str, path: str) -> None:
    """Flush ``tmp_path`` to disk and rename it to ``path`` in one step (same directory, so atomic)."""
    with open(tmp_path, 'rb+') as f:
        os.fsync(f.fileno())
    os.replace(tmp_path, path)
    fsync_dir(osp.dirname(osp.abspath(path)))


def write_text_atomically(path: str, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file, so ``path`` holds the old or the new text."""
    tmp = path + TMP_SUFFIX
    with open(tmp, 'w') as f:
        f.write(text)
    commit_file(tmp, path)


# In mmengine's root registry, so the plain name works under every default scope (mmpretrain, mmdet, mmseg).
@HOOKS.register_module()
class AtomicCheckpointHook(CheckpointHook):
    """:class:`~mmengine.hooks.CheckpointHook` that never leaves a partial checkpoint under a checkpoint's name
    and never deletes an old checkpoint before the new one is complete.

    The stock hook deletes the oldest checkpoint beyond ``max_keep_ckpts`` first and then writes the new one in
    place, so a kill or a full disk during the write leaves a partial file, and with ``max_keep_ckpts=1`` no
    checkpoint at all, with ``last_checkpoint`` naming a deleted file. Here, on a local file system:

    1. the checkpoint is written to ``<name>.tmp``, fsynced, and renamed to ``<name>`` (atomic);
    2. ``last_checkpoint`` is replaced the same way, so it names a complete file;
    3. only then are checkpoints beyond ``max_keep_ckpts`` deleted.

    Leftover ``*.tmp`` files of a killed run are removed before training. On other storage backends the write
    goes through the backend as in mmengine (object stores do not expose partial objects), and step 3 still
    comes last. Every argument is :class:`~mmengine.hooks.CheckpointHook`'s.

    Examples:
        >>> default_hooks = dict(checkpoint=dict(type='AtomicCheckpointHook', interval=1, max_keep_ckpts=1))
    """

    def before_train(self, runner) -> None:
        super().before_train(runner)
        if self._local and is_main_process():
            for stale in glob.glob(osp.join(glob.escape(self.out_dir), '*' + TMP_SUFFIX)):
                os.remove(stale)

    @property
    def _local(self) -> bool:
        return isinstance(self.file_backend, LocalBackend)

    def _save_checkpoint_with_step(self, runner, step, meta):
        filename = self.filename_tmpl.format(step)
        self.last_ckpt = self.file_backend.join_path(self.out_dir, filename)
        runner.message_hub.update_info('last_ckpt', self.last_ckpt)
        # The queue of kept steps is updated now (the checkpoint records it) but files go only at the end.
        expired = []
        if self.max_keep_ckpts > 0 and not (self.keep_ckpt_ids and self.keep_ckpt_ids[-1] == step):
            if len(self.keep_ckpt_ids) == self.max_keep_ckpts:  # a deque of that maxlen (before_train)
                expired.append(self.keep_ckpt_ids.popleft())
            self.keep_ckpt_ids.append(step)
            runner.message_hub.update_info('keep_ckpt_ids', list(self.keep_ckpt_ids))

        runner.save_checkpoint(  # a no-op off the main process
            self.out_dir,
            filename + TMP_SUFFIX if self._local else filename,
            self.file_client_args,
            save_optimizer=self.save_optimizer,
            save_param_scheduler=self.save_param_scheduler,
            meta=meta,
            by_epoch=self.by_epoch,
            backend_args=self.backend_args,
            **self.args)
        if not is_main_process():
            return
        if self._local:
            commit_file(self.last_ckpt + TMP_SUFFIX, self.last_ckpt)
        write_text_atomically(osp.join(runner.work_dir, 'last_checkpoint'), self.last_ckpt)

        for old_step in expired:
            path = self.file_backend.join_path(self.out_dir, self.filename_tmpl.format(old_step))
            if self.file_backend.isfile(path):
                self.file_backend.remove(path)
            elif self.file_backend.isdir(path):  # checkpoints saved by deepspeed are directories
                self.file_backend.rmtree(path)
