"""ivr124: the software behind Iran's 124 responsiveness hotline."""

from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
"""The checkout's root: prompts/ and storage/ live beside the package in development."""
