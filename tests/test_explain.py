"""explain: the routing share over replicas, the gate margin, the gate-logit contributions (exact for the linear
gate, checked against the gate weights by hand) and the nearest observed words (checked by brute force)."""
from __future__ import annotations

import numpy as np
import pytest

from wordle_moe import cli, explain
from wordle_moe.bootstrap import fit_bootstrap
from wordle_moe.config import MoEConfig
from wordle_moe.dataset import feature_rows, load_dataset
from wordle_moe.persistence import load_model, save_model

TINY = MoEConfig(hidden_size=8, max_epochs=15, patience=5)


@pytest.fixture(scope="module")
def data():
    return load_dataset()


def _saved(data, tmp_path_factory, name, config):
    (model,), _ = fit_bootstrap(data.X, data.P, config=config, B=5)
    path = tmp_path_factory.mktemp(name) / name
    save_model(path, model, feature_names=data.feature_names, residuals=np.zeros((10, 7)),
               date_range=(data.dates.min(), data.dates.max()), training_data=(data.X, data.P),
               extra={"populations": ["mcm"]})
    return path


@pytest.fixture(scope="module")
def linear_dir(data, tmp_path_factory):
    return _saved(data, tmp_path_factory, "linear", TINY)


def test_routing_margin_and_contributions_match_the_gate(linear_dir, data):
    saved = load_model(linear_dir)
    e = explain.explain_word(saved, "crane", "2022-06-01", data=data)
    x = feature_rows(["crane"], ["2022-06-01"], saved.feature_names)[saved.feature_names].to_numpy(float)
    out = saved.model(x.astype(np.float32), return_intermediate=True)
    gates, probs = out["gates"][:, 0].detach().numpy(), out["gate_scores"][:, 0].detach().numpy()
    E = probs.shape[1]
    np.testing.assert_allclose(e["routing"]["share_of_replicas"], np.bincount(gates.argmax(1), minlength=E) / 5)
    assert e["routing"]["share_of_replicas"].sum() == pytest.approx(1)
    np.testing.assert_allclose(e["routing"]["mean_gate_probability"], probs.mean(0), rtol=1e-6)
    top2 = np.sort(probs, axis=1)[:, -2:]
    np.testing.assert_allclose(e["margin"], top2[:, 1] - top2[:, 0], atol=1e-6)
    # linear gate by hand: logit_e = b_e + z·W_e; contribution_j = z_j (W_j,top - W_j,second), summed + bias = margin
    z = explain.gate_inputs(saved.model, x).detach().numpy()[:, 0]
    W, b = saved.model.gate_w.detach().numpy(), saved.model.gate_b.detach().numpy()
    logits = np.einsum("rd,rde->re", z, W) + b
    order = np.argsort(-logits, axis=1)
    r = np.arange(len(z))
    by_hand = z * (W[r, :, order[:, 0]] - W[r, :, order[:, 1]])
    contrib, bias, margin = explain.gate_contributions(saved.model, x[0])
    np.testing.assert_allclose(contrib, by_hand, atol=1e-5)
    np.testing.assert_allclose(margin, logits[r, order[:, 0]] - logits[r, order[:, 1]], atol=1e-5)
    np.testing.assert_allclose(contrib.sum(1) + bias, margin, atol=1e-5)
    table = e["all_inputs"]
    assert len(table) == len(saved.feature_names)
    np.testing.assert_allclose(table.set_index("input").loc[saved.feature_names, "contribution"],
                               by_hand.mean(0), atol=1e-5)
    assert list(e["inputs"]["contribution"].abs()) == sorted(e["inputs"]["contribution"].abs(), reverse=True)


def test_nearest_observed_words_by_brute_force(linear_dir, data):
    saved = load_model(linear_dir)
    i = 100  # an observed word on its own day is its own nearest neighbour, at distance 0
    word, day = data.words[i], data.dates.iloc[i]
    e = explain.explain_word(saved, word, day, data=data, n_neighbours=5)
    Z = explain.gate_inputs(saved.model, data.X).detach().numpy().mean(0)
    x = feature_rows([word], [day], saved.feature_names)[saved.feature_names].to_numpy(float)
    z = explain.gate_inputs(saved.model, x).detach().numpy().mean(0)[0]
    d = np.linalg.norm(Z - z, axis=1)
    nearest = np.argsort(d, kind="stable")[:5]
    assert list(e["neighbours"]["word"]) == [data.words[j] for j in nearest]
    assert e["neighbours"]["word"].iloc[0] == word and e["neighbours"]["distance"].iloc[0] == pytest.approx(0, abs=1e-4)
    np.testing.assert_allclose(e["neighbours"]["distance"], d[nearest], rtol=1e-5)
    np.testing.assert_allclose(e["neighbours"][["1", "2", "3", "4", "5", "6", "X"]].to_numpy(), data.P[nearest])


def test_mlp_gate_is_explained_to_first_order(data, tmp_path_factory):
    saved = load_model(_saved(data, tmp_path_factory, "mlp", TINY.replace(gate="mlp")))
    e = explain.explain_word(saved, "crane", "2022-06-01", data=data)
    assert e["gate"] == "mlp" and np.isfinite(e["all_inputs"]["contribution"]).all()
    assert "first-order split (gradient × input)" in explain.render_explanation(e)


def test_explain_command(linear_dir, capsys):
    code = cli.main(["explain", "EERIE", "--date", "2022-06-01", "--model-dir", str(linear_dir), "--neighbours", "3"])
    out = capsys.readouterr().out
    assert code == 0
    assert out.startswith(f"EERIE on 2022-06-01, population mcm — model {linear_dir} (5 replicas, linear gate)")
    for text in ("routing: the expert each replica sends the word to", "gate margin (top minus runner-up",
                 "inputs that move the gate most", "exact for the linear gate",
                 "nearest observed words in the model's input space"):
        assert text in out, text
    lines = out.strip().splitlines()
    assert lines[-4].split()[:4] == ["word", "date", "population", "distance"] and len(lines[-3].split()) == 11
