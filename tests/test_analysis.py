"""Tests of the expert-grouping analysis on constructed intermediates with known answers."""
from __future__ import annotations

import sys

import matplotlib
import numpy as np
import pandas as pd
import pytest

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

import analysis  # noqa: E402
from analysis import wordclouds  # noqa: E402
from analysis.assignment import relative_affinity, topk_gates_from_scores  # noqa: E402
from wordle_moe.paths import PRED_COLUMNS  # noqa: E402

KEYS = ["Zipf-value", "letter_entropy", "feedback_entropy", "scrabble_score", "hamming_neighbors",
        "semantic_distance"]


def make_intermediates(n: int = 40, E: int = 3, k: int = 2, seed: int = 0, last: int | None = None) -> dict:
    """Synthetic model intermediates: softmax gates, Top-K gates, Dirichlet expert outputs and their mixture."""
    if last is not None:
        return analysis.constructed_unused_expert_intermediates(n, E, k, last_expert=last, seed=seed)
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(n, E))
    scores = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    topk = topk_gates_from_scores(scores, k)
    outputs = rng.dirichlet(np.ones(7) * 3, size=(n, E))
    return {"gate_scores": scores, **topk, "expert_outputs": outputs,
            "final_output": np.einsum("ne,nek->nk", topk["gates"], outputs), "load_balance_loss": 0.0}


def make_words(n: int) -> list[str]:
    rng = np.random.default_rng(1)
    return ["".join(rng.choice(list("abcdefghijklmnopqrstuvwxyz"), 5)) + f"{i}" for i in range(n)]


def make_features(words: list[str], seed: int = 2) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({"word": words, "date": pd.NaT})
    for j, name in enumerate(KEYS + ["vowel_count"]):
        df[name] = rng.normal(j, 1, len(words))
    return df


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def test_topk_gates_match_design_note_procedure():
    scores = np.array([[0.5, 0.3, 0.2], [0.1, 0.2, 0.7], [0.4, 0.4, 0.2]])
    out = topk_gates_from_scores(scores, 2)
    np.testing.assert_allclose(out["gates"], [[0.625, 0.375, 0], [0, 2 / 9, 7 / 9], [0.5, 0.5, 0]])
    np.testing.assert_array_equal(out["top_k_indices"], [[0, 1], [2, 1], [0, 1]])


def test_topk_assignment_columns_sums_and_primary():
    inter = make_intermediates(30, 3, 2)
    words = make_words(30)
    df = analysis.topk_assignment(words, inter)
    assert list(df.columns) == ["word", "primary_expert", "expert_0_weight", "expert_1_weight", "expert_2_weight",
                                *PRED_COLUMNS]
    np.testing.assert_allclose(df.filter(like="_weight").sum(axis=1), 1, atol=1e-12)
    np.testing.assert_allclose(df[PRED_COLUMNS].sum(axis=1), 1, atol=1e-12)
    np.testing.assert_array_equal(df["primary_expert"], inter["gate_scores"].argmax(axis=1))
    # Top-2 of 3: every word has exactly one expert with weight 0
    assert ((df.filter(like="_weight") == 0).sum(axis=1) == 1).all()


def test_unused_expert_reproduced_and_diagnosed():
    inter = make_intermediates(50, 3, 2, last=2)
    words = make_words(50)
    topk = analysis.topk_assignment(words, inter)
    assert analysis.ownership_counts(topk).tolist()[2] == 0
    assert (topk["expert_2_weight"] == 0).all()
    diag = analysis.diagnose_expert_usage(inter).set_index("expert")
    assert diag.loc[2, "n_rank_3"] == 50 and diag.loc[2, "n_rank_1"] == 0
    assert diag.loc[2, "mean_topk_gate"] == 0 and diag.loc[2, "mean_softmax_prob"] > 0
    assert diag.loc[2, "n_words_weight_gt_0"] == 0 and bool(diag.loc[2, "unused_under_topk"])
    # the plain softmax argmax equals the Top-K argmax: it cannot revive expert 2
    assert diag.loc[2, "n_owned_softmax_argmax"] == 0
    assert diag.loc[2, "n_owned_relative_softmax"] >= 1
    assert diag[["n_rank_1", "n_rank_2", "n_rank_3"]].sum().tolist() == [50, 50, 50]
    np.testing.assert_allclose(diag["mean_topk_gate"].sum(), 1)
    text = analysis.explain_expert_usage(diag.reset_index(), 2)
    assert "expert(s) [2]" in text


