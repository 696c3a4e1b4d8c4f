# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Wordle MoE workbench
#
# A mixture-of-experts (MoE) model predicts, for a Wordle answer word, the share of players who solve it in
# 1, 2, …, 6 tries or fail (X). Trained many times on bootstrap resamples it gives that prediction with an
# interval, and the analysis at the end shows which words each expert owns and how the experts differ.
#
# Run it top to bottom. In batch: `papermill moe_with_bootstrap.ipynb out.ipynb -p OUTPUT_DIR moe_bootstrap_output`
# (any parameter of the next cell can be set with `-p`). `QUICK=True` makes a small run (few epochs, few replicas)
# for tests. Every file is written to `OUTPUT_DIR` at a fixed name; the last cell lists them.

# %% [markdown]
# ## 1. Parameters
#
# The knobs of `moe_booststrap.py` plus the notebook's switches. Papermill replaces this cell's values.
# `FAIL_AT_SECTION` is a test hook: naming a section (e.g. `"grid_search"`) makes it fail on purpose, to check that
# a crash leaves the earlier outputs intact.

# %% tags=["parameters"]
QUICK: bool = False  # small run for tests: epochs, replicas, grid and peers capped [True or False]
RUN_GRID_SEARCH: bool = False  # True: the full knob grid (slow); False: a real two-configuration grid [True or False]
OUTPUT_DIR: str = "moe_bootstrap_output"  # folder of every output [text]
FAIL_AT_SECTION = None  # test hook: name of a section that should fail
N_JOBS = None  # worker processes for independent fits (None: $N_JOBS or every core); the results are the same
# Every knob of moe_booststrap.py at its declared default (type, default and meaning also in
# `papermill --help-notebook moe_with_bootstrap.ipynb`). A knob left at its default (or set to None) keeps the value
# in moe_booststrap.py, so edit knobs there; set one here or with papermill -p NAME VALUE for one run (a list knob
# with -y "GRID_TOP_K: [1, 2]" or -p GRID_TOP_K "[1, 2]"; booleans as True/False, true/false or 1/0).
NUM_EXPERTS: int = 2  # number of experts [an integer at least 1]
TOP_K: int = 1  # experts each word is routed to (1..NUM_EXPERTS) [an integer at least 1]
HIDDEN_SIZE: int = 64  # hidden units of each expert's MLP [an integer at least 1]
AUX_LOSS_WEIGHT: float = 0.001  # weight of the load-balancing loss [a number at least 0]
EXPERT_DIVERSITY_COEF: float = 0.0  # weight of the expert-weight diversity loss [a number at least 0]
EXPERT_OUTPUT_DIVERSITY_COEF: float = 0.0  # weight of the expert-output diversity loss [a number at least 0]
EXPERT_JS_DIVERGENCE_COEF: float = 0.0  # weight of the JS-divergence term between expert outputs [a number at least 0]
ROUTER: str = "topk"  # routing rule [one of topk | noisy_topk | expert_choice | reputation | aux_free_bias]
GATE: str = "linear"  # gating network: linear, or an MLP with LayerNorm [one of linear | mlp]
ACTIVATION: str = "tanh"  # activation of the experts' hidden layer [one of gelu | relu | swish | tanh]
DROPOUT: float = 0.3  # dropout on the experts' hidden layer [a number in [0, 1)]
N_WEIGHTING: str = "none"  # weight words by their reported results [one of none | sqrt | log | linear]
LR: float = 0.01  # AdamW learning rate [a number above 0]
WD: float = 0.001  # AdamW weight decay [a number at least 0]
MAX_EPOCHS: int = 600  # full-batch training steps at most (one epoch is one optimizer step) [an integer at least 1]
PATIENCE: int = 60  # early stopping: steps without a better validation loss [an integer at least 1]
ROUTER_ONLY_EPOCHS: int = 0  # above 0 adds a router-only phase with the experts frozen [an integer at least 0]
EXPERT_SKIP: bool = False  # each expert adds a linear (softmax-regression) path to its MLP [True or False]
SKIP_L2: float = 0.0  # ridge penalty on the skip path's weights [a number at least 0]
SKIP_ZERO_MLP: bool = False  # with EXPERT_SKIP: each expert's MLP output starts at zero [True or False]
SKIP_INIT: str = "zero"  # with EXPERT_SKIP: softmax_regression starts experts linear [one of zero | softmax_regression]
GATE_INIT: str = "difficulty"  # start of the linear gate: a split by difficulty [one of difficulty | random]
GATE_INIT_SCALE: float = 2.0  # with GATE_INIT difficulty: logit slope per standard deviation of the score [a number above 0]
EXPERT_INIT: str = "group_mean"  # start of the experts' outputs [one of group_mean | dense | random]
GATE_LR_SCALE: float = 0.05  # the gate learns at LR·GATE_LR_SCALE (0 freezes the gate at its start) [a number at least 0]
EXPERT_ORDER: str = "difficulty"  # relabel experts by expected tries after training [one of difficulty | none]
DIVERSITY_SCOPE: str = "routed"  # rows the diversity terms average each expert over [one of routed | all]
INPUT_CLIP: float = 5.0  # standardised inputs clipped to ±INPUT_CLIP (0: no clip) [a number at least 0]
ROUTING_CE_COEF: float = 0.0  # above 0: extra gate gradient towards the lower cross-entropy expert [a number at least 0]
BIAS_UPDATE_RATE: float = 0.001  # aux_free_bias router: selection-bias step per training step [a number in (0, 1)]
SEED: int = 0  # random seed of every stream (splits, initial weights, dropout, resamples) [an integer]
BOOTSTRAP_B: int = 200  # bootstrap replicas (trained as one batched model) [an integer at least 1]
BOOTSTRAP_CI: float = 0.95  # level of the bootstrap and predictive intervals [a number in (0, 1)]
HOLDOUT_WORD: str = "eerie"  # five-letter word predicted with both intervals in the holdout section [text]
HOLDOUT_DATE: str = "2023-03-01"  # date (YYYY-MM-DD) of the holdout prediction [text]
TRAINING: str = "converged"  # converged: each replica fits its penalised objective fully [one of converged | early_stopping]
SHARED_BASE: bool = True  # experts share a linear base plus penalised deviations (softmax regression at 0) [True or False]
EXPERT_MLP: bool = False  # with SHARED_BASE: each expert adds its MLP as another penalised deviation [True or False]
BASE_L2: float = 0.01  # ridge on the shared base's weights (the inner CV's prior) [a number at least 0]
DELTA_L2: float = 0.1  # ridge on every expert's deviation from the shared base [a number at least 0]
GATE_L2: float = 0.0  # ridge on the gate's weights [a number at least 0]
PENALTY_CV: int = 5  # inner folds on the training rows choosing the ridge strengths (0: as set) [an integer at least 0]
CONVERGE_TOL: float = 1e-06  # a replica stops once its objective changes less than this (relative) [a number above 0]
GRID_NUM_EXPERTS: list = [2, 3, 4]  # full grid search: NUM_EXPERTS values [a non-empty list]
GRID_TOP_K: list = [1, 2]  # full grid search: TOP_K values [a non-empty list]
GRID_HIDDEN_SIZE: list = [64, 128]  # full grid search: HIDDEN_SIZE values [a non-empty list]
GRID_AUX_COEF: list = [0.0005, 0.001, 0.002]  # full grid search: AUX_LOSS_WEIGHT values [a non-empty list]
GRID_DIVERSITY_COEF: list = [0.0001, 0.0005, 0.001, 0.002, 0.005]  # full grid: diversity coefs [a non-empty list]

