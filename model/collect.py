"""The per-step record: one row of floats per step, kept as Mesa's DataCollector.

Mesa's own :class:`mesa.DataCollector` calls every reporter and deep-copies every
value each step, which for the model's ~150 columns cost more than the rest of the
data collection together. :class:`FrameCollector` is a DataCollector (Mesa's
``batch_run``, ``get_model_vars_dataframe`` and ``model_vars`` work as usual) whose
``collect`` appends the row the model computed, and whose ``model_vars`` are built
from the rows when they are read.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import mesa
import numpy as np
import pandas as pd

__all__ = ["FrameCollector"]


class FrameCollector(mesa.DataCollector):
    """A DataCollector fed one row (a list of floats, in ``columns`` order) per step.

    Args:
        columns: The column names, in row order.

    Examples:
        >>> dc = FrameCollector(["t", "x"])
        >>> class M:
        ...     time = 1.0
        ...     record = [1.0, 2.5]
        >>> dc.collect(M())
        >>> dc.get_model_vars_dataframe()["x"].tolist()
        [2.5]
    """

    def __init__(self, columns: list[str]) -> None:
        self._columns = list(columns)
        self._rows: list[list[float]] = []
        self._vars: dict[str, list[float]] | None = None
        super().__init__(model_reporters={c: partial(_last, column=c) for c in self._columns})
        self._validated = True

    @property
    def model_vars(self) -> dict[str, list[float]]:  # type: ignore[override]
        """Column name → values, one per collected step (built on first read)."""
        if self._vars is None or len(next(iter(self._vars.values()), ())) != len(self._rows):
            data = np.array(self._rows, dtype=np.float64).reshape(-1, len(self._columns))
            self._vars = {c: data[:, j].tolist() for j, c in enumerate(self._columns)}
        return self._vars

    @model_vars.setter
    def model_vars(self, value: Any) -> None:  # Mesa's __init__ assigns {}
        self._vars = None

    def collect(self, model: Any) -> None:
        """Append the row ``model.record`` (computed by the model this step)."""
        self._collection_steps.append(model.time)
        self._rows.append(model.record)

    def tail(self, n: int, columns: list[str]) -> tuple[list[float], list[list[float]]]:
        """The last ``n`` rows' ``t`` and ``columns`` (one list per column), without
        building a frame: what a live view needs each step.

        Examples:
            >>> dc = FrameCollector(["t", "x"])
            >>> dc._rows = [[1.0, 5.0], [2.0, 6.0], [3.0, 7.0]]
            >>> dc.tail(2, ["x"])
            ([2.0, 3.0], [[6.0, 7.0]])
        """
        rows = self._rows[-n:] if n > 0 else []
        idx = [self._columns.index(c) for c in columns]
        t = self._columns.index("t")
        return [r[t] for r in rows], [[r[j] for r in rows] for j in idx]

    def at(self, i: int, column: str) -> float:
        """The value of ``column`` in row ``i`` (negative ``i`` counts from the end).

        Examples:
            >>> dc = FrameCollector(["t", "x"])
            >>> dc._rows = [[1.0, 5.0], [2.0, 6.0]]
            >>> dc.at(0, "x"), dc.at(-1, "t")
            (5.0, 2.0)
        """
        return self._rows[i][self._columns.index(column)]

    def frame(self) -> pd.DataFrame:
        """All rows as a DataFrame (one column per name)."""
        data = np.array(self._rows, dtype=np.float64).reshape(-1, len(self._columns))
        return pd.DataFrame(data, columns=self._columns)


def _last(model: Any, *, column: str) -> float:
    """Reporter form of a column: its value in the model's latest row."""
    return model.record[model.datacollector._columns.index(column)]
