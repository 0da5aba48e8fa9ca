"""Text for the attention family: WordNet's glosses (Debian's ``wordnet-base``) and plain UTF-8 files.

Why WordNet. It is a real English text written by people (Princeton's lexicographers), installed
by a maintained Debian package (``apt-get install wordnet-base``: /usr/share/wordnet, 21.7 MB of
data files), in a plain, documented format (wndb(5WN)), under a permissive licence, and it brings
its own labels: 117,659 synsets, each with a gloss (8.8 MB of text: a definition, often followed
by more definitions and quoted examples, separated by ";") and the *lexicographer file* it was
filed in (45 "supersenses": noun.animal, verb.motion, adj.all, ...). So one package gives both
the unlabelled text a BERT is pretrained on and a labelled sentence task to fine-tune it on
(definition -> supersense). The alternatives seen in Debian are worse fits: ``bible-kjv-text``
stores the King James text in its own compressed format (/usr/lib/bible.data, "EC02"), and
fortune cookies are loosely categorised, heavily formatted quotations.

Forms: what one example is. Text is stored as UTF-8 bytes, zero-padded, in uint8 arrays shaped
like the training loop's images (N, C, H, W), so the one loop (``training.py``) carries text
unchanged; ``decode_texts(x)`` gives the strings back.

    pairs      two consecutive sentences of one document       x (N, 1, 2, B)  y: the document's label
    stream     the documents joined by newlines, cut into      x (N, 1, 1, W)  y: 0
               windows of W bytes that overlap by one byte
               (so every byte but the very first is a prediction target exactly once)
    labelled   one text and its class                          x (N, 1, 1, B)  y: the class

Dataset names (``load_text_dataset``; ``load_dataset`` forwards them here):

    wordnet-pairs        the first two parts of a gloss, the first prefixed with the headword:
                         ("dog: a member of the genus canis ...", "occurs in many breeds"),
                         ("kid: a young person of either sex", '"she writes books for children"'):
                         45,994 pairs, one from each gloss with two parts or more; y = supersense.
                         (Why only the first two: every pair then starts with the word its gloss
                         is about, as a dictionary entry does. Of the 66,454 consecutive parts,
                         15,370 are two examples in a row, "the dog barked" / "they're just kids",
                         which say too little about each other for a small model to learn from.)
    wordnet-stream       one line per synset, "headword: gloss" (8.8 MB + headwords), as a stream
    wordnet-definitions  a synset's headword and definition (its gloss's first part), written as the
                         first sentence of a wordnet-pairs pair ("kid: a young person of either sex"),
                         and its supersense (45 classes, ``LEXNAMES``): 117,659 labelled sentences
    pairs:FILE, stream:FILE, labelled:FILE
                         a UTF-8 text file: one sentence per line, documents separated by blank
                         lines (pairs, stream); "label<TAB>text" lines (labelled)

Splits. Documents (synsets, or a file's blank-line-separated documents) are split 80/10/10 by a
fixed permutation (``SPLIT_SEED``, *not* the run's seed): a BERT pretrained with any seed never saw
a gloss of the synsets its fine-tuning is tested on, and every model of the family sees the same
held-out synsets. Within a split the examples keep the permuted order, so the first N training
examples (``--train-size N``) are a uniform sample, not the nouns.

Untrusted files: every file's size is bounded before it is read (``MAX_TEXT_FILE_BYTES``), lines
too (``MAX_LINE_BYTES``), text must be UTF-8 without NUL bytes (0 is the padding byte), every
WordNet line must follow the documented format, and a text longer than B bytes is cut at a
character boundary (0.1% of WordNet's gloss parts are longer than 197 bytes; B is 256). A file
that breaks a rule is a ``DataFileError`` naming the file, the line and what is wrong.

Where WordNet is looked for (``wordnet_dirs``, ``text_search_report``), in order: ``root/wordnet``
when a root is given (and nowhere else); else ``$SCRATCHGEN_DATA/wordnet`` for each entry,
``$WNSEARCHDIR`` (WordNet's own variable), ``~/.cache/scratchgen/wordnet`` and /usr/share/wordnet
(Debian's wordnet-base). The first directory holding data.noun, data.verb, data.adj and data.adv wins.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import List, NamedTuple, Optional, Sequence, Tuple

import numpy as np

from .download import DATA_ENV
from .idx import DataFileError
from .splits import DatasetSplits, Split

__all__ = ["TEXT_DATASET_NAMES", "TEXT_FORMS", "LEXNAMES", "SPLIT_SEED", "MAX_TEXT_FILE_BYTES", "MAX_LINE_BYTES",
           "Synset", "read_wordnet", "wordnet_dirs", "find_wordnet", "text_search_report", "is_text_dataset",
           "load_text_dataset", "encode_texts", "decode_texts", "split_gloss", "read_text_file"]

TEXT_DATASET_NAMES = ("wordnet-pairs", "wordnet-stream", "wordnet-definitions")
TEXT_FORMS = ("pairs", "stream", "labelled")
_WORDNET_FORMS = {"wordnet-pairs": "pairs", "wordnet-stream": "stream", "wordnet-definitions": "labelled"}

# The 45 lexicographer files of WordNet 3.0, by number (lexnames(5WN)): the "supersenses".
LEXNAMES = (
    "adj.all", "adj.pert", "adv.all", "noun.Tops", "noun.act", "noun.animal", "noun.artifact", "noun.attribute",
    "noun.body", "noun.cognition", "noun.communication", "noun.event", "noun.feeling", "noun.food", "noun.group",
    "noun.location", "noun.motive", "noun.object", "noun.person", "noun.phenomenon", "noun.plant", "noun.possession",
    "noun.process", "noun.quantity", "noun.relation", "noun.shape", "noun.state", "noun.substance", "noun.time",
    "verb.body", "verb.change", "verb.cognition", "verb.communication", "verb.competition", "verb.consumption",
    "verb.contact", "verb.creation", "verb.emotion", "verb.motion", "verb.perception", "verb.possession",
    "verb.social", "verb.stative", "verb.weather", "adj.ppl",
)
WORDNET_FILES = ("data.noun", "data.verb", "data.adj", "data.adv")
SYSTEM_WORDNET_DIRS = (Path("/usr/share/wordnet"),)

SPLIT_SEED = 0  # the one permutation of documents behind every text split (see the module docstring)
SPLIT_FRACTIONS = (0.1, 0.1)  # validation, test
MAX_TEXT_FILE_BYTES = 64 * 2**20  # data.noun, the largest WordNet file, is 15.3 MB
MAX_LINE_BYTES = 64 * 2**10  # WordNet's longest line is 13 KB
MAX_DOCUMENTS = 2_000_000
MAX_TEXT_BYTES = 4096  # the most bytes a text (B) or a window (W) may have
TEXT_BYTES = 256  # B: bytes per text in pairs and labelled examples
WINDOW_BYTES = 129  # W: a language model reads 128 bytes and predicts the next 128
MAX_LABELS = 10_000


class Synset(NamedTuple):
    """One WordNet synset: its part of speech (n v a s r), supersense number, first headword, gloss."""

    pos: str
    lexname: int
    headword: str
    gloss: str


# ---- bytes <-> strings ---------------------------------------------------------------------------
def _cut(text: str, width: int) -> bytes:
    """UTF-8 bytes of ``text``, at most ``width`` of them, cut at a character boundary."""
    data = text.encode("utf-8")
    if len(data) <= width:
        return data
    return data[:width].decode("utf-8", errors="ignore").encode("utf-8")


def encode_texts(texts: Sequence[str], width: int) -> np.ndarray:
    """(N,) strings -> (N, width) uint8 UTF-8 bytes, zero-padded; longer texts cut at a character boundary."""
    out = np.zeros((len(texts), width), np.uint8)
    for row, text in enumerate(texts):
        data = _cut(text, width)
        out[row, :len(data)] = np.frombuffer(data, np.uint8)
    return out


def decode_texts(x: np.ndarray):
    """uint8 bytes (..., B) -> nested lists of strings (the last axis is one text; zero bytes are padding)."""
    x = np.asarray(x)
    if x.dtype != np.uint8 or x.ndim < 1:
        raise TypeError(f"decode_texts: expected uint8 text bytes (..., B), got dtype {x.dtype} shape {x.shape}")
    if x.ndim == 1:
        return x.tobytes().rstrip(b"\0").decode("utf-8", errors="replace")
    return [decode_texts(row) for row in x]


# ---- reading files safely -------------------------------------------------------------------------
def _read_text(path: Path) -> str:
    """A whole UTF-8 file, its size bounded before reading; NUL bytes and long lines refused."""
    try:
        size = path.stat().st_size
    except OSError as error:
        raise DataFileError(path, f"cannot be read ({error.strerror or error})") from None
    if not path.is_file():
        raise DataFileError(path, "is not a regular file")
    if size > MAX_TEXT_FILE_BYTES:
        raise DataFileError(path, f"is {size:,} bytes; text files are limited to {MAX_TEXT_FILE_BYTES:,} bytes")
    with open(path, "rb") as handle:
        data = handle.read(MAX_TEXT_FILE_BYTES + 1)
    if len(data) > MAX_TEXT_FILE_BYTES:  # it grew while we looked
        raise DataFileError(path, f"is more than {MAX_TEXT_FILE_BYTES:,} bytes")
    nul = data.find(b"\0")
    if nul >= 0:
        line = data.count(b"\n", 0, nul) + 1
        raise DataFileError(path, f"holds a NUL byte at offset {nul} (line {line}); not a text file")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        raise DataFileError(path, f"is not UTF-8: byte 0x{data[error.start]:02x} at offset {error.start} (line {line})") from None
    for number, line in enumerate(text.split("\n"), 1):
        if len(line) > MAX_LINE_BYTES:
            raise DataFileError(path, f"line {number} has {len(line):,} characters; lines are limited to {MAX_LINE_BYTES:,}")
    return text


def split_gloss(gloss: str) -> List[str]:
    """A gloss's parts: split at ";" outside double quotes, stripped, empty parts dropped.

    ``'a young person; "she writes books for children"'`` -> ``['a young person', '"she writes books for children"']``
    """
    parts, current, quoted = [], [], False
    for char in gloss:
        if char == '"':
            quoted = not quoted
        if char == ";" and not quoted:
            parts.append("".join(current).strip())
            current = []
        else:
            current.append(char)
    parts.append("".join(current).strip())
    return [part for part in parts if part]


def _headword(word: str) -> str:
    """A data-file lemma as text: underscores are spaces; an adjective's (a)/(p)/(ip) marker dropped."""
    for marker in ("(a)", "(p)", "(ip)"):
        if word.endswith(marker):
            word = word[:-len(marker)]
    return word.replace("_", " ")