# %% [markdown]
# The next cell applies the parameters to the module (`moe_booststrap.NUM_EXPERTS = ...`), validates them —
# an invalid value (TOP_K > NUM_EXPERTS, a negative coefficient, an unknown router) stops here, before any
# training, with the knob's name; so does a name that is no parameter at all (papermill itself only warns about
# `-p ACTIVATON gelu` and would run on with the defaults) — and starts `run_manifest.json` (parameters, data hashes, package versions,
# seed, and the time of every section, rewritten after each section).

# %%
# names defined so far: the parameters cell's and any papermill injected (a misspelt one shows up here)
_GIVEN = [n for n in list(globals()) if not n.startswith("_") and n not in get_ipython().user_ns_hidden]
from pathlib import Path

from wordle_moe.progress import configure_progress

PROGRESS = configure_progress()  # before any engine import: widget bars in JupyterLab, text lines in papermill's log

import numpy as np
import pandas as pd
import torch
from IPython.display import Image, display

import analysis
import moe_booststrap as mb
from wordle_moe import (
    agreement,
    disagreement,
    embeddings,
    evaluation,
    explain,
    parallel,
    parameters,
    paths,
    persistence,
    report,
    search,
)
from wordle_moe.dataset import feature_rows, training_date_range
from wordle_moe.estimator import ensemble_residuals
from wordle_moe.intervals import predictive_interval
from wordle_moe.manifest import RunManifest

ROOT = Path(mb.__file__).resolve().parent  # the project folder (installed editable by `make setup`)
torch.set_num_threads(1)  # the model is tiny and full-batch: one thread is fastest, more oversubscribe the cores
PARAMS = {name: globals()[name] for name in parameters.notebook_parameters(mb)}
OUT = Path(OUTPUT_DIR) if Path(OUTPUT_DIR).is_absolute() else ROOT / OUTPUT_DIR
OUT.mkdir(parents=True, exist_ok=True)
run = RunManifest(OUT, parameters=PARAMS, seed=mb.SEED if SEED is None else SEED, fail_at=FAIL_AT_SECTION)
with run.section("parameters"):
    parameters.check_parameter_names(_GIVEN, mb)  # stops on a name that is no knob and no switch, naming it
    QUICK, RUN_GRID_SEARCH = parameters.parse_switches(PARAMS).values()  # "false" is False, never a QUICK run
    applied = parameters.apply_parameters(mb, PARAMS, quick=QUICK)
    WORKERS = parallel.set_n_jobs(N_JOBS)  # independent fits (folds, peers, replica chunks) run in this many processes
    parallel.warm_up(WORKERS, "wordle_moe.evaluation")  # the workers start and import the engine in the background
    CFG = mb.config()
    run.note("applied_to_module", applied)
    run.note("config", CFG.to_dict())
    run.note("knobs", mb.knobs())  # every knob in force: mb.apply_run(<this manifest>) sets them again
    run.note("n_jobs", WORKERS)
SEED, HOLDOUT_WORD, HOLDOUT_DATE = mb.SEED, mb.HOLDOUT_WORD, mb.HOLDOUT_DATE  # the values in force
analysis.apply_style()
pd.set_option("display.precision", 4)
print(f"output folder: {OUT}; {WORKERS} worker process(es)")
print("applied to moe_booststrap:", applied)

# %% [markdown]
# ## 2. Data and cleaning log
#
# The 2023 MCM Problem C table (359 days) is loaded and cleaned by explicit rules; every fix is one row of
# `data_cleaning_log.csv` (contest, column, old value, new value, rule). Targets are normalised to sum 1.

# %%
with run.section("data"):
    data = mb.load_dataset()
    for path in (paths.RAW_DATA, paths.ANSWERS, paths.ALLOWED, paths.FEATURES_CSV):
        run.add_data_file(path)
    clean_log = mb.cleaning_log(data.frame)
    report.write_table(clean_log, OUT, "data_cleaning_log.csv")
print(f"{len(data.frame)} observed days, {data.frame['date'].min().date()} .. {data.frame['date'].max().date()}; "
      f"{len(clean_log)} logged fixes")
display(clean_log.groupby("rule").size().rename("rows").to_frame())
display(clean_log.head(12))

# %% [markdown]
# ## 3. Features
#
# Every feature is computed from the word (and its date) and the word lists — never from the results. The six
# key features of the analysis are summarised below, with the holdout word's row. A full run also caches the
# semantic distance of all 12,972 allowed guesses (once, ~25 s), so the command line answers any of them without
# loading the embedding model.

# %%
with run.section("features"):
    X, P, WORDS = data.X, data.P, np.asarray(data.words)
    if not QUICK:
        embeddings.guess_distances(build=True)
    # the holdout row as `predict` builds it: a date after the training days is clamped to the last one, so the
    # time-trend input never extrapolates
    holdout_features = feature_rows([HOLDOUT_WORD], [HOLDOUT_DATE], data.feature_names,
                                    date_range=training_date_range(data))
    X_holdout = holdout_features[data.feature_names].to_numpy(float)
    run.note("features", {"n_features": len(data.feature_names), "names": data.feature_names})
