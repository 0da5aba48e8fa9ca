"""``WordPieceTokenizer``: text -> token ids for BERT; a vocabulary learnt by byte-pair merges.

Three steps, as in BERT (Devlin et al. 2019, uncased):

1. Pre-tokenise. Lower-case; split at white space; every punctuation character is a word of its
   own; the special tokens' literals (``[MASK]`` in "the [MASK] of the genus canis") stay whole:
       "A dog's life; [MASK]!"  ->  ["a", "dog", "'", "s", "life", ";", "[MASK]", "!"]
2. Split each word into vocabulary pieces by WordPiece's rule: the longest piece of the
   vocabulary that starts the word, then the longest that continues it (continuation pieces are
   written with a leading "##"), and so on:
       "canine"  ->  ["can", "##ine"]
   A word that cannot be split (a character never seen in training) becomes [UNK], whole.
3. Ids: a piece's row in the vocabulary.

Learning the vocabulary (``train``): byte-pair encoding (Sennrich et al. 2016) on the word counts of
the training text. Start from the single characters ("d", "##o", "##g"); repeatedly merge the pair
of adjacent pieces that occurs most often in the text ("d" + "##o" -> "do"), until the vocabulary
has ``vocab_size`` pieces or no pair occurs twice. Ties go to the pair that sorts first, so the
same text always gives the same vocabulary. Splitting with WordPiece's longest-match rule needs
only the vocabulary, not the order of the merges, so the vocabulary is all a checkpoint keeps.

The vocabulary starts with the special tokens, at fixed ids:

    [PAD] 0   padding (never attended to, never predicted)
    [UNK] 1   a word that cannot be spelt with the vocabulary
    [CLS] 2   first token of every input; its final vector summarises the input (classification)
    [SEP] 3   ends each sentence of an input
    [MASK] 4  a token hidden from the model during masked-language-model pretraining

As plain arrays (``to_array`` / ``from_array``): a uint8 (vocab_size, PIECE_BYTES) array, row i the
UTF-8 bytes of piece i, zero-padded; rows after the last piece are all zero (a vocabulary may come
out smaller than asked for). ``from_array`` checks everything a corrupt or hostile array could
break (the special tokens in place, UTF-8, no white space, no duplicates, no gaps) and names the
row at fault.

``decode`` joins pieces (a "##" piece to the previous one, others with a space), so
``decode(encode(t)) == normalize(t)``: the lower-cased, pre-tokenised text, words joined by spaces.
"""
from __future__ import annotations

import heapq
import re
from collections import Counter
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

import numpy as np

__all__ = ["SPECIAL_TOKENS", "PAD", "UNK", "CLS", "SEP", "MASK", "PIECE_BYTES", "MAX_WORD_CHARACTERS",
           "WordPieceTokenizer", "pre_tokenize", "normalize"]

SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
PAD, UNK, CLS, SEP, MASK = range(len(SPECIAL_TOKENS))
CONTINUATION = "##"
PIECE_BYTES = 32  # the longest piece, in UTF-8 bytes ("##" included); merges that would be longer are skipped
MAX_WORD_CHARACTERS = 100  # a longer "word" is [UNK] (BERT's max_input_chars_per_word), bounding the work per word

_WORDS = re.compile(r"\[(?:PAD|UNK|CLS|SEP|MASK)\]|\w+|[^\w\s]")


def pre_tokenize(text: str) -> List[str]:
    """Lower-cased words and single punctuation characters; special-token literals kept whole."""
    return [word if word in SPECIAL_TOKENS else word.lower() for word in _WORDS.findall(text)]


def normalize(text: str) -> str:
    """What ``decode(encode(text))`` gives back when no word is [UNK]: the words joined by single spaces."""
    return " ".join(pre_tokenize(text))


def _spell(word: str) -> List[str]:
    """A word as single-character pieces: "dog" -> ["d", "##o", "##g"]."""
    return [word[0]] + [CONTINUATION + char for char in word[1:]]


def _join(first: str, second: str) -> str:
    """The piece two adjacent pieces merge into: "d" + "##o" -> "do", "##o" + "##g" -> "##og"."""
    return first + second[len(CONTINUATION):]