def _parse_synset(line: str, path: Path, number: int) -> Synset:
    """One line of a WordNet data file (wndb(5WN)):
    ``offset lex_filenum ss_type w_cnt word lex_id [word lex_id ...] p_cnt ... | gloss``."""
    def bad(problem: str):
        return DataFileError(path, f"line {number}: {problem} (not the WordNet data format, wndb(5WN))")

    head, separator, gloss = line.partition(" | ")
    if not separator:
        raise bad("no ' | ' before the gloss")
    fields = head.split()
    if len(fields) < 6:
        raise bad(f"{len(fields)} fields before the gloss, at least 6 expected")
    offset, lexfile, pos, count = fields[:4]
    if not (len(offset) == 8 and offset.isdigit()):
        raise bad(f"synset offset {offset[:20]!r} is not 8 digits")
    if not (lexfile.isdigit() and int(lexfile) < len(LEXNAMES)):
        raise bad(f"lexicographer file {lexfile[:20]!r} is not a number in 0..{len(LEXNAMES) - 1}")
    if pos not in ("n", "v", "a", "s", "r"):
        raise bad(f"synset type {pos[:20]!r} is not one of n v a s r")
    try:
        words = int(count, 16)
    except ValueError:
        raise bad(f"word count {count[:20]!r} is not hexadecimal") from None
    if words < 1 or len(fields) < 4 + 2 * words:
        raise bad(f"word count {words} does not fit the {len(fields)} fields")
    gloss = gloss.strip()
    if not gloss:
        raise bad("empty gloss")
    return Synset(pos, int(lexfile), _headword(fields[4]), gloss)