print(f"{X.shape[1]} model inputs for {X.shape[0]} words")
display(data.features[mb.KEY_FEATURES].describe().T)
display(holdout_features[["word", "date", "date_used", *mb.KEY_FEATURES]])

# %% [markdown]
# ## 4. Train the MoE
#
# Protocol B split: words played before 2022-10-01 train the model, later words test it. Training is converged and
# penalised (`TRAINING="converged"`): the model is fitted until its penalised objective stops changing, with ridge
# strengths chosen by an inner cross-validation on the training words; a seeded 20% of the training words only shows
# a held-out loss in the log (with `TRAINING="early_stopping"` it decides when to stop). The loss log has one row per
# step (main loss, load balance, the diversity terms, the held-out loss every 20 steps and each expert's mean routing
# probability).

# %%
with run.section("training"):
    # section 5's comparison only trains in the worker processes: it starts now, in the background, and the pool
    # trains it while this process trains the model below
    comparison_job = parallel.in_background(evaluation.compare_with_peers, X, P, data.dates, CFG, quick=QUICK,
                                            seed=SEED)
    split = evaluation.forecast_split(data.dates, seed=SEED, val_fraction=CFG.val_fraction)
    tr, va, te = split["train"], split["val"], split["test"]
    model, info = mb.train_moe(X[tr], P[tr], X[va], P[va], n_reported=data.n_reported[tr],
                               n_reported_val=data.n_reported[va], verbose=True)
    # with the out-of-fold residuals of its training words (5 folds as one batched fit, ~1 s):
    # `predict --model-dir .../model/single` then gives this model's predictive interval (it has no replicas, so no
    # interval of the mean)
    mb.save_model(OUT / "model" / "single", model, feature_names=data.feature_names,
                  date_range=(data.dates.iloc[tr].min(), data.dates.iloc[tr].max()), training_data=(X[tr], P[tr]),
                  residuals=ensemble_residuals(X[tr], P[tr], CFG, data.n_reported[tr], seed=SEED),
                  extra={"population": "mcm", "populations": ["mcm"], "split": "protocol B training words"})
    report.write_table(info["history"], OUT, "moe_loss_log.csv")
    report.write_figure(analysis.plot_training_history(info["history"], info["best_epoch"]), OUT,
                        "moe_training_history.png")
    P_test, test_metrics = mb.evaluate(model, X[te], P[te])
    report.write_table(report.prediction_frame(WORDS[te], P_test, P[te], data.dates.iloc[te]), OUT,
                       "moe_softmax_pred_output.csv")
    run.note("single_model", {"best_epoch": info["best_epoch"], "seconds": info["seconds"], **test_metrics})
print(f"train {len(tr)}, validation {len(va)}, test {len(te)} words; best epoch {info['best_epoch']} "
      f"of {len(info['history'])} ({info['seconds']:.1f} s)")
display(pd.Series(test_metrics, name="test (words from 2022-10-01)").to_frame())
display(Image(OUT / "moe_training_history.png"))

# %% [markdown]
# Left: the losses fall and flatten; the dotted line marks the step where the convergence test stopped training
# (with early stopping: the restored best epoch). Middle: the auxiliary terms (before their coefficients). Right: each expert's mean routing probability;
# an expert whose share drifts towards 0 is being starved by the router.
# `moe_softmax_pred_output.csv` holds the single model's predictions on the test words next to the observed shares.

# %% [markdown]
# ## 5. Evaluation against peer models
#
# Every model is fitted on the same folds and scored per word (MAE in percentage points, RPS, JS, KL,
# |Δ expected tries|), averaged. Peers: the mean training distribution, softmax regression on soft labels,
# random forest, gradient boosting, a single MLP-softmax. A full run uses protocol A as one 5-fold CV repeat (to
# keep the run within 3 minutes; `make bench` runs all three repeats) and protocol B (train on the words before
# 2022-10-01, test on the rest); QUICK uses protocol B and the two cheapest peers only.

# %%
with run.section("evaluation"):
    comparison = comparison_job.result()   # started with section 4
    report.write_table(comparison, OUT, "model_comparison.csv")
for protocol, mode in comparison.drop_duplicates("protocol")[["protocol", "mode"]].itertuples(index=False):
    print(f"protocol {protocol}: {mode}")
show = [c for c in comparison.columns if c in ("protocol", "model", "n_folds") or c.endswith("_mean")]
display(comparison[show])

# %% [markdown]
# Lower is better for MAE, RPS, JS, KL, |Δ expected tries| and the largest bucket error (`max_error_pp`); higher is
# better for `cosine_mean` and `r2_mean`; a coverage should sit near the nominal level (`BOOTSTRAP_CI`, 95%), and at
# that coverage a narrower width is better. The `mode` column of the CSV names each row's protocol (A: cross-validation,
# B: the date cut-off), printed above the table. Within each protocol the best RPS comes first. A model that cannot beat
# `mean_distribution` has learned nothing about words.

# %% [markdown]
# ## 6. Bootstrap uncertainty and the holdout word
#
# `BOOTSTRAP_B` replicas, each trained on a resample of all observed words, predict every word and the holdout
# word (by default EERIE on 2023-03-01). `moe_bootstrap_pred_summary.csv` has mean, std and the
# `BOOTSTRAP_CI` percentile interval per word and bucket (in-sample for the observed words; the honest
# out-of-sample coverage is in the evaluation above).
#
# Two intervals, two questions. The bootstrap percentile interval (`low`, `high`) is the interval **of the mean**:
# how sure the model is of its average prediction. The **predictive** interval (`pred_low`, `pred_high`) is where
# the observed share of a word like this is expected to fall: the mean plus the spread of residuals held out inside
# the training words (5-fold, single model). Only the predictive interval is meant to contain an observed day
# (~95% under protocol A, see the evaluation); `holdout_<word>_predictions_with_ci.csv` carries both.
#
# The ensemble is saved to `model/bootstrap/` (weights, configuration, feature names, scaling statistics, the
# held-out residuals and the hashes of the data and feature code), the single model of section 4 to
# `model/single/`: `wordle-moe predict WORD` answers from them without retraining.