def test_softmax_assignment_rule_and_every_expert_owns_words():
    inter = make_intermediates(50, 3, 2, last=2)
    words = make_words(50)
    df = analysis.softmax_assignment(words, inter)
    counts = analysis.ownership_counts(df)
    assert (counts >= 1).all() and counts.sum() == 50
    np.testing.assert_allclose(df.filter(like="_weight").to_numpy(), inter["gate_scores"], atol=1e-12)
    rel = inter["gate_scores"] / inter["gate_scores"].mean(axis=0)
    np.testing.assert_array_equal(df["primary_expert"], rel.argmax(axis=1))


def test_softmax_assignment_guarantee_steals_best_relative_word():
    # expert 2's share barely varies: its relative affinity never beats the others' under the plain rule
    scores = np.array([[0.8, 0.1, 0.1], [0.1, 0.8, 0.1], [0.45, 0.45, 0.1], [0.67, 0.2, 0.13]])
    inter = {"gate_scores": scores, **topk_gates_from_scores(scores, 2), "final_output": np.full((4, 7), 1 / 7)}
    rel = relative_affinity(scores)
    assert rel.argmax(axis=1).tolist().count(2) == 0  # plain relative rule leaves expert 2 empty
    df = analysis.softmax_assignment(list("abcd"), inter)
    # before: expert 0 owns a, d; expert 1 owns b, c. Expert 2 takes its highest-affinity word, d, from
    # expert 0, which keeps a.
    assert analysis.ownership_counts(df).tolist() == [1, 2, 1]
    assert df.set_index("word")["primary_expert"].to_dict() == {"a": 0, "b": 1, "c": 1, "d": 2}
    with pytest.raises(ValueError, match="cannot give"):
        analysis.softmax_assignment(list("abcd"), inter, min_words=2)


def test_bad_intermediates_raise_clearly():
    inter = make_intermediates(10)
    with pytest.raises(ValueError, match="10 rows"):
        analysis.topk_assignment(make_words(9), inter)
    with pytest.raises(KeyError, match="gates"):
        analysis.topk_assignment(make_words(10), {"gate_scores": inter["gate_scores"]})


def test_feature_statistics_by_hand():
    inter = make_intermediates(40, 3, 2)
    words = make_words(40)
    df = analysis.softmax_assignment(words, inter)
    feats = make_features(words).iloc[::-1]  # out of order: joined by word
    stats = analysis.expert_feature_statistics(df, feats)
    assert list(stats.columns) == ["expert", "feature", "key_feature", "n_words", "mean", "std", "median", "min",
                                   "max"]
    assert stats["feature"].iloc[:6].tolist() == KEYS and stats["key_feature"].sum() == 18
    owned = df.loc[df["primary_expert"] == 1, "word"]
    vals = feats.set_index("word").loc[owned, "scrabble_score"]
    row = stats[(stats["expert"] == 1) & (stats["feature"] == "scrabble_score")].iloc[0]
    assert row["n_words"] == len(owned)
    np.testing.assert_allclose([row["mean"], row["std"], row["median"]], [vals.mean(), vals.std(), vals.median()])
    keys_only = analysis.expert_feature_statistics(df, feats, all_features=False)
    assert set(keys_only["feature"]) == set(KEYS)


def test_feature_statistics_keep_an_empty_expert():
    inter = make_intermediates(30, 3, 2, last=2)
    words = make_words(30)
    stats = analysis.expert_feature_statistics(analysis.topk_assignment(words, inter), make_features(words))
    empty = stats[stats["expert"] == 2]
    assert (empty["n_words"] == 0).all() and empty["mean"].isna().all()


def _absurd_elsewhere(inter: dict) -> dict:
    """The same intermediates with every expert predicting 100% "1 try" on the words its gate is 0 for."""
    out = inter["expert_outputs"].copy()
    out[inter["gates"] == 0] = np.eye(7)[0]
    return dict(inter, expert_outputs=out)


