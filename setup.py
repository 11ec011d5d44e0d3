"""Two folders of the repository ship inside the package (the rest is in pyproject.toml).

The prompt catalogue (``prompts/*.toml``) and the Asterisk dialplans (``dialplans/``) stay at
the top of the checkout where people edit them, and install as the packages ``ivr.catalog`` and
``ivr.dialplans``. pyproject.toml alone cannot add two mapped packages to the ones ``find``
discovers, hence this file. The same mapping serves ``pip install .`` (the files are copied into
the wheel under ``ivr/``) and ``pip install -e .`` (setuptools' editable finder maps the two
package names to the checkout's folders, so an edited catalogue is seen at once).
"""

from setuptools import find_namespace_packages, setup

SHIPPED = {"ivr.catalog": "prompts", "ivr.dialplans": "dialplans"}

setup(
    packages=[
        *find_namespace_packages(include=["ivr", "ivr.*"], exclude=["*.__pycache__"]),
        *SHIPPED,
    ],
    package_dir=SHIPPED,
)