# %%
with run.section("bootstrap"):
    P_boot, boot_info = mb.bootstrap_predict(X, P, np.vstack([X, X_holdout]), n_reported=data.n_reported,
                                             progress=True)
    summary = mb.bootstrap_summary(P_boot)
    # the held-out residuals of the predictive interval (5 single-model fits, in parallel), computed once: they
    # give the interval below and are saved with the ensemble for `predict`
    residuals = ensemble_residuals(X, P, CFG, data.n_reported, seed=int(CFG.seed))
    saved_boot = persistence.save_ensemble(OUT / "model" / "bootstrap", boot_info["models"][0], data, CFG,
                                           residuals=residuals, extra={"population": "mcm", "populations": ["mcm"]})
    pred_low, pred_high = predictive_interval(summary["mean"], summary["low"], summary["high"], residuals,
                                                 mb.BOOTSTRAP_CI)
    B = P_boot.shape[0]
    words_pred = [*WORDS, HOLDOUT_WORD]
    dates_pred = [*data.dates, pd.Timestamp(HOLDOUT_DATE)]
    P_true_pred = np.vstack([P, np.full((1, 7), np.nan)])
    report.write_table(report.bootstrap_summary_frame(words_pred, summary, mb.BOOTSTRAP_CI, P_true_pred, dates_pred),
                       OUT, "moe_bootstrap_pred_summary.csv")
    holdout = report.holdout_frame(HOLDOUT_WORD, HOLDOUT_DATE, summary, mb.BOOTSTRAP_CI, B, row=-1,
                                   predictive=(pred_low, pred_high))
    names = report.holdout_filenames(HOLDOUT_WORD)
    report.write_table(holdout, OUT, names["csv"])
    report.write_figure(analysis.plot_holdout_bar_ci(holdout), OUT, names["bar"])
    report.write_figure(analysis.plot_holdout_violin(P_boot[:, -1, :], HOLDOUT_WORD, HOLDOUT_DATE), OUT,
                        names["violin"])
    # do the replicas disagree on the holdout word more than on 99% of the observed words? (names the inputs
    # outside the training range; the same check `predict` and `predict_word` make with the saved reference)
    disagreement_warning = disagreement.describe(
        HOLDOUT_WORD, HOLDOUT_DATE, P_boot[:, -1], X_holdout[0], data.feature_names,
        disagreement.reference_stats(P_boot[:, :-1], X))
    run.note("bootstrap", {"B": B, "ci_level": mb.BOOTSTRAP_CI, "holdout_disagreement": disagreement_warning})
print(disagreement_warning or f"The replicas agree on {HOLDOUT_WORD.upper()} as well as on 99% of the observed words "
      "(every bucket's replica std at or below its 99th percentile there).")
display(holdout[["bucket_label", "mean_pct", "pred_low_pct", "pred_high_pct", "low_pct", "high_pct"]])
display(Image(OUT / names["bar"]))
display(Image(OUT / names["violin"]))

# %% [markdown]
# The bars are the bootstrap mean share of players per bucket, the error bars the interval of the mean; the violins
# show the spread of the replicas. Wide intervals mean the training words disagree about words like this one.
#
# **Why this prediction.** `wordle-moe explain WORD` (below, for the holdout word and the saved ensemble) shows
# which expert the replicas send the word to, how decided the gate is, the inputs that move the gate most (for the
# linear gate each input's exact share of the logit margin between the chosen expert and the runner-up; for an MLP
# gate a first-order approximation) and the five nearest observed words in the model's input space with what
# players actually did on them.

# %%
with run.section("explain"):
    explanation = explain.explain_word(mb.load_model(saved_boot), HOLDOUT_WORD, HOLDOUT_DATE, data=data)
print(explain.render_explanation(explanation, source=str(saved_boot.relative_to(OUT))))

# %% [markdown]
# ## 7. Grid search
#
# `RUN_GRID_SEARCH=True` scores the full knob grid (NUM_EXPERTS × TOP_K × HIDDEN_SIZE × aux × diversity
# coefficients) by cross-validation — slow. Otherwise a real two-configuration grid around the current knobs is
# scored, so `grid_search_results.csv` always holds measured numbers (its `mode` column says which).
# Beside accuracy, every configuration gets `stability_ari`: each cross-validation fold's model routes all words,
# and the folds' primary-expert partitions are compared by the mean pairwise adjusted Rand index (1 = the same
# grouping, 0 = no more alike than chance; `stability_ari_baseline` is that chance level, measured with shuffled
# labels of the same group sizes). Differentiation (`routed_js`, `rank_distance`) compares each expert's routed
# mean output — its gate-weighted mean over the held-out words it handles.
#
# Selection rule: among configurations within one standard error of the best RPS whose every expert group holds
# at least 10% of the words (`balanced`), the most stable grouping wins (`stability_ari`, compared at two
# decimals), then the most differentiated experts (`routed_js`), then the lower RPS. Folds: 3 by default (3 fold
# pairs for the ARI), 5 with `RUN_GRID_SEARCH=True` (10 pairs), 2 in QUICK runs; the router comparison below uses
# the same number.

# %%
with run.section("grid_search"):
    SEARCH_CV = 2 if QUICK else (5 if RUN_GRID_SEARCH else 3)
    grid = parameters.grid_for_run(mb, full=RUN_GRID_SEARCH)
    grid_results = search.grid_search(X, P, grid, base_config=CFG, cv=SEARCH_CV,
                                      n_jobs=WORKERS, seed=SEED, n_reported=data.n_reported,
                                      progress=True)
    grid_results.insert(1, "mode", "full_grid" if RUN_GRID_SEARCH else "two_configurations")
    report.write_table(grid_results, OUT, "grid_search_results.csv")
    run.note("grid_search", {"grid": grid, "seconds": grid_results["seconds"].tolist(),
                             "selected": search.select_configuration(grid_results)})
display(grid_results.drop(columns=["seconds"]))

