"""Build hook: the Hydra configs, kept in the repository's top-level ``conf/``, ship inside the wheel as
``lra_snn/conf`` (``lra_snn.config.compose`` reads them from there when the package is not a checkout).

Everything else about the package is declared in pyproject.toml.
"""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

CONF = Path(__file__).resolve().parent / "conf"


class BuildPyWithConf(build_py):
    """``build_py`` that also copies ``conf/**/*.yaml`` to ``<build>/lra_snn/conf``.

    An editable install reads the checkout's ``conf/`` directly, so nothing is copied there."""

    def run(self) -> None:
        super().run()
        if self.editable_mode:
            return
        if not (CONF / "train.yaml").is_file():
            raise FileNotFoundError(f"{CONF}/train.yaml not found: build the package from a full checkout or sdist")
        target = Path(self.build_lib) / "lra_snn" / "conf"
        shutil.rmtree(target, ignore_errors=True)
        for source in sorted(CONF.rglob("*.yaml")):
            destination = target / source.relative_to(CONF)
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, destination)


setup(cmdclass={"build_py": BuildPyWithConf})