def read_wordnet(directory) -> List[Synset]:
    """Every synset of the four WordNet data files in ``directory``, in file order (noun, verb, adj, adv).

    The license header (lines starting with two spaces) is skipped; any other line must parse.
    """
    directory = Path(directory)
    synsets: List[Synset] = []
    for name in WORDNET_FILES:
        path = directory / name
        if not path.is_file():
            raise DataFileError(path, "is missing: a WordNet directory holds " + ", ".join(WORDNET_FILES))
        for number, line in enumerate(_read_text(path).split("\n"), 1):
            if not line or line.startswith("  "):
                continue
            synsets.append(_parse_synset(line, path, number))
            if len(synsets) > MAX_DOCUMENTS:
                raise DataFileError(path, f"more than {MAX_DOCUMENTS:,} synsets; refused")
    if not synsets:
        raise DataFileError(directory, "its WordNet data files hold no synsets")
    return synsets


# ---- finding WordNet --------------------------------------------------------------------------------
def _search_places(root=None) -> List[Tuple[Path, str]]:
    if root is not None:
        return [(Path(root).expanduser() / "wordnet", "root= / --data-root")]
    places = [(Path(entry).expanduser() / "wordnet", f"${DATA_ENV}")
              for entry in os.environ.get(DATA_ENV, "").split(os.pathsep) if entry]
    if os.environ.get("WNSEARCHDIR"):
        places.append((Path(os.environ["WNSEARCHDIR"]).expanduser(), "$WNSEARCHDIR"))
    places.append((Path.home() / ".cache" / "scratchgen" / "wordnet", "the user cache"))
    places += [(directory, "system package wordnet-base") for directory in SYSTEM_WORDNET_DIRS]
    return places


