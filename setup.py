"""Packaging of adpe_mm. Versions are pinned in requirements.txt (the only place); see tools/install.sh."""
import os.path as osp
import re

from setuptools import find_packages, setup

HERE = osp.dirname(osp.abspath(__file__))


def read_version():
    with open(osp.join(HERE, 'adpe_mm', 'version.py')) as f:
        return re.search(r"__version__ = '([^']+)'", f.read()).group(1)


def read_requirements():
    """The pins of requirements.txt, without the test-only and files-only ones."""
    skip = {'pytest', 'hypothesis', 'foolbox', 'scikit-image', 'imgviz'}
    reqs = []
    with open(osp.join(HERE, 'requirements.txt')) as f:
        for line in f:
            line = line.split('#')[0].strip()
            if line and re.split(r'[=<>!~ ]', line)[0] not in skip:
                reqs.append(line)
    return reqs


setup(
    name='adpe_mm',
    version=read_version(),
    description='AdPE (adversarial positional embeddings) and MAE+ for the OpenMMLab stack',
    long_description=open(osp.join(HERE, 'README.md')).read() if osp.exists(osp.join(HERE, 'README.md')) else '',
    long_description_content_type='text/markdown',
    packages=find_packages(include=['adpe_mm', 'adpe_mm.*']),
    python_requires='>=3.10',
    install_requires=read_requirements(),
    license='Apache License 2.0',
    zip_safe=False,
)