# %% [markdown]
# ## 8. Router comparison
#
# The four routers (Top-K, noisy Top-K, expert choice, reputation-based selection) with 3 experts at top-1 and
# top-2 — where they can differ (with top-k = number of experts every router selects every expert, so all four
# would be the same model). Eight rows, each scored by cross-validation: accuracy (RPS, MAE), load balance
# (`load_cv`, usage entropy), how different the experts' routed outputs are (`routed_js`), how reproducible the
# grouping is across folds (`stability_ari` beside its random baseline), and the override rate: the share of
# words whose selected experts differ from the gate's own top-k — at inference (`override_rate`) and in training
# mode (`override_rate_training`: noise on, expert-choice capacity). Noisy top-k and expert choice route by the
# gate's top-k at inference by design (0 there); only the reputation router's incentives can override it then.

# %%
with run.section("router_comparison"):
    routers = search.compare_routers(X, P, num_experts=3, top_ks=(1, 2), base_config=CFG,
                                     cv=SEARCH_CV, n_jobs=WORKERS, seed=SEED,
                                     n_reported=data.n_reported, progress=True)
    report.write_table(routers, OUT, "router_comparison.csv")
display(routers)

# %% [markdown]
# ## 9. Expert-grouping analysis
#
# All observed words are passed through the single model of section 4 and its routing is read out
# (`intermediates`: the full softmax gate, the Top-K gates, every expert's output and the mixture).
# Whenever an expert's output is summarised, it is its **routed** output: gate-weighted over the words it
# handles (Top-K gate > 0). Its output on words routed elsewhere never enters a prediction and is not shown as
# what it predicts.
#
# One model's grouping may not survive retraining. So the same words are also routed by every bootstrap replica
# of section 6; their groupings are compared in 9.9 (does the grouping reproduce?) and the figures below mark the
# words whose group the replicas' consensus confirms. The replicas' expert numbers are matched to this model's
# experts by their routed mean outputs (Hungarian matching), so "expert 1" means the same thing throughout.
#
# The heavy training still ahead (the two tables of 9.9–9.10, section 10's WordleBot models) starts in the first cell
# below, in a background thread of this kernel: the worker processes train it while this section draws its figures,
# and the cell that shows a result waits for it. Every result is the same as when computed in place.
#
# ### 9.1 Top-K assignment
#
# Each word's weights are the sparse Top-K gates the model actually mixes with; its primary expert is the largest.
# With `TOP_K < NUM_EXPERTS`, the experts outside a word's Top-K get weight exactly 0 for that word — with
# NUM_EXPERTS=3, TOP_K=2 every word has one zero column — and an expert that is never ranked first owns no word.

# %%
with run.section("analysis_assignment"):
    # in the background (see above): the procedure tables of 9.9 and 9.10. 3 outer folds, 6 replicas and the ridge
    # strengths as configured (no inner CV, so no choice sees a held-out word) keep them fast;
    # benchmarks/expert_count.py measures the same with 5 folds, more replicas and the strengths chosen by nested CV
    ORIGIN_CV, ORIGIN_B = (2, 2) if QUICK else (3, 6)
    TABLE_CFG, EXPERT_COUNTS = CFG.replace(penalty_cv=0), (1, 2) if QUICK else (1, 2, 3, 4)
    origin_job = parallel.in_background(agreement.gate_origin_comparison, X, P, TABLE_CFG, cv=ORIGIN_CV, B=ORIGIN_B,
                                        seed=SEED)
    expert_count_job = parallel.in_background(agreement.expert_count_comparison, X, P, TABLE_CFG,
                                              counts=EXPERT_COUNTS, cv=ORIGIN_CV, B=ORIGIN_B, seed=SEED)
    # then section 10's WordleBot models: protocol C and the all-sources ensemble
    from wordle_moe import forecast
    from wordle_moe.dataset import ALL_SOURCES
    from wordle_moe.wordlebot import WORDLEBOT_DATA

    data_all = mb.load_dataset(sources=ALL_SOURCES)
    B_FORECAST, B_ALL = min(CFG.bootstrap_b, 4 if QUICK else 20), min(CFG.bootstrap_b, 4 if QUICK else 50)
    c_models, c_stand_in = forecast.protocol_c_models(CFG, B_FORECAST, quick=QUICK, seed=SEED)
    protocol_c_job = parallel.in_background(
        forecast.protocol_c_comparison, c_models, "moe", data_all.X, data_all.P, data_all.dates, data_all.population,
        data_all.words, ci_level=mb.BOOTSTRAP_CI, calibration_estimator=c_stand_in, cv=2 if QUICK else 5, seed=SEED,
        n_day_draws=500 if QUICK else 2000)
    all_sources_job = parallel.in_background(mb.MoEDistributionRegressor.from_config(CFG, B_ALL).fit, data_all.X,
                                             data_all.P)
    inter = mb.intermediates(model, X)
    topk_table = analysis.topk_assignment(WORDS, inter)
    report.write_assignment(topk_table, OUT, "topk")
    # every bootstrap replica routes all words; labels anchored on this model's routed mean outputs
    grouping = agreement.grouping_stability(agreement.replica_routing(boot_info["models"], X),
                                            reference=agreement.routed_mean_outputs(inter["expert_outputs"],
                                                                                    inter["gates"])[0], seed=SEED)
    stability_frame = analysis.stability_table(WORDS, grouping)
    reproduced_topk = analysis.reproduced_words(topk_table["primary_expert"], stability_frame)
weight_cols = [c for c in topk_table.columns if c.endswith("_weight")]
print("words owned under Top-K:", analysis.ownership_counts(topk_table).to_dict())
print("zero-weight experts per word:", (topk_table[weight_cols] == 0).sum(axis=1).value_counts().to_dict())
display(topk_table.head())

# %% [markdown]
# ### 9.2 Diagnosis: why an expert goes unused
#
# Per expert: how often the softmax ranks it 1st, 2nd, 3rd…, its mean gate mass before Top-K (softmax) and after
# (sparse gates), on how many words it gets any weight, and how many words it owns. Note that the argmax of the
# softmax is always the argmax of the Top-K gates (renormalising keeps the order), so "use the softmax argmax"
# cannot revive an expert that is never first.
#
# Below the model's own table, the effect is reproduced twice: a real model with NUM_EXPERTS=3, TOP_K=2 trained on
# the same split (unless the run already uses that setting) — its third-ranked expert gets weight 0 on every word —
# and a constructed gate that ranks expert 2 last for every word: expert 2 then gets weight 0 everywhere and owns
# nothing under Top-K.

