"""Engine of the Wordle MoE workbench.

Data flows one way through these modules:
``data`` (raw -> cleaned) -> ``features`` (word -> feature row) -> ``model``/``routers``/
``losses``/``training``/``bootstrap``/``estimator`` (features -> predictions) ->
``metrics``/``baselines``/``search`` (predictions -> scores). ``analysis/`` sits on top.
No module imports one that sits later in that flow.
"""
