"""The shell commands of README.md and docs/*.md stay true to the code.

Every command in a ```bash block is checked statically: it uses the project's interpreter (``.venv/bin/python``,
or ``PYTHON=.venv/bin/python`` for the torchrun/slurm launchers), every repository path it names exists, and
the arguments of tools/train.py and tools/test.py (also through dist_train.sh / dist_test.sh) parse. The
README's CPU chain (the main job, then the embedded fine-tune, test and linear probe) runs for real, as
written, with only tiny overrides appended, and then the README's Python snippets.
"""
import glob
import importlib.util
import itertools
import os
import os.path as osp
import re
import shlex
import sys
from typing import Dict, List, Tuple

import pytest

from conftest import REPO_ROOT, run_tool, tool_env

DOCS = ['README.md'] + sorted(osp.relpath(p, REPO_ROOT) for p in glob.glob(osp.join(REPO_ROOT, 'docs', '*.md')))
REPO_PATH = re.compile(r'^(configs|tools|docs|adpe_mm|tests|demo|data/embedded)/')
LAUNCHERS = ('tools/dist_train.sh', 'tools/dist_test.sh', 'tools/slurm_train.sh')


def doc_commands(doc: str) -> List[Tuple[int, List[str]]]:
    """(line number, tokens) of every command in the ```bash blocks of ``doc``; ``$VAR`` of assignments made
    earlier in the block are substituted, continuation lines joined, comments dropped."""
    lines = open(osp.join(REPO_ROOT, doc), encoding='utf-8').read().splitlines()
    out, in_block, variables, pending, start = [], False, {}, '', 0
    for number, line in enumerate(lines, 1):
        if line.strip().startswith('```'):
            in_block, variables = line.strip() == '```bash', {}
            continue
        if not in_block:
            continue
        if not pending:
            start = number
        pending += line.rstrip()
        if pending.endswith('\\'):
            pending = pending[:-1] + ' '
            continue
        tokens = shlex.split(re.sub(r'\$(\w+)', lambda m: variables.get(m.group(1), m.group(0)), pending),
                             comments=True)
        pending = ''
        if len(tokens) == 1 and re.match(r'^[A-Z_]+=', tokens[0]):
            name, value = tokens[0].split('=', 1)
            variables[name] = value
        elif tokens:
            out.append((start, tokens))
    return out


ALL = [(doc, number, tokens) for doc in DOCS for number, tokens in doc_commands(doc)]


def split_env(tokens: List[str]) -> Tuple[Dict[str, str], List[str]]:
    env = dict(t.split('=', 1) for t in itertools.takewhile(lambda t: re.match(r'^[A-Z_]+=', t), tokens))
    return env, tokens[len(env):]


def expand_braces(path: str) -> List[str]:
    match = re.search(r'\{([^{}]*)\}', path)
    if not match:
        return [path]
    return [p for option in match.group(1).split(',')
            for p in expand_braces(path[:match.start()] + option + path[match.end():])]


