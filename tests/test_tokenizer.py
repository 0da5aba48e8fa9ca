"""WordPieceTokenizer: byte-pair merges, longest-match splitting, exact round trips, and plain-array vocabularies."""
from collections import Counter

import numpy as np
import pytest

from scratchgen.data.tokenizer import (CLS, MASK, PAD, PIECE_BYTES, SEP, SPECIAL_TOKENS, UNK, WordPieceTokenizer,
                                       normalize, pre_tokenize)

TEXT = ["the dog barked at the moon", "the dogs barked all night", "a dog is a domestic animal",
        "the cat sat on the mat", "cats and dogs, mostly.", "the barking dog; \"it barked\"!"]


@pytest.fixture(scope="module")
def tokenizer():
    return WordPieceTokenizer.train(TEXT, 60)


def test_pre_tokenization_lowercases_splits_punctuation_and_keeps_special_tokens():
    assert pre_tokenize("A dog's life; [MASK]!") == ["a", "dog", "'", "s", "life", ";", "[MASK]", "!"]
    assert pre_tokenize("[mask] [CLS]x") == ["[", "mask", "]", "[CLS]", "x"]
    assert normalize("  Hello,   World ") == "hello , world"


def test_the_vocabulary_starts_with_the_special_tokens_then_characters_then_merges(tokenizer):
    assert tuple(tokenizer.pieces[:5]) == SPECIAL_TOKENS == ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
    assert (PAD, UNK, CLS, SEP, MASK) == (0, 1, 2, 3, 4)
    assert len(tokenizer) <= 60  # merges stop early when no pair of pieces occurs twice any more
    characters = {c for text in TEXT for word in pre_tokenize(text) for c in word}
    assert {p.lstrip("#") for p in tokenizer.pieces[5:5 + 20] if len(p.lstrip("#")) == 1} <= characters
    # the first merge joins the most frequent pair of adjacent characters (ties: the pair that sorts first)
    counts = Counter()
    for word in (w for text in TEXT for w in pre_tokenize(text)):
        spelled = [word[0]] + ["##" + c for c in word[1:]]
        counts.update(zip(spelled[:-1], spelled[1:]))
    best = min(counts, key=lambda pair: (-counts[pair], pair))
    singles = [p for p in tokenizer.pieces[5:] if len(p.lstrip("#")) == 1]
    assert tokenizer.pieces[5 + len(singles)] == best[0] + best[1][2:]
    assert "the" in tokenizer.pieces and "dog" in tokenizer.pieces


def test_training_is_deterministic_and_respects_the_size():
    a, b = WordPieceTokenizer.train(TEXT, 45), WordPieceTokenizer.train(list(TEXT), 45)
    assert a.pieces == b.pieces and len(a) == 45
    small = WordPieceTokenizer.train(["ab ab"], 1000)  # merges stop when no pair occurs twice
    assert small.pieces == list(SPECIAL_TOKENS) + ["##b", "a", "ab"]
    with pytest.raises(ValueError, match="vocab_size 10 is too small for the"):
        WordPieceTokenizer.train(TEXT, 10)
    with pytest.raises(ValueError, match="holds no words"):
        WordPieceTokenizer.train(["", "  "], 100)


def test_longest_match_first():
    tokenizer = WordPieceTokenizer(list(SPECIAL_TOKENS) + ["c", "ca", "can", "##i", "##ine", "##n", "##e"])
    assert tokenizer.tokens("canine") == ["can", "##ine"]
    assert tokenizer.tokens("cane") == ["can", "##e"]
    assert tokenizer.encode("canine x") == [7, 9, UNK]  # x is not in the vocabulary: the whole word is [UNK]
    assert tokenizer.encode("[MASK] can") == [MASK, 7]


@pytest.mark.parametrize("text", TEXT + ["The DOG barked!", "[MASK] at the moon", "  dogs , cats ;  "])
def test_decode_inverts_encode_up_to_normalisation(tokenizer, text):
    ids = tokenizer.encode(text)
    assert UNK not in ids
    assert tokenizer.decode(ids) == normalize(text)
    assert normalize(tokenizer.decode(ids)) == tokenizer.decode(ids)  # normalisation is idempotent


def test_decode_skips_special_tokens_and_refuses_unknown_ids(tokenizer):
    ids = [CLS] + tokenizer.encode("the dog") + [SEP, PAD]
    assert tokenizer.decode(ids, skip_special=True) == "the dog"
    assert tokenizer.decode(ids) == "[CLS] the dog [SEP] [PAD]"
    with pytest.raises(ValueError, match=f"id {len(tokenizer)} is out of range for a vocabulary of {len(tokenizer)}"):
        tokenizer.decode([len(tokenizer)])


def test_plain_array_round_trip(tokenizer):
    array = tokenizer.to_array(64)
    assert array.dtype == np.uint8 and array.shape == (64, PIECE_BYTES) and not array[60:].any()
    again = WordPieceTokenizer.from_array(array)
    assert again.pieces == tokenizer.pieces
    assert again.encode("the barking dogs") == tokenizer.encode("the barking dogs")
    with pytest.raises(ValueError, match="do not fit in 10 rows"):
        tokenizer.to_array(10)


def _corrupt(array, row, text):
    array = array.copy()
    array[row] = 0
    data = text if isinstance(text, bytes) else text.encode()
    array[row, :len(data)] = np.frombuffer(data, np.uint8)
    return array


@pytest.mark.parametrize("change, message", [
    (lambda a: _corrupt(a, 4, "[MASX]"), "row 4 must be [MASK], found '[MASX]'"),
    (lambda a: _corrupt(a, 20, b"\xff\xfe"), "row 20 (b'\\xff\\xfe') is not UTF-8"),
    (lambda a: _corrupt(a, 20, "a b"), "row 20 holds 'a b', not a word piece"),
    (lambda a: _corrupt(a, 20, "##"), "row 20 holds '##', not a word piece"),
    (lambda a: _corrupt(a, 20, "[CLS]"), "row 20 holds '[CLS]', not a word piece"),
    (lambda a: _corrupt(a, 20, a[21].tobytes().rstrip(b"\0")), "appears twice in the vocabulary"),
    (lambda a: _corrupt(a, 20, b""), "row 20 is empty but later rows are not"),
    (lambda a: _corrupt(a, 20, b"ab\0cd"), "row 20 has a zero byte inside its piece"),
    (lambda a: np.zeros_like(a), "every row is empty"),
    (lambda a: a.astype(np.int32), "expected a uint8"),
    (lambda a: a[:, :8], "expected a uint8"),
])
def test_a_corrupt_vocabulary_is_refused_naming_the_row(tokenizer, change, message):
    with pytest.raises(ValueError) as error:
        WordPieceTokenizer.from_array(change(tokenizer.to_array()))
    assert message in str(error.value) and str(error.value).startswith("vocabulary:")


def test_long_words_and_long_merges_are_bounded():
    tokenizer = WordPieceTokenizer.train(["x" * 150 + " " + "y" * 40] * 3, 200)
    assert max(len(p.encode()) for p in tokenizer.pieces) <= PIECE_BYTES
    assert tokenizer.encode("x" * 150) == [UNK]  # longer than MAX_WORD_CHARACTERS
    assert tokenizer.decode(tokenizer.encode("y" * 40)) == "y" * 40
