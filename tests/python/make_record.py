"""Writes a real ACRO record (results.json, config.json, checksums/ and the outputs) for the
airlock's tests: a synthetic data set of 400 people, three tables checked by ACRO.

    python make_record.py OUT_DIR

- output_0: region by sex, every cell large: ACRO passes it;
- output_1: region by "over 85", small cells: ACRO fails it, and the researcher records an
  exception;
- output_2: region by "over 88", small cells: ACRO fails it, with no exception.

ACRO also writes its session summaries as outputs named ...-DONT_RELEASE.
"""

import logging
import sys

import numpy as np
import pandas as pd
from acro import ACRO


def main(out: str) -> None:
    logging.disable(logging.INFO)
    rng = np.random.default_rng(1)
    n = 400
    df = pd.DataFrame(
        {
            "region": rng.choice(["north", "south", "east", "west"], n),
            "sex": rng.choice(["F", "M"], n),
            "age": rng.integers(18, 90, n),
        }
    )
    acro = ACRO(suppress=False)
    acro.crosstab(df.region, df.sex)
    acro.crosstab(df.region, df.age > 85)
    acro.crosstab(df.region, df.age > 88)
    acro.add_exception("output_1", "the small cells are people over 85 in a synthetic data set")
    acro.finalise(out, "json")


if __name__ == "__main__":
    main(sys.argv[1])