class WordPieceTokenizer:
    """Pieces (strings) in id order; the first five are ``SPECIAL_TOKENS``."""

    def __init__(self, pieces: Sequence[str]):
        pieces = list(pieces)
        if tuple(pieces[:len(SPECIAL_TOKENS)]) != SPECIAL_TOKENS:
            raise ValueError(f"WordPieceTokenizer: the vocabulary must start with {', '.join(SPECIAL_TOKENS)}")
        if len(set(pieces)) != len(pieces):
            duplicate = next(p for p, n in Counter(pieces).items() if n > 1)
            raise ValueError(f"WordPieceTokenizer: piece {duplicate!r} appears twice in the vocabulary")
        self.pieces = pieces
        self.index: Dict[str, int] = {piece: i for i, piece in enumerate(pieces)}
        self._cache: Dict[str, Tuple[int, ...]] = {}  # word -> ids; a pure function of the vocabulary

    # ---- sizes -----------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.pieces)

    @property
    def first_regular_id(self) -> int:
        """The first id that is not a special token (what masking's random replacements draw from)."""
        return len(SPECIAL_TOKENS)

    # ---- learning a vocabulary -------------------------------------------------------------------
    @classmethod
    def train(cls, texts: Iterable[str], vocab_size: int, min_frequency: int = 2) -> "WordPieceTokenizer":
        """Byte-pair merges on the word counts of ``texts`` until ``vocab_size`` pieces (see the module docstring).

        Every character of the text gets a piece (as a first and, where it occurs there, as a
        continuation character), so ``vocab_size`` must leave room for them.
        """
        if isinstance(vocab_size, bool) or not isinstance(vocab_size, (int, np.integer)) or vocab_size <= len(SPECIAL_TOKENS):
            raise ValueError(f"WordPieceTokenizer.train: vocab_size must be an integer > {len(SPECIAL_TOKENS)}, got {vocab_size!r}")
        counts = Counter(word for text in texts for word in pre_tokenize(text)
                         if word not in SPECIAL_TOKENS and len(word) <= MAX_WORD_CHARACTERS)
        if not counts:
            raise ValueError("WordPieceTokenizer.train: the text holds no words")
        words = [_spell(word) for word in counts]
        frequency = list(counts.values())
        alphabet = sorted({piece for pieces in words for piece in pieces})
        pieces = list(SPECIAL_TOKENS) + alphabet
        if len(pieces) > vocab_size:
            raise ValueError(f"WordPieceTokenizer.train: vocab_size {vocab_size} is too small for the "
                             f"{len(alphabet)} single characters of the text plus {len(SPECIAL_TOKENS)} special tokens")
        known = set(pieces)

        pair_count: Counter = Counter()
        where: Dict[Tuple[str, str], set] = {}
        for w, spelling in enumerate(words):
            for pair in zip(spelling[:-1], spelling[1:]):
                pair_count[pair] += frequency[w]
                where.setdefault(pair, set()).add(w)
        heap = [(-count, pair) for pair, count in pair_count.items()]
        heapq.heapify(heap)
        while len(pieces) < vocab_size and heap:
            negative, pair = heapq.heappop(heap)
            if pair_count.get(pair, 0) != -negative:
                continue  # a stale entry: the count changed since it was pushed
            if -negative < min_frequency:
                break
            merged = _join(*pair)
            if len(merged.encode("utf-8")) > PIECE_BYTES:
                pair_count.pop(pair)
                continue
            if merged not in known:
                known.add(merged)
                pieces.append(merged)
            changed = set()
            for w in where.pop(pair, ()):
                spelling = words[w]
                for old in zip(spelling[:-1], spelling[1:]):
                    pair_count[old] -= frequency[w]
                    changed.add(old)
                merged_spelling, i = [], 0
                while i < len(spelling):
                    if i + 1 < len(spelling) and (spelling[i], spelling[i + 1]) == pair:
                        merged_spelling.append(merged)
                        i += 2
                    else:
                        merged_spelling.append(spelling[i])
                        i += 1
                words[w] = merged_spelling
                for new in zip(merged_spelling[:-1], merged_spelling[1:]):
                    pair_count[new] += frequency[w]
                    where.setdefault(new, set()).add(w)
                    changed.add(new)
            pair_count.pop(pair, None)
            for other in changed:
                count = pair_count.get(other, 0)
                if count > 0:
                    heapq.heappush(heap, (-count, other))
                else:
                    pair_count.pop(other, None)
        return cls(pieces)

    # ---- text -> ids -> text ---------------------------------------------------------------------
    def word_ids(self, word: str) -> Tuple[int, ...]:
        """The ids of one pre-tokenised word: the longest vocabulary piece first, then the longest
        continuation, ...; ``(UNK,)`` when the word cannot be spelt."""
        cached = self._cache.get(word)
        if cached is not None:
            return cached
        if word in SPECIAL_TOKENS:
            ids: Tuple[int, ...] = (self.index[word],)
        elif len(word) > MAX_WORD_CHARACTERS:
            ids = (UNK,)
        else:
            found, start = [], 0
            while start < len(word):
                for end in range(len(word), start, -1):
                    piece = word[start:end] if start == 0 else CONTINUATION + word[start:end]
                    if piece in self.index:
                        found.append(self.index[piece])
                        start = end
                        break
                else:
                    found = [UNK]
                    break
            ids = tuple(found)
        if len(self._cache) < 1_000_000:
            self._cache[word] = ids
        return ids

    def encode(self, text: str) -> List[int]:
        """Token ids of ``text`` (no [CLS] / [SEP] added; the models add them)."""
        return [i for word in pre_tokenize(text) for i in self.word_ids(word)]

    def tokens(self, text: str) -> List[str]:
        """The pieces of ``text`` as strings: ``tokens("canine teeth") == ["can", "##ine", "teeth"]``."""
        return [self.pieces[i] for i in self.encode(text)]

    def decode(self, ids: Iterable[int], skip_special: bool = False) -> str:
        """Pieces joined back into text: a "##" piece continues the previous word, others start a new one."""
        words: List[str] = []
        for i in ids:
            i = int(i)
            if not 0 <= i < len(self.pieces):
                raise ValueError(f"WordPieceTokenizer.decode: id {i} is out of range for a vocabulary of {len(self.pieces)}")
            if skip_special and i < len(SPECIAL_TOKENS):
                continue
            piece = self.pieces[i]
            if piece.startswith(CONTINUATION) and words and i >= len(SPECIAL_TOKENS):
                words[-1] += piece[len(CONTINUATION):]
            else:
                words.append(piece)
        return " ".join(words)

    # ---- plain arrays (checkpoints) --------------------------------------------------------------
    def to_array(self, rows: Optional[int] = None) -> np.ndarray:
        """uint8 (rows, PIECE_BYTES): piece i's UTF-8 bytes in row i, zero-padded; rows past the last piece zero."""
        rows = len(self.pieces) if rows is None else rows
        if rows < len(self.pieces):
            raise ValueError(f"WordPieceTokenizer.to_array: {len(self.pieces)} pieces do not fit in {rows} rows")
        array = np.zeros((rows, PIECE_BYTES), np.uint8)
        for i, piece in enumerate(self.pieces):
            data = piece.encode("utf-8")
            array[i, :len(data)] = np.frombuffer(data, np.uint8)
        return array

    @classmethod
    def from_array(cls, array) -> "WordPieceTokenizer":
        """The tokenizer stored by ``to_array``; a ``ValueError`` naming the row for anything else."""
        array = np.asarray(array)
        if array.dtype != np.uint8 or array.ndim != 2 or array.shape[1] != PIECE_BYTES:
            raise ValueError(f"vocabulary: expected a uint8 (vocab_size, {PIECE_BYTES}) array, "
                             f"got dtype {array.dtype} shape {array.shape}")
        used = array.any(axis=1)
        count = int(used.sum())
        if count == 0:
            raise ValueError("vocabulary: every row is empty (was the tokenizer ever trained?)")
        if not used[:count].all():
            raise ValueError(f"vocabulary: row {int(np.argmin(used[:count]))} is empty but later rows are not; corrupt")
        pieces = []
        for i, row in enumerate(array[:count]):
            data = row.tobytes()
            end = data.find(b"\0")
            if end >= 0 and data[end:].strip(b"\0"):
                raise ValueError(f"vocabulary: row {i} has a zero byte inside its piece; corrupt")
            try:
                piece = data.rstrip(b"\0").decode("utf-8")
            except UnicodeDecodeError:
                raise ValueError(f"vocabulary: row {i} ({data.rstrip(bytes(1))[:PIECE_BYTES]!r}) is not UTF-8; corrupt") from None
            if i < len(SPECIAL_TOKENS):
                if piece != SPECIAL_TOKENS[i]:
                    raise ValueError(f"vocabulary: row {i} must be {SPECIAL_TOKENS[i]}, found {piece!r}; corrupt")
            elif any(char.isspace() for char in piece) or piece in (CONTINUATION, "") or piece in SPECIAL_TOKENS:
                raise ValueError(f"vocabulary: row {i} holds {piece!r}, not a word piece; corrupt")
            pieces.append(piece)
        try:
            return cls(pieces)
        except ValueError as error:
            raise ValueError(f"vocabulary: {str(error).split(': ', 1)[1]}; corrupt") from None
