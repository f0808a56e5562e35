"""Experiment files: a base scenario, a grid (or a sampled design) and seeds.

```toml
# research question in a header comment
[experiment]
name = "leverage_grid"
base = "scenarios/baseline.toml"     # relative to this file, or a preset's name ("baseline"); or an inline [base] table
seeds = 4                            # a count (seeds 0..3 offset by the base seed) or a list
retries = 1

[overrides]                          # fixed changes to the base (e.g. smaller sizes)
"agents.leveraged.count" = 300

[grid]                               # dotted keys -> lists; the design is their product
"agents.leveraged.max_leverage" = [5.0, 10.0, 25.0]

[sample]                             # instead of [grid]: global sensitivity analysis
method = "sobol"                     # sobol (Saltelli) or morris, sampled with SALib
n = 32
[sample.bounds]
"liquidation.fee" = [0.0, 0.01]
```

Every point of the design is resolved into a full scenario and validated before
anything runs: a bad key, value or bound stops with one line naming it.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from ..model.scenario import Scenario, ScenarioError, _one_line, read_toml, scenario_path

__all__ = [
    "Experiment",
    "ExperimentError",
    "ExperimentFile",
    "ExperimentMeta",
    "Run",
    "SampleSpec",
    "load_experiment",
    "resolve",
    "run_id",
]


class ExperimentError(ValueError):
    """A bad experiment file: one line naming the field and the reason."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)


MAX_RUNS = 100_000
"""Upper bound on the runs of one sweep unless ``--allow-large``."""