def load_tool(name: str):
    spec = importlib.util.spec_from_file_location(f'doc_tool_{name}', osp.join(REPO_ROOT, 'tools', f'{name}.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def tool_invocation(tokens: List[str]):
    """(tool name, its argv) for commands that end in tools/train.py or tools/test.py, else None."""
    env, cmd = split_env(tokens)
    if cmd[:1] == ['.venv/bin/python'] and cmd[1:2] in (['tools/train.py'], ['tools/test.py']):
        return osp.splitext(osp.basename(cmd[1]))[0], cmd[2:]
    if cmd[:2] == ['bash', 'tools/dist_train.sh']:
        return 'train', cmd[2:3] + cmd[4:]
    if cmd[:2] == ['bash', 'tools/dist_test.sh']:
        return 'test', cmd[2:4] + cmd[5:]
    if cmd[:2] == ['bash', 'tools/slurm_train.sh']:  # PARTITION JOB_NAME CONFIG WORK_DIR [args]
        return 'train', cmd[4:5] + ['--work-dir', cmd[5]] + cmd[6:]
    return None


def test_the_docs_have_commands():
    assert len(ALL) > 30 and {doc for doc, _, _ in ALL} >= {'README.md', 'docs/analysis.md', 'docs/transfer.md'}


@pytest.mark.parametrize('doc,number,tokens', ALL, ids=[f'{d}:{n}' for d, n, _ in ALL])
def test_command_uses_the_venv_and_names_existing_paths(doc, number, tokens):
    env, cmd = split_env(tokens)
    assert cmd[0] not in ('python', 'python3'), f'{doc}:{number}: use .venv/bin/python, not {cmd[0]}'
    if cmd[:1] == ['bash'] and cmd[1] in LAUNCHERS:
        assert env.get('PYTHON') == '.venv/bin/python', f'{doc}:{number}: {cmd[1]} needs PYTHON=.venv/bin/python'
    for token in cmd:
        assert not re.match(r'^/(work|root|tmp|home)/', token), f'{doc}:{number}: a path of one machine: {token}'
        value = token.split('=', 1)[1] if re.match(r'^[\w.]+=', token) else token
        value = value.split(':', 1)[0]  # benchmark_pretrain.py's CONFIG:name=...,overrides
        if REPO_PATH.match(value):
            for path in expand_braces(value):
                assert glob.glob(osp.join(REPO_ROOT, path)), f'{doc}:{number}: {path} does not exist'


TOOL_CALLS = [(d, n, t) for d, n, t in ALL if tool_invocation(t)]


@pytest.mark.parametrize('doc,number,tokens', TOOL_CALLS, ids=[f'{d}:{n}' for d, n, _ in TOOL_CALLS])
def test_train_and_test_arguments_parse(doc, number, tokens):
    name, argv = tool_invocation(tokens)
    # a usage synopsis: '[--flag X]' parses as '--flag X'; '[train.py args]' and '...' stand for anything
    synopsis = re.sub(r'\[(train|test)\.py args\]|\.\.\.', '', ' '.join(argv))
    argv = shlex.split(synopsis.replace('[', ' ').replace(']', ' '))
    try:
        load_tool(name).parse_args(argv)
    except SystemExit as exit_:
        pytest.fail(f'{doc}:{number}: tools/{name}.py refuses {argv} (exit {exit_.code})')


# The README's CPU chain, run as written, with these appended for a run of seconds. Checkpoint names that the
# shortened runs do not reach are links to the ones they write.
TINY_PRETRAIN = ['train_cfg.max_iters=2', 'default_hooks.checkpoint.interval=2', 'custom_hooks.0.interval=2',
                 'train_dataloader.batch_size=2']
TINY_DOWNSTREAM = ['train_cfg.max_epochs=1', 'train_dataloader.dataset.indices=8',
                   'val_dataloader.dataset.indices=8', 'test_dataloader.dataset.indices=8']
LINKS = {'work_dirs/maeplus_tiny/iter_300.pth': 'iter_2.pth', 'work_dirs/finetune_tiny/epoch_10.pth': 'epoch_1.pth'}


def readme_cpu_chain() -> List[List[str]]:
    chain = []
    for _, tokens in doc_commands('README.md'):
        call = tool_invocation(tokens)
        if call and tokens[0] == '.venv/bin/python' and call[1][0].endswith('_embedded.py'):
            chain.append(tokens)
    return chain


def test_readme_cpu_chain_runs_as_written(tmp_path, embedded_data):
    chain = readme_cpu_chain()
    assert [t[1] for t in chain] == ['tools/train.py', 'tools/train.py', 'tools/test.py', 'tools/train.py']
    for name in ('configs', 'tools'):
        os.symlink(osp.join(REPO_ROOT, name), tmp_path / name)
    os.makedirs(tmp_path / 'data')
    os.symlink(embedded_data, tmp_path / 'data' / 'embedded')
    for tokens in chain:
        options = TINY_PRETRAIN if '/mae_plus/' in tokens[2] else TINY_DOWNSTREAM
        if tokens[1] == 'tools/test.py':
            options = options[-1:]
        run_tool([sys.executable] + tokens[1:] + ['--cfg-options'] + options, cwd=str(tmp_path), env=tool_env())
        for link, target in LINKS.items():
            if osp.isdir(tmp_path / osp.dirname(link)) and not osp.lexists(tmp_path / link):
                os.symlink(target, tmp_path / link)
    assert osp.exists(tmp_path / 'work_dirs' / 'linear_probe_tiny' / 'epoch_1.pth')
    # The README's Python snippets (the inference API) run after the chain, on what it wrote.
    snippets = python_blocks('README.md')
    assert snippets
    for snippet in snippets:
        run_tool([sys.executable, '-c', snippet], cwd=str(tmp_path), env=tool_env())


def python_blocks(doc: str) -> List[str]:
    """The text of every ```python block of ``doc``."""
    text = open(osp.join(REPO_ROOT, doc), encoding='utf-8').read()
    return re.findall(r'^```python\n(.*?)^```', text, flags=re.S | re.M)
