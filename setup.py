"""Package list only; all metadata lives in pyproject.toml.

The top-level ``models/`` folder (bundles shipped with the tool, data only) is
installed as the data package ``sserd_cli._models`` so that a built wheel finds
it as well as an editable install does.
"""
from setuptools import find_packages, setup

setup(
    packages=find_packages(include=["sserd_cli", "sserd_cli.*"]) + ["sserd_cli._models"],
    package_dir={"sserd_cli._models": "models"},
    package_data={"sserd_cli._models": ["**/*"]},
    include_package_data=False,
)