class ExperimentMeta(_Strict):
    name: str = Field("sweep", pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
    """The experiment's name (names its default output folder and its report)."""
    base: str | None = None
    """The base scenario: a file relative to the experiment file, or a preset's name."""
    seeds: int | list[int] = 1
    """A count (seeds offset from the base scenario's) or a list of seeds."""
    retries: int = Field(1, ge=0, le=100)
    """Retries of a run that raises or whose worker dies."""
    save_runs: bool = Field(False, description="also write each run's full result folder")

    @field_validator("seeds")
    @classmethod
    def _seeds(cls, v: int | list[int]) -> int | list[int]:
        if isinstance(v, int) and v < 1:
            raise ValueError("must be >= 1")
        if isinstance(v, int) and v > MAX_RUNS:
            raise ValueError(f"{v:,} seeds is above {MAX_RUNS:,} (--allow-large if you mean it)")
        if isinstance(v, list) and any(s > 2**63 - 1 for s in v):
            raise ValueError("seeds must be below 2**63")
        if isinstance(v, list) and (not v or any(s < 0 for s in v) or len(set(v)) != len(v)):
            raise ValueError("must be a non-empty list of distinct seeds >= 0")
        return v


class SampleSpec(_Strict):
    method: Literal["sobol", "morris"]
    """The sampling design (SALib): Saltelli's for Sobol indices, or Morris's."""
    n: int = Field(ge=2, le=MAX_RUNS)
    """Base sample size (Sobol: N × (D + 2) points; Morris: N trajectories)."""
    bounds: dict[str, tuple[float, float]]
    """Dotted scenario key → (low, high)."""
    levels: int = Field(4, ge=2, description="morris grid levels")

    @field_validator("bounds")
    @classmethod
    def _bounds(cls, b: dict[str, tuple[float, float]]) -> dict[str, tuple[float, float]]:
        if not b:
            raise ValueError("at least one bound is needed")
        for key, (lo, hi) in b.items():
            if not lo < hi:
                raise ValueError(f"{key}: lower bound {lo} must be below upper bound {hi}")
        return b


class ExperimentFile(_Strict):
    experiment: ExperimentMeta = ExperimentMeta()
    """The experiment's own settings."""
    base: dict[str, Any] | None = None
    """An inline base scenario (instead of experiment.base)."""
    overrides: dict[str, Any] = {}
    """Dotted scenario key → value, applied to the base for every run."""
    grid: dict[str, list[Any]] = {}
    """Dotted scenario key → values; the design is their product."""
    sample: SampleSpec | None = None
    """A sampled design instead of a grid."""

    @field_validator("grid")
    @classmethod
    def _grid(cls, g: dict[str, list[Any]]) -> dict[str, list[Any]]:
        for key, values in g.items():
            if not values:
                raise ValueError(f"{key}: needs at least one value")
        return g


@dataclass(frozen=True)
class Run:
    """One point of the design with one seed."""

    run_id: str
    index: int
    seed: int
    params: dict[str, Any]
    scenario: dict[str, Any]

    @property
    def work(self) -> int:
        """A rough cost of the run for scheduling: steps × agents (the model's time grows
        about linearly in both, ``benchmarks/scale.py``)."""
        agents = self.scenario.get("agents", {})
        count = sum(a.get("count", 0) for a in agents.values() if isinstance(a, dict))
        return int(self.scenario.get("steps", 1)) * (1 + count)


@dataclass(frozen=True)
class Experiment:
    """A validated, fully resolved design."""

    name: str
    spec: ExperimentFile
    base: Scenario
    runs: list[Run]
    design: list[dict[str, Any]]  # one dict of parameter values per design point

    @property
    def retries(self) -> int:
        return self.spec.experiment.retries

    def to_toml(self) -> str:
        """The resolved design: base scenario inline, grid or sample, every run."""
        import tomli_w

        data: dict[str, Any] = {
            "experiment": self.spec.experiment.model_dump(exclude={"base"}) | {"name": self.name},
            "base": self.base.to_dict(),
        }
        if self.spec.overrides:
            data["overrides"] = dict(self.spec.overrides)
        if self.spec.grid:
            data["grid"] = {k: list(v) for k, v in self.spec.grid.items()}
        if self.spec.sample is not None:
            s = self.spec.sample
            data["sample"] = {
                "method": s.method,
                "n": s.n,
                "levels": s.levels,
                "bounds": {k: list(v) for k, v in s.bounds.items()},
            }
        data["runs"] = [
            {"id": r.run_id, "index": r.index, "seed": r.seed, "params": _tomlable(r.params)}
            for r in self.runs
        ]
        return tomli_w.dumps(data)


def run_id(scenario: dict[str, Any]) -> str:
    """A hash of the fully resolved scenario (which includes its seed).

    Examples:
        >>> run_id({"seed": 1})
        'fbe47f6d82b435a8'
        >>> run_id({"seed": 1}) != run_id({"seed": 2})
        True
    """
    blob = json.dumps(scenario, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def load_experiment(path: str | Path, *, allow_large: bool = False) -> Experiment:
    """Read, validate and resolve an experiment file (raises :class:`ExperimentError`).

    ``allow_large`` lifts the size guards (runs per sweep, steps and agents per run).

    Examples:
        >>> import tempfile
        >>> path = Path(tempfile.mkdtemp()) / "caps.toml"
        >>> _ = path.write_text(
        ...     '[experiment]\\nbase = "baseline"\\nseeds = 3\\n'
        ...     "[grid]\\nleverage_cap = [5.0, 10.0]\\n"
        ... )
        >>> exp = load_experiment(path)
        >>> exp.name, len(exp.runs), sorted({r.params["leverage_cap"] for r in exp.runs})
        ('caps', 6, [5.0, 10.0])
    """
    path = Path(path)
    data = read_toml(path, error=ExperimentError)
    try:
        spec = ExperimentFile.model_validate(data)
    except ValidationError as exc:
        raise ExperimentError(_one_line(exc, ExperimentFile)) from None
    return resolve(spec, root=path.parent, default_name=path.stem, allow_large=allow_large)


def resolve(
    spec: ExperimentFile, *, root: Path, default_name: str = "sweep", allow_large: bool = False
) -> Experiment:
    """Resolve the base, the design points and the seeds into validated runs.

    Examples:
        >>> spec = ExperimentFile.model_validate(
        ...     {"experiment": {"name": "caps", "base": "baseline", "seeds": 2},
        ...      "grid": {"leverage_cap": [5.0, 10.0]}})
        >>> len(resolve(spec, root=Path(".")).runs)
        4
    """
    meta = spec.experiment
    if spec.grid and spec.sample is not None:
        raise ExperimentError("grid: give either [grid] or [sample], not both")
    if meta.base is not None and spec.base is not None:
        raise ExperimentError("base: give either experiment.base (a path) or a [base] table")
    try:
        if meta.base is not None:
            ref = root / meta.base
            base = Scenario.from_toml(ref if ref.is_file() else scenario_path(meta.base))
        elif spec.base is not None:
            base = Scenario.from_dict(spec.base)
        else:
            base = Scenario()
        if spec.overrides:
            base = base.replace(**spec.overrides)
        if allow_large:
            base = base.replace(size_guard=False)
    except ScenarioError as exc:
        field = "experiment.base" if meta.base is not None else "base"
        raise ExperimentError(f"{field}: {exc}") from None
    n_points = math.prod(len(v) for v in spec.grid.values()) if spec.sample is None else 0
    n_seeds = meta.seeds if isinstance(meta.seeds, int) else len(meta.seeds)
    if not allow_large and n_points * n_seeds > MAX_RUNS:
        raise ExperimentError(
            f"grid: {n_points:,} points × {n_seeds:,} seeds = {n_points * n_seeds:,} runs is "
            f"above {MAX_RUNS:,} (--allow-large if you mean it)"
        )
    design = _design(spec, base)
    if not allow_large and len(design) * n_seeds > MAX_RUNS:
        raise ExperimentError(
            f"sample.n: {len(design) * n_seeds:,} runs is above {MAX_RUNS:,} "
            "(--allow-large if you mean it)"
        )
    seeds = list(range(meta.seeds)) if isinstance(meta.seeds, int) else list(meta.seeds)
    seeds = [base.seed + s for s in seeds] if isinstance(meta.seeds, int) else seeds
    runs: list[Run] = []
    for index, params in enumerate(design):
        try:
            point = base.replace(**params)
        except ScenarioError as exc:
            where = "grid" if spec.grid else "sample.bounds"
            raise ExperimentError(f"{where}: {exc}") from None
        for seed in seeds:
            sc = point.replace(seed=seed).to_dict()
            runs.append(Run(run_id(sc), index, seed, params, sc))
    ids = [r.run_id for r in runs]
    if len(set(ids)) != len(ids):
        raise ExperimentError("grid: two design points resolve to the same scenario")
    return Experiment(meta.name if meta.name != "sweep" else default_name, spec, base, runs, design)


def _design(spec: ExperimentFile, base: Scenario) -> list[dict[str, Any]]:
    if spec.sample is None:
        keys = list(spec.grid)
        return [
            dict(zip(keys, combo, strict=True)) for combo in itertools.product(*spec.grid.values())
        ]
    s = spec.sample
    names = list(s.bounds)
    problem = {"num_vars": len(names), "names": names, "bounds": [list(s.bounds[k]) for k in names]}
    if s.method == "sobol":
        from SALib.sample import sobol

        matrix = sobol.sample(problem, s.n, calc_second_order=False, seed=base.seed)
    else:
        from SALib.sample import morris

        matrix = morris.sample(problem, s.n, num_levels=s.levels, seed=base.seed)
    base_data = base.model_dump(mode="python")
    integer = {k: isinstance(_lookup(base_data, k), int) for k in names}
    return [
        {k: (round(float(v)) if integer[k] else float(v)) for k, v in zip(names, row, strict=True)}
        for row in matrix
    ]


def _lookup(data: Any, key: str) -> Any:
    node = data
    for part in key.split("."):
        if isinstance(node, dict):
            if part not in node:
                raise ExperimentError(f"sample.bounds.{key}: unknown key")
            node = node[part]
        elif isinstance(node, list | tuple) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            raise ExperimentError(f"sample.bounds.{key}: unknown key")
    return node


def _tomlable(params: dict[str, Any]) -> dict[str, Any]:
    return {
        k: ("inf" if isinstance(v, float) and v == float("inf") else v) for k, v in params.items()
    }