def wordnet_dirs(root=None) -> List[Path]:
    """The directories searched for WordNet, in order (see the module docstring)."""
    return [directory for directory, _ in _search_places(root)]


def _holds_wordnet(directory: Path) -> bool:
    try:
        return all((directory / name).is_file() for name in WORDNET_FILES)
    except OSError:
        return False


def find_wordnet(root=None) -> Path:
    """The first directory holding WordNet's data files, else FileNotFoundError saying where it looked."""
    for directory in wordnet_dirs(root):
        if _holds_wordnet(directory):
            return directory
    raise FileNotFoundError(f"WordNet not found (no {', '.join(WORDNET_FILES)} in "
                            f"{', '.join(str(d) for d in wordnet_dirs(root))}); apt-get install wordnet-base, "
                            f"or set ${DATA_ENV} / --data-root to a directory holding wordnet/")


def text_search_report(name: str, root=None) -> str:
    """Where ``load_text_dataset(name)`` finds its text, or every place searched and how to add one."""
    if name.split(":", 1)[0] in TEXT_FORMS and ":" in name:
        return f"{name}: the text file {name.split(':', 1)[1]}"
    places = _search_places(root)
    states = [(d, why, "data.noun, data.verb, data.adj, data.adv" if _holds_wordnet(d) else
               ("no WordNet data files" if d.is_dir() else "no such directory")) for d, why in places]
    found = [d for d, _, state in states if state.startswith("data.")]
    head = f"{name}: found WordNet at {found[0]}" if found else f"{name}: WordNet not found"
    width = max(len(str(d)) for d, _ in places)
    lines = [head, "  searched, in order:"]
    lines += [f"    {str(d):<{width}}  [{why}] {state}" for d, why, state in states]
    lines.append(f"  to add a place: apt-get install wordnet-base; or --data-root DIR (reads DIR/wordnet); "
                 f"or ${DATA_ENV}=DIR{os.pathsep}... ; or $WNSEARCHDIR=DIR")
    return "\n".join(lines)


