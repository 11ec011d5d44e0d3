"""The prompt catalogue, installed as the package ``ivr.catalog`` (see setup.py).

Only the ``*.toml`` files ship; rendered audio goes to ``IVR_GENERATED_PROMPTS_DIR``, never here.
"""