def test_prediction_statistics_use_routed_outputs_only():
    inter = _absurd_elsewhere(make_intermediates(30, 3, 2))
    df = analysis.softmax_assignment(make_words(30), inter)
    stats = analysis.expert_prediction_statistics(df, inter)
    assert set(stats["source"]) == {"owned_words_mixture", "expert_output_routed"}  # no all-words curve by default
    own = stats[(stats["source"] == "owned_words_mixture") & (stats["expert"] == 0)]["mean"].to_numpy()
    np.testing.assert_allclose(own, df.loc[df["primary_expert"] == 0, PRED_COLUMNS].mean().to_numpy())
    g = inter["gates"][:, 1]
    routed = stats[(stats["source"] == "expert_output_routed") & (stats["expert"] == 1)]
    expected = (g[:, None] * inter["expert_outputs"][:, 1]).sum(axis=0) / g.sum()
    np.testing.assert_allclose(routed["mean"].to_numpy(), expected)
    assert (routed["n_words"] == (g > 0).sum()).all()
    handled = inter["expert_outputs"][g > 0, 1]
    assert (routed["q90"].to_numpy() <= handled.max(axis=0) + 1e-12).all()
    assert routed["q10"].iloc[0] < 0.9   # the absurd 100% "1 try" outputs elsewhere are not in the band
    diag = analysis.expert_prediction_statistics(df, inter, all_words_diagnostic=True)
    alls = diag[(diag["source"] == "expert_output_all_words_diagnostic") & (diag["expert"] == 1)]["mean"]
    np.testing.assert_allclose(alls.to_numpy(), inter["expert_outputs"][:, 1, :].mean(axis=0))


def test_weighted_quantiles_match_numpy_with_unit_and_repeated_weights():
    from analysis.statistics import _weighted_quantiles

    v = np.random.default_rng(0).random((25, 3))
    np.testing.assert_allclose(_weighted_quantiles(v, np.ones(25), (0.1, 0.9)),
                               np.quantile(v, (0.1, 0.9), axis=0, method="inverted_cdf"))
    w = np.arange(1, 26)
    rep = np.repeat(v, w, axis=0)  # integer weights == repeated rows
    np.testing.assert_allclose(_weighted_quantiles(v, w.astype(float), (0.25, 0.5)),
                               np.quantile(rep, (0.25, 0.5), axis=0, method="inverted_cdf"))


def test_parallel_coordinates_summary_by_hand():
    means = np.array([[0.1, 0.2, 0.3, 0.2, 0.1, 0.05, 0.05],
                      [0.05, 0.1, 0.2, 0.3, 0.2, 0.1, 0.05],
                      [0.02, 0.05, 0.1, 0.2, 0.3, 0.2, 0.13]])
    fig, s = analysis.plot_expert_parallel_coordinates(means)
    ranks = np.array([[1, 1, 1, 2, 3, 3, 2.5], [2, 2, 2, 1, 2, 2, 2.5], [3, 3, 3, 2, 1, 1, 1]], dtype=float)
    ranks[0, 3] = 2.5
    ranks[2, 3] = 2.5
    np.testing.assert_allclose(s["ranks"], ranks)
    np.testing.assert_array_equal(s["peak_positions"], [2, 3, 4])
    np.testing.assert_allclose(s["avg_rank"], ranks.mean(axis=1))
    np.testing.assert_allclose(s["rank_stability"], ranks.std(axis=1))
    d01 = np.sqrt(((ranks[0] - ranks[1]) ** 2).sum())
    assert s["rank_distances"].shape == (3, 3)
    np.testing.assert_allclose(s["rank_distances"][0, 1], d01)
    np.testing.assert_allclose(s["rank_distances"], s["rank_distances"].T)
    assert fig.axes[0].get_title().startswith("Expert ranks")
    # (n, E, 7) input gives the same as its mean
    _, s2 = analysis.plot_expert_parallel_coordinates(np.repeat(means[None], 4, axis=0))
    np.testing.assert_allclose(s2["rank_distances"], s["rank_distances"])