# %%
with run.section("analysis_diagnosis"):
    diagnosis = analysis.diagnose_expert_usage(inter)
    if (CFG.num_experts, CFG.top_k) == (3, 2):
        inter_32 = inter
    else:
        model_32, _ = mb.train_moe(X[tr], P[tr], X[va], P[va], num_experts=3, top_k=2, penalty_cv=0,
                                   n_reported=data.n_reported[tr], n_reported_val=data.n_reported[va])
        inter_32 = mb.intermediates(model_32, X)
    diagnosis_32 = analysis.diagnose_expert_usage(inter_32)
    demo = analysis.constructed_unused_expert_intermediates(n_words=60, num_experts=3, top_k=2, seed=SEED)
    demo_diagnosis = analysis.diagnose_expert_usage(demo)
    run.note("diagnosis", diagnosis.to_dict(orient="list"))
print(analysis.explain_expert_usage(diagnosis, CFG.top_k))
display(diagnosis)
zero_cols = (analysis.topk_assignment(WORDS, inter_32).filter(like="_weight") == 0).sum(axis=1)
print(f"\nNUM_EXPERTS=3, TOP_K=2 model: {int((zero_cols == 1).sum())} of {len(zero_cols)} words give exactly one "
      "expert weight 0 (the third-ranked one).")
print(analysis.explain_expert_usage(diagnosis_32, 2))
display(diagnosis_32)
print("\nConstructed case (expert 2 always ranked last, 3 experts, Top-2):")
print(analysis.explain_expert_usage(demo_diagnosis, 2))
display(demo_diagnosis)

# %% [markdown]
# ### 9.3 The fix: softmax assignment
#
# Weights are now the full softmax probabilities (every expert, before Top-K). Ownership rule, chosen because
# the plain argmax would repeat the Top-K result: each word goes to the expert with the highest **relative**
# affinity `p_ie / mean_i p_ie` — the expert for which this word is most typical compared with that expert's
# average share. If an expert still owned no word, it would take the words where its relative affinity is highest
# (never emptying another expert). So every expert owns at least one word.

# %%
with run.section("analysis_softmax"):
    softmax_table = analysis.softmax_assignment(WORDS, inter)
    report.write_assignment(softmax_table, OUT, "softmax")
    reproduced_soft = analysis.reproduced_words(softmax_table["primary_expert"], stability_frame)
print("words owned under the softmax rule:", analysis.ownership_counts(softmax_table).to_dict())
display(softmax_table.head())

# %% [markdown]
# ### 9.4 Word clouds per expert
#
# Each panel shows the words an expert owns, each sized by its gate weight for that expert: first by the Top-K
# gates (`expert_wordclouds.png`; an unused expert has an empty panel), then by the softmax rule
# (`expert_wordclouds_fixed.png`). Words drawn grey are not confirmed by the bootstrap replicas: their consensus
# puts the word with another expert, or fewer than half of them agree (see 9.9). Without the optional `wordcloud`
# package, bar charts of the top words are drawn.

# %%
with run.section("analysis_wordclouds"):
    report.write_figure(analysis.plot_expert_wordclouds(
        topk_table, title="Top-K assignment: words per expert, size = Top-K gate weight", seed=SEED,
        reproduced=reproduced_topk), OUT, "expert_wordclouds.png")
    report.write_figure(analysis.plot_expert_wordclouds(
        softmax_table, title="Softmax assignment: words per expert, size = softmax probability", seed=SEED,
        reproduced=reproduced_soft), OUT, "expert_wordclouds_fixed.png")
display(Image(OUT / "expert_wordclouds.png"))
display(Image(OUT / "expert_wordclouds_fixed.png"))

# %% [markdown]
# ### 9.5 Feature statistics per expert
#
# Mean, std, median, min and max of every feature (the six key features first) over the words each expert owns
# under the softmax rule → `expert_feature_statistics_fixed.csv`. The figure shows the six key features per expert
# under the Top-K assignment (`expert_feature_distributions.png`): look for an expert whose box sits apart — e.g.
# rarer words (low Zipf-value) or words with many one-letter neighbours (hard to pin down in six tries).
# `n_words_reproduced` / `mean_reproduced` (CSV) and the dark dots (figure) restrict this to the words whose group
# the bootstrap consensus confirms; a difference that vanishes there is a property of this one model.

# %%
with run.section("analysis_statistics"):
    feature_stats = analysis.expert_feature_statistics(softmax_table, data.features, reproduced=reproduced_soft)
    report.write_table(feature_stats, OUT, "expert_feature_statistics_fixed.csv")
    report.write_figure(analysis.plot_feature_distributions(
        topk_table, data.features, title="Key features of the words each expert owns (Top-K assignment)",
        reproduced=reproduced_topk, seed=SEED), OUT, "expert_feature_distributions.png")
key = feature_stats[feature_stats["key_feature"]]
display(key.pivot(index="feature", columns="expert", values=["mean", "mean_reproduced"]))
display(Image(OUT / "expert_feature_distributions.png"))

# %% [markdown]
# ### 9.6 Prediction distributions per expert
#
# Left: the model's mean predicted distribution for the words each expert owns (softmax rule), with a 10–90% band.
# Right: each expert's own output on the words it handles, gate-weighted by the Top-K gates — the expert's
# "personality": an expert peaking at 5 tries or with a heavy X bucket is the one handling hard words. Words routed
# elsewhere are left out: there the expert's output is never used (and can be absurd, e.g. 100% in one bucket).

# %%
with run.section("analysis_predictions"):
    report.write_figure(analysis.plot_prediction_distributions(softmax_table, inter), OUT,
                        "expert_prediction_distributions_fixed.png")
display(Image(OUT / "expert_prediction_distributions_fixed.png"))

# %% [markdown]
# ### 9.7 Parallel coordinates of the experts
#
# At each bucket the experts are ranked by their routed mean share (gate-weighted over the words each expert
# handles; 1 = largest). Crossing lines mean the
# experts swap order between buckets — they predict different shapes, not just shifted levels. The heatmap is the
# Euclidean distance between the experts' rank vectors (0 = same order everywhere; at most √(7·(E−1)²)); the bars
# give each expert's rank stability (std of its rank over the buckets) and its average rank.

