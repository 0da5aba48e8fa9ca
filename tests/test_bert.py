"""BERT: the masking rule, next-sentence pairs, inputs, attention maps, the overfitting gate, bad input."""

import numpy as np
import pytest

from scratchgen.checkpoint import CheckpointError, save_checkpoint
from scratchgen.data import load_text_dataset
from scratchgen.data.text import encode_texts
from scratchgen.data.tokenizer import CLS, MASK, PAD, SEP, SPECIAL_TOKENS, UNK, WordPieceTokenizer
from scratchgen.grad_mode import no_grad
from scratchgen.models import load_model
from scratchgen.models.attention.bert import BERT, IGNORE, TINY_PIECES, mask_tokens, next_sentence_pairs
from scratchgen.models.attention.text_pictures import attention_weights

TINY_FILE = ("the dog barked at the moon\nthe cat slept by the fire\na bird sang in the tree\n\n"
             "the farmer planted corn\nrain fell on the fields\nthe corn grew tall\n")


def test_masking_follows_the_80_10_10_rule():
    rng = np.random.default_rng(0)
    n, length, vocab = 400, 50, 30
    ids = rng.integers(5, vocab, (n, length))
    ids[:, 0], ids[:, 20], ids[:, 40:] = CLS, SEP, PAD  # special tokens are never chosen
    ids[::7, 5] = UNK
    inputs, positions, targets = mask_tokens(ids, np.random.default_rng(1), 0.15, vocab)
    valid = targets != IGNORE
    candidates = (ids >= 5).sum(axis=1)
    assert np.array_equal(valid.sum(axis=1), np.maximum(1, np.floor(0.15 * candidates + 0.5)))
    rows = np.arange(n)[:, None]
    assert (ids[rows, positions][valid] >= 5).all() and np.array_equal(ids[rows, positions][valid], targets[valid])
    assert len({(r, p) for r, p in zip(*np.nonzero(valid)) for p in [positions[r, p]]}) == valid.sum()  # distinct
    changed = inputs[rows, positions][valid]
    masked = (changed == MASK).mean()
    kept = (changed == targets[valid]).mean()
    assert abs(masked - 0.8) < 0.03 and abs(kept - (0.1 + 0.1 / 25)) < 0.02  # a random token may be the same one
    untouched = np.ones_like(ids, bool)
    untouched[rows, positions] = ~valid  # only chosen positions may change
    assert np.array_equal(inputs[untouched], ids[untouched])
    again = mask_tokens(ids, np.random.default_rng(1), 0.15, vocab)
    assert all(np.array_equal(a, b) for a, b in zip(again, (inputs, positions, targets)))


def test_a_sequence_without_candidates_masks_nothing():
    ids = np.array([[CLS, 7, SEP], [CLS, SEP, PAD]])
    inputs, positions, targets = mask_tokens(ids, np.random.default_rng(0), 0.15, 10)
    assert targets[0, 0] == 7 and targets[1, 0] == IGNORE and inputs[1].tolist() == [CLS, SEP, PAD]


def test_next_sentence_pairs_replace_half_by_another_example():
    seconds = [f"sentence {i}" for i in range(2000)]
    chosen, is_next = next_sentence_pairs(seconds, np.random.default_rng(0))
    assert abs(is_next.mean() - 0.5) < 0.03
    for i, (text, label) in enumerate(zip(chosen, is_next)):
        assert (text == seconds[i]) == bool(label)
    one, label = next_sentence_pairs(["alone"], np.random.default_rng(0))
    assert one == ["alone"] and label.tolist() == [1]


def tiny_model(**overrides):
    options = dict(vocab_size=10, max_len=9, hidden=8, layers=2, heads=2, feedforward=12, rng=0)
    model = BERT(**{**options, **overrides})
    model.set_tokenizer(WordPieceTokenizer(TINY_PIECES))
    return model


def test_inputs_are_cls_a_sep_b_sep_with_segments_and_longest_first_truncation():
    model = tiny_model()
    the, a, b, continued_b = (model.tokenizer.index[p] for p in ("the", "a", "b", "##b"))
    ids, segments, lengths = model.encode_pairs(["the ab", "a"], ["b", "the the b a ab"])
    assert ids[0].tolist() == [CLS, the, a, continued_b, SEP, b, SEP, PAD, PAD]
    assert segments[0, :7].tolist() == [0, 0, 0, 0, 0, 1, 1] and lengths.tolist() == [7, 9]
    # 1 + 6 tokens do not fit in 9 - 3: the longer sentence loses its last token
    assert ids[1].tolist() == [CLS, a, SEP, the, the, b, a, a, SEP]
    assert segments[1].tolist() == [0, 0, 0, 1, 1, 1, 1, 1, 1]
    single, _, _ = model.encode_pairs(["the the the the the the the the the"])
    assert single.shape == (1, 9) and single[0, -1] == SEP