# ---- documents -> examples ---------------------------------------------------------------------------
def is_text_dataset(name) -> bool:
    """True for the names ``load_text_dataset`` reads (``wordnet-*`` and ``FORM:FILE``)."""
    name = str(name)
    return name in TEXT_DATASET_NAMES or (":" in name and name.split(":", 1)[0] in TEXT_FORMS)


def read_text_file(path, form: str) -> Tuple[List[List[str]], List[str]]:
    """``(documents, labels)`` of a text file: documents are lists of sentences.

    pairs / stream: one sentence per line, blank lines between documents; labels are "".
    labelled: "label<TAB>text" per non-blank line; each line is a one-sentence document.
    """
    path = Path(path).expanduser()
    text = _read_text(path)
    documents, labels, current = [], [], []
    for number, line in enumerate(text.split("\n"), 1):
        line = line.rstrip("\r")
        if form == "labelled":
            if not line.strip():
                continue
            label, tab, sentence = line.partition("\t")
            if not tab or not label.strip() or not sentence.strip():
                raise DataFileError(path, f"line {number}: expected 'label<TAB>text', got {line[:60]!r}")
            documents.append([sentence.strip()])
            labels.append(label.strip())
            continue
        if line.strip():
            current.append(line.strip())
        elif current:
            documents.append(current)
            current = []
    if current:
        documents.append(current)
    if not documents:
        raise DataFileError(path, "holds no text (every line is blank)")
    if len(documents) > MAX_DOCUMENTS:
        raise DataFileError(path, f"holds more than {MAX_DOCUMENTS:,} documents; refused")
    return documents, labels or [""] * len(documents)


def _split_documents(count: int, fractions) -> List[np.ndarray]:
    """Indices of the train / validation / test documents: one fixed permutation, cut in three."""
    validation_fraction, test_fraction = fractions
    for value in fractions:
        if not 0.0 <= value < 1.0:
            raise ValueError(f"load_text_dataset: split fractions must lie in [0, 1), got {tuple(fractions)}")
    order = np.random.default_rng(SPLIT_SEED).permutation(count)
    n_validation, n_test = int(round(validation_fraction * count)), int(round(test_fraction * count))
    n_train = count - n_validation - n_test
    if n_train < 1:
        raise ValueError(f"load_text_dataset: fractions {tuple(fractions)} leave none of {count} documents for training")
    return [order[:n_train], order[n_train:n_train + n_validation], order[n_train + n_validation:]]


def _pairs(documents, labels, indices, width) -> Split:
    rows, ys = [], []
    for index in indices:
        sentences = documents[index]
        for first, second in zip(sentences[:-1], sentences[1:]):
            rows.append((first, second))
            ys.append(labels[index])
    x = np.zeros((len(rows), 1, 2, width), np.uint8)
    if rows:
        x[:, 0, 0] = encode_texts([a for a, _ in rows], width)
        x[:, 0, 1] = encode_texts([b for _, b in rows], width)
    return Split(x, np.asarray(ys, np.int64))