# %%
with run.section("analysis_ranks"):
    fig, rank_summary = analysis.plot_expert_parallel_coordinates(inter)   # sparse gates: routed means
    report.write_figure(fig, OUT, "expert_parallel_coordinates.png")
    run.note("ranks", {k: rank_summary[k] for k in ("peak_positions", "avg_rank", "rank_stability", "rank_distances")})
display(Image(OUT / "expert_parallel_coordinates.png"))
print({k: np.round(rank_summary[k], 3).tolist() for k in ("peak_positions", "avg_rank", "rank_stability")})

# %% [markdown]
# ### 9.8 Sample words: how the gates mix the experts
#
# For a few words (the word each expert is most sure about, and the most evenly split word): the observed
# distribution (grey bars), the output of every expert the word is routed to (dashed, in the expert's colour), the
# mixture the model predicts (black), and the gates before and after Top-K. An expert whose Top-K gate is 0 for the
# word is drawn grey and dotted and labelled "not used for this word": its output there is not a prediction.

# %%
with run.section("analysis_decomposition"):
    report.write_figure(analysis.plot_sample_expert_decomposition(WORDS, P, inter), OUT,
                        "expert_decomposition_samples.png")
display(Image(OUT / "expert_decomposition_samples.png"))

# %% [markdown]
# ### 9.9 Does the grouping reproduce, and was it learned?
#
# Every bootstrap replica of section 6 (trained on its own resample of the words) routes all words; each word's
# primary expert per replica is the largest Top-K gate. Replica labels are aligned to this model's experts by
# their routed mean outputs. Per word, `expert_assignment_stability.csv` gives the consensus expert (most frequent
# aligned label), the confidence (share of replicas agreeing) and each expert's share. The adjusted Rand index
# (ARI) compares two groupings without any alignment: 1 = identical, 0 = no more alike than chance.
#
# Agreement between replicas is not yet structure the model found: every replica's gate STARTS as a split of a ridge
# fit of expected tries at its median, and replicas that keep their start agree because their starts agree. So each
# replica's final grouping is also compared with the grouping it started from (`ari_with_start`), and
# `gate_origin_comparison.csv` trains the same configuration on cross-validation folds (penalties chosen inside each
# fold's training words) four ways: as set, with the gate kept FIXED at its start, and two controls whose gate learns
# freely at the full rate (from the same start; from a random start). Its rows give the held-out RPS (± standard
# error over words; `rps_diff_vs_first` is paired against "as set"), the ARI between replicas, the ARI with the start,
# and how far the experts are apart: `deviation_norm` (size of the experts' deviations from the shared base; 0 =
# copies of one softmax regression) and `same_word_tries_gap` (mean spread of the experts' expected tries for the
# same word), each with its 5–95% range over replicas.
#
# The figure: left, the word × word co-assignment (share of replicas grouping two words together; clean blocks =
# reproducible groups); middle, the per-word confidence; right, the ARI between replicas, of each replica with its
# own start, and of random groupings of the same sizes.

# %%
with run.section("analysis_stability"):
    report.write_stability(stability_frame, OUT)
    with_start = agreement.ari_with_start(boot_info["models"], X)
    origin = origin_job.result()   # started with 9.1
    report.write_table(origin, OUT, "gate_origin_comparison.csv")
    report.write_figure(analysis.plot_assignment_stability(grouping, with_start=with_start), OUT,
                        "expert_assignment_stability.png")
    verdict = analysis.stability_verdict(grouping)
    origin_verdict = analysis.learned_or_imposed(grouping, with_start, origin)
    run.note("grouping_stability", {**grouping.summary(), "verdict": verdict.splitlines()[0],
                                    "learned_or_imposed": origin_verdict.splitlines()[0],
                                    "ari_with_start": with_start.round(6).tolist(),
                                    "ari_with_start_mean": float(with_start.mean()),
                                    "gate_origin_comparison": origin.to_dict(orient="records"),
                                    "words_reproduced_topk": int(reproduced_topk.sum()),
                                    "words_reproduced_softmax": int(reproduced_soft.sum())})
print(verdict)
print(origin_verdict)
print(f"This model's Top-K grouping: {int(reproduced_topk.sum())} of {len(WORDS)} words confirmed by the consensus.")
display(origin[["procedure", "rps", "rps_se", "rps_diff_vs_first", "rps_diff_se", "ari_between_replicas",
                "ari_with_start", "min_group_share", "deviation_norm", "same_word_tries_gap"]])
display(stability_frame.sort_values("confidence", kind="stable").head(8))
display(Image(OUT / "expert_assignment_stability.png"))

# %% [markdown]
# ### 9.10 How many experts does the data support?
#
# The configuration as set, trained with E = 1, 2, 3 and 4 experts on the same cross-validation folds (ridge
# strengths as configured; bootstrap mean of the replicas), scored on the held-out words.
# `expert_count_comparison.csv`: held-out RPS ± standard error over words, the paired difference to E = 1 ± its
# standard error, and `beats_first`: more experts beat one only where that difference is below zero by more than two
# standard errors. With one expert the model is softmax regression. `deviation_norm` and `same_word_tries_gap` show how
# far the experts are apart (0 = copies of one softmax regression: then the extra experts are no mixture at all).

# %%
with run.section("analysis_expert_count"):
    expert_count = expert_count_job.result()   # started with 9.1
    report.write_table(expert_count, OUT, "expert_count_comparison.csv")
    more = expert_count[expert_count["num_experts"] > 1]
    if more["beats_first"].any():
        count_verdict = ("More experts beat one: " + ", ".join(more.loc[more["beats_first"], "procedure"])
                         + " has a lower held-out RPS than E=1 by more than two standard errors.")
    else:
        count_verdict = ("No number of experts beats one: every E > 1 is within two standard errors of E=1 (or worse) "
                         "on held-out RPS, so the data supports one expert (softmax regression); extra experts add "
                         "no measurable accuracy here.")
    run.note("expert_count", {"verdict": count_verdict, "table": expert_count.to_dict(orient="records")})
print(count_verdict)
display(expert_count[["procedure", "rps", "rps_se", "rps_diff_vs_first", "rps_diff_se", "beats_first",
                      "ari_between_replicas", "ari_with_start", "deviation_norm", "same_word_tries_gap"]])

