"""Make the tiny-model helpers in this folder importable as ``_tiny``."""
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