def test_parallel_coordinates_use_routed_means_and_skip_idle_experts():
    inter = _absurd_elsewhere(make_intermediates(40, 3, 2))
    fig, s = analysis.plot_expert_parallel_coordinates(inter)
    g = inter["gates"]
    routed = np.einsum("ne,nek->ek", g, inter["expert_outputs"]) / g.sum(axis=0)[:, None]
    np.testing.assert_allclose(s["mean_outputs"], routed)
    assert "routed" in fig._suptitle.get_text()
    fig_plain, plain = analysis.plot_expert_parallel_coordinates(inter["expert_outputs"])   # no gates: diagnostic
    np.testing.assert_allclose(plain["mean_outputs"], inter["expert_outputs"].mean(axis=0))
    assert (plain["mean_outputs"][:, 0] > s["mean_outputs"][:, 0] + 0.15).all()  # the absurd "1 try" elsewhere
    assert "ALL words (diagnostic)" in fig_plain._suptitle.get_text()
    idle = make_intermediates(40, 3, 1)
    idle["gates"][:, 2] = 0
    idle["gates"][:, 0] = 1 - idle["gates"][:, 1]
    fig, s = analysis.plot_expert_parallel_coordinates(idle)
    assert np.isnan(s["ranks"][2]).all() and s["peak_positions"][2] == -1
    assert sorted(s["ranks"][:2, 0]) == [1, 2] and np.isnan(s["rank_distances"][0, 2])
    assert "handles no word" in fig.axes[0].get_legend().get_texts()[2].get_text()


def test_decomposition_greys_out_experts_whose_gate_is_zero():
    inter = make_intermediates(20, 3, 2, last=2)                # expert 2 has gate 0 on every word
    fig = analysis.plot_sample_expert_decomposition(make_words(20), None, inter, sample_words=make_words(20)[:1])
    ax = fig.axes[0]
    lines = [ln for ln in ax.get_lines() if len(ln.get_xdata())]
    assert len(lines) == 4                                      # 3 experts + the mixture
    unused = [ln for ln in lines if ln.get_linestyle() == ":"]
    assert len(unused) == 1
    np.testing.assert_allclose(unused[0].get_ydata(), 100 * inter["expert_outputs"][0, 2])
    assert any("not used for this word" in t.get_text() and "expert 2" in t.get_text() for t in ax.texts)
    assert any("not used for this word" in t.get_text() for t in fig.legends[0].get_texts())


def _png_bytes(fig) -> bytes:
    import io

    buf = io.BytesIO()
    fig.savefig(buf, format="png", metadata={"Software": None})
    return buf.getvalue()


def test_feature_distributions_are_deterministic_and_mark_reproduced_words():
    inter = make_intermediates(40, 3, 2)
    words = make_words(40)
    soft = analysis.softmax_assignment(words, inter)
    feats = make_features(words)
    assert _png_bytes(analysis.plot_feature_distributions(soft, feats)) == \
        _png_bytes(analysis.plot_feature_distributions(soft, feats))
    keep = np.arange(40) % 4 != 0
    fig = analysis.plot_feature_distributions(soft, feats, reproduced=keep)
    sizes = sorted(len(c.get_offsets()) for c in fig.axes[0].collections if len(c.get_offsets()) in (10, 30))
    assert sizes == [10, 30]
    assert "30 of 40 words reproduced" in fig._suptitle.get_text()
    stats = analysis.expert_feature_statistics(soft, feats, reproduced=keep)
    assert list(stats.columns)[-2:] == ["n_words_reproduced", "mean_reproduced"]
    row = stats[(stats["expert"] == 0) & (stats["feature"] == "Zipf-value")].iloc[0]
    mask = (soft["primary_expert"].to_numpy() == 0) & keep
    assert row["n_words_reproduced"] == mask.sum()
    np.testing.assert_allclose(row["mean_reproduced"], feats["Zipf-value"].to_numpy()[mask].mean())


def test_feature_dots_sit_on_their_experts_box_when_an_expert_owns_no_word():
    inter = make_intermediates(40, 3, 2, last=0)                    # expert 0 owns no word under Top-K
    words = make_words(40)
    topk = analysis.topk_assignment(words, inter)
    fig = analysis.plot_feature_distributions(topk, make_features(words))
    ax = fig.axes[0]
    ticks = {t.get_text().split("\n")[0]: pos for pos, t in zip(ax.get_xticks(), ax.get_xticklabels())}
    dots = next(c for c in ax.collections if len(c.get_offsets()) == 40).get_offsets()[:, 0]
    expected = np.array([ticks[f"expert {e}"] for e in topk["primary_expert"]])
    assert np.all(np.abs(dots - expected) <= 0.25 + 1e-9)


