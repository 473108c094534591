"""List the zoo as the configs define it: ``python -m lra_snn.cli.zoo models|tasks|families``.

Prints one comma-separated line (the form Hydra's multirun and ``make lra-all MODELS=...`` take):
every ``model=`` option, every task of the task table, or every model with its recipe family.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from lra_snn.config.tasks import TASKS
from lra_snn.config.zoo import family, models


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("what", choices=("models", "tasks", "families"))
    what = parser.parse_args(argv).what
    if what == "models":
        print(",".join(models()))
    elif what == "tasks":
        print(",".join(TASKS))
    else:
        print(",".join(f"{model}:{family(model)}" for model in models()))


if __name__ == "__main__":
    main()