def test_attention_maps_are_the_attention_the_blocks_compute():
    model = tiny_model(hidden=8, heads=2)
    ids = np.array([CLS, 5, 6, 9, SEP])
    weights = attention_weights(model.encoder, ids)
    assert weights.shape == (2, 2, 5, 5) and np.allclose(weights.sum(-1), 1)
    with no_grad():  # rebuild the first block's attention output from the weights: A_h v_h, merged, projected
        block = model.encoder.blocks[0]
        x = model.encoder.embed(ids[None])
        h = block.norm1(x).data[0].astype(np.float64)
        attention = block.self_attn
        v = (h @ attention.in_proj_weight.data[16:].T + attention.in_proj_bias.data[16:]).reshape(5, 2, 4).transpose(1, 0, 2)
        merged = (weights[0] @ v).transpose(1, 0, 2).reshape(5, 8)
        expected = merged @ attention.out_proj.weight.data.T + attention.out_proj.bias.data
        assert np.allclose(attention(block.norm1(x)).data[0], expected, atol=1e-5)


@pytest.mark.slow
def test_sanity_gate_overfits_a_tiny_file(tmp_path):
    """Before any long run: a small BERT memorises a tiny file, masked tokens and next sentences."""
    path = tmp_path / "tiny.txt"
    path.write_text(TINY_FILE)
    data = load_text_dataset(f"pairs:{path}", fractions=(0.0, 0.0))
    model = BERT(vocab_size=64, max_len=40, hidden=64, layers=2, heads=4, feedforward=128, lr=3e-3, warmup=10, rng=0)
    model.fit(data, epochs=1000, batch_size=8, rng=0)
    scores = [model.evaluate(data.train.x, data.train.y, np.random.default_rng(seed)) for seed in range(10)]
    assert np.mean([s["mlm_accuracy"] for s in scores]) >= 0.95
    assert np.mean([s["nsp_accuracy"] for s in scores]) >= 0.9
    assert scores[0]["unigram_accuracy"] < 0.3


def test_fill_mask_ranks_pieces_and_refuses_bad_text():
    model = tiny_model()
    (position, guesses), = model.fill_mask("the [MASK] b", top_k=3)
    assert position == 2 and len(guesses) == 3
    probabilities = [p for _, p in guesses]
    assert probabilities == sorted(probabilities, reverse=True) and 0 < sum(probabilities) <= 1
    assert all(piece not in SPECIAL_TOKENS for piece, _ in guesses)
    with pytest.raises(ValueError, match="fill-mask: the text is empty"):
        model.fill_mask("   ")
    with pytest.raises(ValueError, match="has no \\[MASK\\] token"):
        model.fill_mask("the ab")
    with pytest.raises(ValueError, match="more than this model's 9 positions"):
        model.fill_mask("the [MASK] " + "a " * 10)


def test_ids_outside_the_vocabulary_and_sequences_beyond_the_position_table():
    model = tiny_model()
    with pytest.raises(IndexError, match=r"embedding: id 10 at index \(0, 1\) is out of range for 10 embeddings"):
        model.encoder(np.array([[CLS, 10, SEP]]))
    with pytest.raises(ValueError, match="LearnedPositionalEncoding: sequence length 12 exceeds max_len 9"):
        model.encoder(np.full((1, 12), 5))


def test_training_data_must_be_pairs():
    model = tiny_model()
    with pytest.raises(ValueError, match=r"at least 2 text\(s\) per example"):
        model.make_batch(encode_texts(["a b"], 8).reshape(1, 1, 1, 8), np.random.default_rng(0))


def test_a_corrupt_vocabulary_in_a_checkpoint_is_one_line_naming_file_and_row(tmp_path):
    model = tiny_model()
    model.cli_name, model.config = "bert", dict(vocab_size=10, max_len=9, hidden=8, layers=2, heads=2, feedforward=12,
                                                dropout=0.0, mask_rate=0.15, lr=1e-3, warmup=100)
    path = str(tmp_path / "checkpoint.npz")
    meta = {"data_info": {"image_shape": [1, 2, 16], "num_classes": 1}}
    save_checkpoint(path, model, meta)
    loaded, _ = load_model(path)
    assert loaded.tokenizer.pieces == TINY_PIECES
    model.vocabulary[3, :5] = np.frombuffer(b"[SEX]", np.uint8)
    save_checkpoint(path, model, meta)
    with pytest.raises(CheckpointError) as error:
        load_model(path)
    assert str(error.value) == f"{path}: vocabulary: row 3 must be [SEP], found '[SEX]'; corrupt"
    model.vocabulary[3] = 0
    model.vocabulary[3, :5] = np.frombuffer(b"[SEP]", np.uint8)
    model.vocabulary[7, 0] = 0xFF
    save_checkpoint(path, model, meta)
    with pytest.raises(CheckpointError, match="vocabulary: row 7 .* is not UTF-8"):
        load_model(path)


def test_options_out_of_range_are_refused():
    with pytest.raises(ValueError, match="BERT: mask_rate must lie in \\(0, 1\\), got 1.5"):
        BERT(vocab_size=10, mask_rate=1.5)
    with pytest.raises(ValueError, match="hidden 10 is not divisible by heads 4"):
        BERT(vocab_size=10, hidden=10, heads=4)
    with pytest.raises(ValueError, match="TokenizedTextModel|BERT: vocab_size must be a positive integer"):
        BERT(vocab_size=0)
    with pytest.raises(ValueError, match="vocab_size 6 is too small"):
        BERT(vocab_size=6).learn_vocabulary(["the cat sat"])