def test_wordcloud_bars_grey_out_words_not_reproduced(monkeypatch):
    monkeypatch.setitem(sys.modules, "wordcloud", None)
    inter = make_intermediates(30, 3, 2)
    df = analysis.topk_assignment(make_words(30), inter)
    keep = np.zeros(30, bool)
    with pytest.warns(RuntimeWarning):
        fig = wordclouds.plot_expert_wordclouds(df, reproduced=keep)
    grey = wordclouds.NOT_REPRODUCED_COLOR
    assert all(tuple(p.get_facecolor()[:3]) == pytest.approx(grey) for p in fig.axes[0].patches)
    assert "grey" in fig._suptitle.get_text() and "0 reproduced" in fig.axes[0].get_title()


def _stability_result(flip: float, seed: int = 0, R: int = 12, n: int = 60):
    from wordle_moe.agreement import grouping_stability

    rng = np.random.default_rng(seed)
    truth = np.arange(n) % 3
    gates = np.zeros((R, n, 3))
    for r in range(R):
        g = np.where(rng.random(n) < flip, rng.integers(0, 3, n), truth)
        gates[r, np.arange(n), g] = 1
    profiles = np.array([np.roll([0.02, 0.1, 0.3, 0.3, 0.18, 0.07, 0.03], e) for e in range(3)])
    return grouping_stability({"gates": gates, "expert_outputs": np.broadcast_to(profiles, (R, n, 3, 7))})


def test_stability_table_verdict_and_figure():
    words = make_words(60)
    res = _stability_result(0.05)
    table = analysis.stability_table(words, res)
    shares = table[["expert_0_share", "expert_1_share", "expert_2_share"]].to_numpy()
    assert list(table.columns[:3]) == ["word", "consensus_expert", "confidence"]
    np.testing.assert_allclose(shares.sum(axis=1), 1)
    np.testing.assert_allclose(table["confidence"], shares.max(axis=1))
    np.testing.assert_array_equal(table["consensus_expert"], shares.argmax(axis=1))
    assert "IS reproducible" in analysis.stability_verdict(res)
    noisy = _stability_result(1.0)
    assert "NOT reproducible" in analysis.stability_verdict(noisy)
    assert f"{noisy.baseline_ari:.3f}" in analysis.stability_verdict(noisy)
    from wordle_moe.agreement import grouping_stability

    one = grouping_stability({"gates": np.ones((4, 10, 1)), "expert_outputs": np.full((4, 10, 1, 7), 1 / 7)})
    assert one.mean_ari == 1 and "no grouping to reproduce" in analysis.stability_verdict(one)
    agree = analysis.reproduced_words(table["consensus_expert"], table)
    assert agree.all()
    assert not analysis.reproduced_words((table["consensus_expert"] + 1) % 3, table).any()
    fig = analysis.plot_assignment_stability(res)
    assert "reproduce" in fig._suptitle.get_text()
    assert fig.axes[0].images[0].get_array().shape == (60, 60)
    with pytest.raises(ValueError, match="59 words"):
        analysis.stability_table(words[:59], res)


def test_figures_have_titles_and_labels(tmp_path):
    inter = make_intermediates(40, 3, 2, last=2)
    words = make_words(40)
    topk = analysis.topk_assignment(words, inter)
    soft = analysis.softmax_assignment(words, inter)
    figs = {
        "features": analysis.plot_feature_distributions(soft, make_features(words)),
        "preds": analysis.plot_prediction_distributions(soft, inter),
        "decomp": analysis.plot_sample_expert_decomposition(words, np.full((40, 7), 1 / 7), inter,
                                                            sample_words=words[:2]),
        "clouds": analysis.plot_expert_wordclouds(topk),
    }
    for name, fig in figs.items():
        assert fig._suptitle is not None and fig._suptitle.get_text(), name
    assert "share of players (%)" in figs["preds"].axes[0].get_ylabel()
    assert "share of players (%)" in figs["decomp"].axes[0].get_ylabel()
    with pytest.raises(ValueError, match="not among"):
        analysis.plot_sample_expert_decomposition(words, None, inter, sample_words=["zzzzz"])


def test_wordcloud_fallback_when_package_missing(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "wordcloud", None)  # makes `import wordcloud` raise ImportError
    assert not analysis.wordcloud_available()
    inter = make_intermediates(30, 3, 2, last=2)
    df = analysis.topk_assignment(make_words(30), inter)
    with pytest.warns(RuntimeWarning, match="wordcloud is not installed"):
        fig = wordclouds.plot_expert_wordclouds(df)
    assert "wordcloud is not installed" in capsys.readouterr().out
    bars = fig.axes[0]
    assert len(bars.patches) == min(15, (df["primary_expert"] == 0).sum())  # top words as bars
    assert "not installed" in fig._suptitle.get_text()


