"""The causal byte-level language model: causality, the key/value cache, bits per character, sampling."""
import math

import numpy as np
import pytest

from scratchgen.data import load_text_dataset
from scratchgen.grad_mode import no_grad
from scratchgen.models.attention.language_model import BYTES, ByteLanguageModel, KeyValueCache


def tiny(**overrides):
    options = dict(context=16, hidden=8, layers=2, heads=2, feedforward=12, rng=0, dtype=np.float64)
    return ByteLanguageModel(**{**options, **overrides})


def ids_of(text):
    return np.frombuffer(text.encode(), np.uint8).astype(np.int64)


def test_position_t_never_sees_the_bytes_after_it():
    model = tiny()
    a, b = ids_of("the dog barked.\n"), ids_of("the dog slept!!\n")
    with no_grad():
        logits = model.logits(np.stack([a, b])).data
    first_difference = int(np.argmax(a != b))
    assert np.allclose(logits[0, :first_difference], logits[1, :first_difference], atol=1e-12)
    assert not np.allclose(logits[0, first_difference], logits[1, first_difference])


def test_the_key_value_cache_gives_the_full_forward_logits():
    model = tiny()
    ids = np.stack([ids_of("a cat sat on it\n"), ids_of("dogs bark loud\n!")])
    model.eval()
    with no_grad():
        full = model.logits(ids).data
    cache = KeyValueCache(2)
    stepped = np.stack([model.step(ids[:, t], cache) for t in range(ids.shape[1])], axis=1)
    assert np.allclose(stepped, full, atol=1e-10)
    with pytest.raises(ValueError, match="position 16 is beyond the context of 16 bytes"):
        model.step(ids[:, 0], cache)


def test_bits_per_character_is_the_mean_loss_over_ln_2_and_the_unigram_baseline(tmp_path):
    path = tmp_path / "text.txt"
    path.write_text("abracadabra, said the magician\n" * 20)
    data = load_text_dataset(f"stream:{path}", width=17, fractions=(0.0, 0.0))
    model = tiny()
    model.prepare(data.train.x)
    x = data.train.x[:5]
    ids = model.windows(x)
    with no_grad():
        loss = float(model.loss(ids).data)
    metrics = model.evaluate(x, None)
    assert math.isclose(metrics["bits_per_character"], loss / math.log(2), rel_tol=1e-9)
    counts = np.bincount(model.windows(data.train.x)[:, 1:].ravel(), minlength=BYTES) + 1.0
    expected = -np.log2(counts[ids[:, 1:]] / counts.sum()).mean()
    assert math.isclose(metrics["unigram_bits_per_character"], expected, rel_tol=1e-12)


def test_training_lowers_the_bits_and_samples_repeat_by_seed(tmp_path):
    path = tmp_path / "text.txt"
    path.write_text("the cat sat on the mat\n" * 120)  # windows start at every phase of the line
    data = load_text_dataset(f"stream:{path}", width=33, fractions=(0.0, 0.0))
    model = ByteLanguageModel(context=32, hidden=32, layers=1, heads=2, feedforward=64, lr=3e-3, warmup=5, rng=0,
                              sample_length=40)
    model.prepare(data.train.x)
    before = model.evaluate(data.train.x, None)["bits_per_character"]
    model.fit(data, epochs=20, batch_size=8, rng=0)
    after = model.evaluate(data.train.x, None)
    assert after["bits_per_character"] < 0.2 * before and after["bits_per_character"] < after["unigram_bits_per_character"]
    samples = model.sample(6, np.random.default_rng(3), prompt="the cat")
    assert samples == model.sample(6, np.random.default_rng(3), prompt="the cat")
    assert all(s.startswith("the cat") and "\n" not in s and len(s) <= 7 + 40 for s in samples)
    cold = model.sample(6, np.random.default_rng(3), prompt="the cat", temperature=0.2)
    assert cold == ["the cat sat on the mat"] * 6  # the model learnt the line
    long_prompt = model.sample(2, np.random.default_rng(0), prompt="the cat sat on the mat. " * 2)  # beyond the context
    assert all(s.startswith("the cat sat on the mat. the cat sat on the mat. ") for s in long_prompt)


def test_bad_input_is_one_line():
    model = tiny()
    with pytest.raises(ValueError, match="temperature must be a positive number, got 0"):
        model.sample(2, np.random.default_rng(0), temperature=0)
    with pytest.raises(ValueError, match="the prompt must be one line"):
        model.sample(2, np.random.default_rng(0), prompt="a\nb")
    with pytest.raises(ValueError, match=r"reads byte windows of shape \(N, 1, 1, W >= 2\) uint8"):
        model.train_step(np.zeros((2, 1, 2, 8), np.uint8), None, np.random.default_rng(0))
    with pytest.raises(ValueError, match=r"reads byte windows of shape \(N, 1, 1, W >= 2\) uint8"):
        model.train_step(np.zeros((2, 1, 1, 1), np.uint8), None, np.random.default_rng(0))
    with pytest.raises(ValueError, match="LearnedPositionalEncoding: sequence length 20 exceeds max_len 16"):
        model.logits(np.zeros((2, 20), np.int64))  # the position table is the hard limit; windows are cut to fit
    with pytest.raises(ValueError, match="charlm: context must be at least 2 bytes"):
        ByteLanguageModel(context=1)


def test_samples_never_carry_control_characters():
    import unicodedata

    texts = tiny().sample(8, np.random.default_rng(0))  # untrained: every byte is about equally likely
    assert sum(len(t) for t in texts) > 100
    assert all(unicodedata.category(c) not in ("Cc", "Zl", "Zp") or c == "\t" for t in texts for c in t)


def test_compressor_baselines_see_the_same_bytes_the_model_predicts(tmp_path):
    from scratchgen.experiments.text_baselines import baselines, held_out_bytes, stream_bytes

    text = "".join(f"entry {k}: the quick brown fox jumps over the lazy dog\n" for k in range(60))
    path = tmp_path / "text.txt"
    path.write_text(text)
    data = load_text_dataset(f"stream:{path}", width=33, fractions=(0.0, 0.0))
    assert text.startswith(stream_bytes(data.train.x).decode())
    predicted = held_out_bytes(data.train.x[:3])
    assert predicted == stream_bytes(data.train.x[:3])[1:] and len(predicted) == 3 * 32
    result = baselines(text.encode(), predicted)
    assert result["xz_given_training_text_bits_per_character"] < result["xz_alone_bits_per_character"]
    assert 3.0 < result["unigram_bits_per_character"] < 5.0


def test_windows_longer_than_the_context_are_cut_into_overlapping_pieces():
    """--context 4 on 13-byte windows: three pieces of 5 bytes, each starting where the last one ended."""
    model = ByteLanguageModel(context=4, hidden=4, layers=1, heads=2, feedforward=4, rng=0)
    x = np.frombuffer(b"abcdefghijklmNOPQRSTUVWXYZ", np.uint8).reshape(2, 1, 1, 13)
    pieces = [bytes(row.astype(np.uint8)) for row in model.windows(x)]
    assert pieces == [b"abcde", b"efghi", b"ijklm", b"NOPQR", b"RSTUV", b"VWXYZ"]
    short = np.frombuffer(b"abc", np.uint8).reshape(1, 1, 1, 3)
    assert model.windows(short).tolist() == [[97, 98, 99]]
