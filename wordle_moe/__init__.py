"""Engine of the Wordle MoE workbench.

Data flows one way through these modules, in layers (highest first; pyproject.toml declares them and
`make lint` checks them with import-linter, see docs/architecture.md):
cli -> report/parameters -> evaluation/search/forecast/baselines/persistence/agreement -> estimator/bootstrap ->
training -> model/grouping/losses/routers -> dataset -> features -> data, on leaves (config, paths, io, metrics,
intervals, crossfit, streams, manifest, progress). No module imports one in a higher layer.
"""