def _stream(documents, indices, width) -> Split:
    data = "".join("\n".join(documents[i]) + "\n" for i in indices).encode("utf-8")
    stream = np.frombuffer(data, np.uint8)
    step = width - 1
    count = max(0, (len(stream) - 1) // step)
    x = np.zeros((count, 1, 1, width), np.uint8)
    for row in range(count):
        x[row, 0, 0] = stream[row * step:row * step + width]
    return Split(x, np.zeros(count, np.int64))


def _labelled(documents, labels, indices, width) -> Split:
    x = encode_texts([documents[i][0] for i in indices], width).reshape(len(indices), 1, 1, width)
    return Split(x, np.asarray([labels[i] for i in indices], np.int64))


def _wordnet_documents(form: str, root) -> Tuple[List[List[str]], List[int], str]:
    directory = find_wordnet(root)
    synsets = read_wordnet(directory)
    if form == "labelled":
        documents = [[f"{s.headword}: {split_gloss(s.gloss)[0]}"] for s in synsets]
    elif form == "pairs":
        documents = []
        for s in synsets:
            parts = split_gloss(s.gloss)
            documents.append([f"{s.headword}: {parts[0]}"] + parts[1:2])
    else:
        documents = [[f"{s.headword}: {s.gloss}"] for s in synsets]
    source = f"WordNet 3.0 at {directory} (Debian package wordnet-base): {len(synsets):,} synsets"
    return documents, [s.lexname for s in synsets], source


def load_text_dataset(name: str, root=None, width: Optional[int] = None,
                      fractions: Tuple[float, float] = SPLIT_FRACTIONS) -> DatasetSplits:
    """Text as train / validation / test ``DatasetSplits`` of uint8 bytes (see the module docstring).

    name: ``wordnet-pairs``, ``wordnet-stream``, ``wordnet-definitions`` or ``FORM:FILE``
    (FORM one of pairs, stream, labelled). root: where ``wordnet/`` is looked for.
    width: B (bytes per text, default 256) or W (bytes per window, default 129).
    fractions: the validation and test shares of the documents (default 0.1 each).
    """
    name = str(name)
    if name in _WORDNET_FORMS:
        form = _WORDNET_FORMS[name]
        documents, labels, source = _wordnet_documents(form, root)
        class_names = LEXNAMES if form != "stream" else ("text",)
    elif is_text_dataset(name):
        form, path = name.split(":", 1)
        documents, names = read_text_file(path, form)
        if form == "labelled":
            class_names = tuple(sorted(set(names)))
            if len(class_names) > MAX_LABELS:
                raise DataFileError(path, f"has {len(class_names):,} distinct labels; at most {MAX_LABELS:,}")
            index = {label: k for k, label in enumerate(class_names)}
            labels = [index[label] for label in names]
        else:
            class_names, labels = ("text",), [0] * len(documents)
        source = f"the text file {path}: {len(documents):,} documents"
    else:
        raise ValueError(f"load_text_dataset: unknown text dataset {name!r}; valid names: "
                         f"{', '.join(TEXT_DATASET_NAMES)}, or FORM:FILE with FORM one of {', '.join(TEXT_FORMS)}")
    default = WINDOW_BYTES if form == "stream" else TEXT_BYTES
    width = default if width is None else width
    if isinstance(width, bool) or not isinstance(width, (int, np.integer)) or not 2 <= width <= MAX_TEXT_BYTES:
        raise ValueError(f"load_text_dataset: width must be an integer in [2, {MAX_TEXT_BYTES}], got {width!r}")
    pieces = _split_documents(len(documents), fractions)
    if form == "pairs":
        splits = [_pairs(documents, labels, indices, width) for indices in pieces]
        shape = (1, 2, width)
    elif form == "stream":
        splits = [_stream(documents, indices, width) for indices in pieces]
        shape = (1, 1, width)
    else:
        splits = [_labelled(documents, labels, indices, width) for indices in pieces]
        shape = (1, 1, width)
    if splits[0].num_examples == 0:
        what = {"pairs": "no two consecutive sentences in one document",
                "stream": f"fewer than {width} bytes of training text", "labelled": "no labelled line"}[form]
        raise ValueError(f"load_text_dataset: {name}: the training split has {what}")
    sizes = "/".join(str(split.num_examples) for split in splits)
    source = (f"{source}; {form} examples, {sizes} train/validation/test from a {len(pieces[0])}/{len(pieces[1])}/"
              f"{len(pieces[2])} split of the documents (fixed permutation, seed {SPLIT_SEED})")
    return DatasetSplits(name=name, train=splits[0], validation=splits[1], test=splits[2], image_shape=shape,
                         num_classes=len(class_names), class_names=tuple(class_names), source=source)
