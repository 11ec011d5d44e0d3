"""ivr124: the software behind Iran's 124 responsiveness hotline."""

from importlib.resources import files
from pathlib import Path


def _shipped(package: str) -> Path:
    # setuptools installs packages as plain folders (never zipped), so this is a real path.
    return Path(str(files(package)))


CATALOG_DIR = _shipped("ivr.catalog")
"""The prompt catalogue that ships with the package: the checkout's ``prompts/`` (setup.py).
Read only; ``IVR_PROMPTS_DIR`` points elsewhere to use another catalogue or studio recordings."""
DIALPLANS_DIR = _shipped("ivr.dialplans")
"""The Asterisk configuration that ships with the package: the checkout's ``dialplans/``."""