# %% [markdown]
# ## 10. Beyond 2022: the WordleBot population
#
# Everything above learns from the 359 days of 2022 in the MCM file (results shared on Twitter). A public record
# of later days exists: the New York Times WordleBot's daily result counts for 644 days, 2023-03-29 .. 2024-12-31
# (`data/wordlebot_2023_2024.csv`, MIT licence, provenance in `data/README.md`), about 400,000 normal-mode games a
# day. WordleBot users are another population (mean 3.94 tries against ≈ 4.2 on Twitter), so each row carries two
# 0/1 inputs built from its source alone — `population_wordlebot`, `population_hard_mode` — which the gate sees
# like any other input.
#
# **Protocol C** (trained in the background since 9.1). Train on every MCM day and the WordleBot days before
# 2024-07-01; forecast the 184 WordleBot days 2024-07-01 .. 2024-12-31. Every peer and the MoE are fitted on the
# same rows and scored per day (MAE in pp, RPS,
# JS, KL, |Δ expected tries|, Spearman of predicted vs observed mean tries); `rps_low`/`rps_high` resample the
# test days. The MoE's predictive interval is calibrated by out-of-fold residuals of WordleBot training rows only
# (the MCM rows are a noisier population); its coverage of the observed bucket shares is measured on the test days.

# %%
with run.section("beyond_2022"):
    run.add_data_file(WORDLEBOT_DATA)
    c_table, c_frame, c_fc = protocol_c_job.result()   # started with 9.1 (B_FORECAST replicas of the MoE)
    report.write_table(c_table, OUT, "forecast_wordlebot_comparison.csv")
    report.write_table(c_frame, OUT, "forecast_wordlebot.csv")
    report.write_figure(forecast.plot_forecast(c_frame), OUT, "forecast_wordlebot.png")
    run.note("protocol_C", {"B": B_FORECAST, "n_train": int(c_table["n_train"].iloc[0]),
                            "n_test": int(c_table["n_test"].iloc[0]),
                            "rps": dict(zip(c_table["model"], c_table["rps"].round(6)))})
show = ["model", "mae_pp", "rps", "rps_low", "rps_high", "js", "kl", "abs_delta_expected_tries", "spearman_mean_tries",
        "coverage_bootstrap", "coverage_calibrated", "width_calibrated_pp", "rps_ratio_to_best_peer"]
display(c_table[show])
display(Image(OUT / "forecast_wordlebot.png"))

# %% [markdown]
# `forecast_wordlebot.csv` has one row per test day: date, word, the observed shares (`observed_1` .. `observed_X`),
# and per bucket the forecast (`pred_<b>`), the bootstrap interval of the mean (`boot_low_<b>`, `boot_high_<b>`)
# and the calibrated predictive interval (`pi_low_<b>`, `pi_high_<b>`), then the same for the mean tries. The
# bootstrap interval says how sure the model is of its mean; only the predictive interval is meant to contain the
# observed day, and its coverage above is the honest check.
#
# **The forecasting model and its experts.** The ensemble `predict` uses by default is trained on every day of
# both sources (MCM and WordleBot normal mode, through 2024-12-31) and saved to `model/all_sources/`, with the
# WordleBot residuals above for its predictive interval. Which experts do WordleBot days and MCM days go to? Each
# replica's experts are ordered by the gate mass MCM days give them (expert 0 = the MCM days' main expert), then
# the mean gate weight per population is averaged over replicas, with the 2.5–97.5% range across replicas beside
# it, and the share of replicas in which the two populations' main experts differ.

# %%
with run.section("beyond_2022_model"):
    all_sources = all_sources_job.result()   # started with 9.1: B_ALL replicas on every day of both sources
    routing = forecast.routing_by_population(all_sources.bootstrap_models_, data_all.X, data_all.population)
    routing_table = forecast.routing_summary(routing)
    split_share = forecast.routing_split_share(routing)
    first_day, last_day = training_date_range(data_all)
    saved_all = persistence.save_ensemble(
        OUT / "model" / "all_sources", all_sources.bootstrap_models_[0], data_all, CFG, residuals=c_fc["residuals"],
        data_files={"mcm": paths.RAW_DATA, "wordlebot": WORDLEBOT_DATA, "answers": paths.ANSWERS,
                    "allowed": paths.ALLOWED},
        extra={"population": "wordlebot", "populations": sorted(set(data_all.population)),
               "sources": list(ALL_SOURCES), "residuals_population": "wordlebot",
               "residuals_from": "protocol C training rows (inner 5-fold, WordleBot rows only)"})
    run.note("beyond_2022_model", {"B": B_ALL, "n_rows": len(data_all.X), "date_range": [str(first_day.date()),
             str(last_day.date())], "routing": routing_table.round(4).to_dict(orient="records"),
             "replicas_with_different_main_expert": split_share})
gate = routing_table.set_index(["population", "expert"])
display(gate["mean"].unstack("expert").round(3))
print(f"{B_ALL} replicas trained on {len(data_all.X)} days ({first_day.date()} .. {last_day.date()}), saved to "
      f"{saved_all.relative_to(OUT)}. MCM days put {gate.loc[('mcm', 0), 'mean']:.0%} of their gate mass on expert 0 "
      f"(range over replicas {gate.loc[('mcm', 0), 'q025']:.0%}–{gate.loc[('mcm', 0), 'q975']:.0%}); WordleBot days "
      f"{gate.loc[('wordlebot', 0), 'mean']:.0%} ({gate.loc[('wordlebot', 0), 'q025']:.0%}–"
      f"{gate.loc[('wordlebot', 0), 'q975']:.0%}). In {split_share:.0%} of the replicas the two populations' main "
      f"experts differ.")

# %% [markdown]
# ## 11. Files written
#
# Every file in the output folder; `fixed_name` marks the files every complete run writes. `run_manifest.json` records the
# parameters, data hashes, package versions and the time each section took.

# %%
with run.section("outputs"):
    listing = report.list_outputs(OUT, HOLDOUT_WORD)
    run.add_outputs(listing.loc[listing["exists"], "file"])
run.finish()
missing = listing.loc[listing["fixed_name"] & ~listing["exists"], "file"].tolist()
print("missing fixed-name files:", missing or "none")
print(pd.Series(run.timings, name="seconds").round(2).to_string())
display(listing)