def test_wordcloud_real_package_draws_images():
    import wordcloud  # noqa: F401  (a core dependency: missing, the test fails)
    inter = make_intermediates(30, 3, 2, last=2)
    fig = analysis.plot_expert_wordclouds(analysis.topk_assignment(make_words(30), inter))
    assert len(fig.axes[0].images) == 1 and len(fig.axes[2].images) == 0  # expert 2 empty panel
    w = wordclouds.expert_word_weights(analysis.topk_assignment(make_words(30), inter), 0)
    assert (w > 0).all() and w.is_monotonic_decreasing


def test_holdout_bars_show_the_predictive_interval_beside_the_interval_of_the_mean():
    import pandas as pd

    from analysis.run_figures import plot_holdout_bar_ci

    mean = np.array([0.01, 0.05, 0.2, 0.3, 0.25, 0.15, 0.04])
    base = pd.DataFrame({"word": "eerie", "date": "2023-03-01", "mean": mean, "low": mean * 0.9, "high": mean * 1.1,
                         "ci_level": 0.95, "bootstrap_B": 10})
    labels = [t.get_text() for t in plot_holdout_bar_ci(base).axes[0].get_legend().get_texts()]
    assert not any("predictive" in t for t in labels) and any("of the mean" in t for t in labels)
    fig = plot_holdout_bar_ci(base.assign(pred_low=mean * 0.5, pred_high=mean * 1.6))
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert any("predictive interval" in t for t in labels) and any("of the mean" in t for t in labels)
    spans = [c.lines[2][0].get_segments() for c in fig.axes[0].containers if hasattr(c, "has_yerr") and c.has_yerr]
    heights = sorted(round(s[3][1][1] - s[3][0][1], 6) for s in spans)  # the 4-try bucket's two bars, in %
    assert heights == [round(100 * 0.3 * 0.2, 6), round(100 * 0.3 * 1.1, 6)]


def test_training_history_routing_axis_spans_the_whole_share():
    """A ±0.75 pp drift of a 50/50 split must look like the small drift it is, not a cliff."""
    ep = np.arange(1, 101)
    drift = 0.0075 * np.sin(ep / 10)
    history = pd.DataFrame({"epoch": ep, "total_loss": 1.0, "main_loss": 1.0, "val_loss": 1.0,
                            "routing_prob_expert_0": 0.5 + drift, "routing_prob_expert_1": 0.5 - drift})
    fig = analysis.plot_training_history(history, best_epoch=50)
    assert fig.axes[2].get_ylim() == (0.0, 100.0)
    plt.close(fig)


def test_learned_or_imposed_names_the_case_with_its_numbers():
    import pandas as pd

    stable, noisy = _stability_result(0.05), _stability_result(1.0)
    R = stable.num_replicas
    kept, moved = np.full(R, 0.9), np.full(R, 0.3)
    origin = pd.DataFrame({"procedure": ["as set", "gate fixed at its start", "free gate, random start"],
                           "rps": [3.0e-3, 3.1e-3, 3.05e-3], "rps_diff_vs_first": [0.0, 1e-4, 5e-5],
                           "rps_diff_se": [0.0, 1e-5, 1e-5], "ari_between_replicas": [0.8, 0.8, 0.05],
                           "ari_with_start": [0.9, 1.0, 0.3]})
    imposed = analysis.learned_or_imposed(stable, kept, origin)
    assert imposed.startswith("REPRODUCIBLE BECAUSE IMPOSED BY THE START")
    assert "does not find a reproducible grouping (ARI 0.050)" in imposed
    assert "training the gate improved the held-out predictions" in imposed and "+0.1000 ± 0.0100" in imposed
    gaps = origin.assign(same_word_tries_gap=3e-4, same_word_tries_gap_q05=2e-4, same_word_tries_gap_q95=5e-4)
    assert "differ by 0.0003 tries (5–95% over replicas: 0.0002 to 0.0005)" in \
        analysis.learned_or_imposed(stable, kept, gaps)
    assert analysis.learned_or_imposed(stable, moved).startswith("LEARNED AND REPRODUCIBLE")
    assert f"{moved.mean():.3f}" in analysis.learned_or_imposed(stable, moved)
    assert analysis.learned_or_imposed(noisy, kept).startswith("NOT REPRODUCIBLE")
