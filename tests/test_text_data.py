"""Text data: WordNet's data files and plain text files as sentence pairs, byte windows and labelled sentences.

A tiny WordNet directory written here stands in for Debian's wordnet-base, so every rule (the
format, the splits, the refusals) is tested without the package; the real WordNet is read too
when it is installed (its counts are facts of WordNet 3.0).
"""
import os

import numpy as np
import pytest

from scratchgen.data import DataFileError, decode_texts, encode_texts, load_dataset, load_text_dataset, search_report
from scratchgen.data import text as text_data
from scratchgen.data.text import LEXNAMES, read_wordnet, split_gloss

HEADER = "  1 This software and database is being provided to you, the LICENSEE, by  \n"
SYNSETS = {
    "data.noun": [
        "00001740 03 n 01 entity 0 003 ~ 00001930 n 0000 | that which is perceived or known; \"the entity is real\"  ",
        "02084071 05 n 03 dog 0 domestic_dog 0 Canis_familiaris 0 000 | a member of the genus Canis; occurs in many "
        "breeds; \"the dog barked all night\"  ",
        "09917593 18 n 02 child 0 kid 0 000 | a young person of either sex; \"she writes books for children; and "
        "poems\"; \"they're just kids\"  ",
    ],
    "data.verb": ["01835496 38 v 01 travel 0 000 | change location; move, travel, or proceed  "],
    "data.adj": ["00014358 00 s 02 abounding 0 galore(ip) 0 000 | existing in abundance; \"abounding confidence\"  "],
    "data.adv": ["00001740 02 r 01 barely 0 000 | only just  "],
}


def write_wordnet(directory, synsets=SYNSETS):
    os.makedirs(directory, exist_ok=True)
    for name, lines in synsets.items():
        with open(os.path.join(directory, name), "w") as handle:
            handle.write(HEADER + "".join(line + "\n" for line in lines))
    return directory


@pytest.fixture
def wordnet_root(tmp_path):
    write_wordnet(tmp_path / "wordnet")
    return tmp_path


def test_glosses_split_at_semicolons_outside_quotes():
    assert split_gloss('a young person; "she writes; and reads"; "kids"') == ["a young person", '"she writes; and reads"', '"kids"']
    assert split_gloss("only just") == ["only just"]
    assert split_gloss(" ; a ;; b ; ") == ["a", "b"]


def test_read_wordnet_parses_the_documented_format(wordnet_root):
    synsets = read_wordnet(wordnet_root / "wordnet")
    assert len(synsets) == 6
    dog = synsets[1]
    assert (dog.pos, LEXNAMES[dog.lexname], dog.headword) == ("n", "noun.animal", "dog")
    assert dog.gloss.startswith("a member of the genus Canis;")
    assert synsets[4].headword == "abounding" and LEXNAMES[synsets[4].lexname] == "adj.all"


def test_the_three_forms_of_wordnet(wordnet_root):
    pairs = load_text_dataset("wordnet-pairs", root=wordnet_root, fractions=(0.0, 0.0))
    # the first two parts of each gloss, the first prefixed with the headword: every synset but barely (one part)
    assert pairs.train.x.shape == (5, 1, 2, 256) and pairs.train.x.dtype == np.uint8
    texts = decode_texts(pairs.train.x[:, 0])
    assert ["dog: a member of the genus Canis", "occurs in many breeds"] in texts
    assert ["child: a young person of either sex", '"she writes books for children; and poems"'] in texts
    assert pairs.num_classes == 45 and pairs.class_names == LEXNAMES

    definitions = load_text_dataset("wordnet-definitions", root=wordnet_root, fractions=(0.0, 0.0))
    found = dict(zip(decode_texts(definitions.train.x[:, 0, 0]), definitions.train.y))
    assert LEXNAMES[found["child: a young person of either sex"]] == "noun.person"
    assert LEXNAMES[found["travel: change location"]] == "verb.motion"

    stream = load_text_dataset("wordnet-stream", root=wordnet_root, fractions=(0.0, 0.0))
    windows = stream.train.x[:, 0, 0]
    assert windows.shape[1] == 129 and np.array_equal(windows[1:, 0], windows[:-1, -1])  # overlapping by one byte
    text = bytes(np.concatenate([windows[0], *[w[1:] for w in windows[1:]]])).decode()
    entries = {"entity: that which is perceived or known; \"the entity is real\"", "travel: change location; move, travel, or proceed",
               "barely: only just", "abounding: existing in abundance; \"abounding confidence\""}
    lines = text.split("\n")
    assert len(lines) >= 4 and set(lines[:-1]) - {line for line in lines[:-1] if line.split(":")[0] in ("dog", "child")} <= entries


def test_splits_are_by_document_fixed_and_disjoint(tmp_path):
    lines = []
    for doc in range(40):
        lines += [f"doc {doc} sentence {s}" for s in range(3)] + [""]
    path = tmp_path / "docs.txt"
    path.write_text("\n".join(lines))
    first = load_text_dataset(f"pairs:{path}")
    again = load_dataset(f"pairs:{path}", seed=7)  # the run's seed does not move the split
    assert all(np.array_equal(a.x, b.x) for a, b in zip((first.train, first.validation, first.test),
                                                       (again.train, again.validation, again.test)))
    docs = [{text.split(" sentence")[0] for pair in decode_texts(split.x[:, 0]) for text in pair}
            for split in (first.train, first.validation, first.test)]
    assert (len(docs[0]), len(docs[1]), len(docs[2])) == (32, 4, 4)
    assert not (docs[0] & docs[1]) and not (docs[0] & docs[2]) and not (docs[1] & docs[2])
    assert first.train.num_examples == 64 and "32/4/4 split of the documents" in first.source


def test_labelled_files_and_their_classes(tmp_path):
    path = tmp_path / "labels.tsv"
    path.write_text("animal\ta dog barks\nplant\ta tree grows\n\nanimal\ta cat sleeps\n")
    data = load_text_dataset(f"labelled:{path}", fractions=(0.0, 0.0))
    assert data.class_names == ("animal", "plant") and sorted(data.train.y.tolist()) == [0, 0, 1]
    path.write_text("animal\ta dog barks\nno tab here\n")
    with pytest.raises(DataFileError, match=r"labels.tsv: line 2: expected 'label<TAB>text'"):
        load_text_dataset(f"labelled:{path}")


def test_bytes_round_trip_and_cut_at_a_character_boundary():
    texts = ["plain", "caf\u00e9 na\u00efve", ""]
    assert decode_texts(encode_texts(texts, 16)) == texts
    cut = encode_texts(["ab\u00e9"], 3)  # \u00e9 is two bytes: it does not fit, and is not half-written
    assert decode_texts(cut) == ["ab"]
    with pytest.raises(TypeError, match="uint8"):
        decode_texts(np.zeros((2, 3), np.int64))


@pytest.mark.parametrize("content, problem", [
    (b"", "holds no text"),
    (b"\n\n  \n", "holds no text"),
    (b"one\0two\n", "NUL byte at offset 3 (line 1)"),
    (b"fine\n\xff\xfe\n", "not UTF-8: byte 0xff at offset 5 (line 2)"),
])
def test_hostile_text_files_are_refused_in_one_line(tmp_path, content, problem):
    path = tmp_path / "bad.txt"
    path.write_bytes(content)
    with pytest.raises(DataFileError) as error:
        load_text_dataset(f"stream:{path}")
    assert str(path) in str(error.value) and problem in str(error.value) and "\n" not in str(error.value)


def test_sizes_are_bounded_before_reading(tmp_path, monkeypatch):
    path = tmp_path / "big.txt"
    path.write_text("word " * 100)
    monkeypatch.setattr(text_data, "MAX_TEXT_FILE_BYTES", 100)
    with pytest.raises(DataFileError, match="is 500 bytes; text files are limited to 100 bytes"):
        load_text_dataset(f"pairs:{path}")
    monkeypatch.setattr(text_data, "MAX_TEXT_FILE_BYTES", 10_000)
    monkeypatch.setattr(text_data, "MAX_LINE_BYTES", 50)
    with pytest.raises(DataFileError, match="line 1 has 500 characters; lines are limited to 50"):
        load_text_dataset(f"pairs:{path}")


def test_too_little_text_and_bad_options(tmp_path):
    path = tmp_path / "one.txt"
    path.write_text("a single sentence\n")
    with pytest.raises(ValueError, match="no two consecutive sentences"):
        load_text_dataset(f"pairs:{path}")
    with pytest.raises(ValueError, match="fewer than 129 bytes"):
        load_text_dataset(f"stream:{path}")
    with pytest.raises(ValueError, match="width must be an integer in"):
        load_text_dataset(f"stream:{path}", width=10**9)
    with pytest.raises(ValueError, match="unknown text dataset 'wordnet-poems'"):
        load_text_dataset("wordnet-poems")
    with pytest.raises(DataFileError, match="missing.txt: cannot be read"):
        load_text_dataset(f"pairs:{tmp_path / 'missing.txt'}")


@pytest.mark.parametrize("line, problem", [
    ("00001740 03 n 01 entity 0 000 that which is", "no ' | ' before the gloss"),
    ("0001740 03 n 01 entity 0 000 | gloss", "synset offset '0001740' is not 8 digits"),
    ("00001740 45 n 01 entity 0 000 | gloss", "lexicographer file '45' is not a number in 0..44"),
    ("00001740 03 x 01 entity 0 000 | gloss", "synset type 'x' is not one of n v a s r"),
    ("00001740 03 n zz entity 0 000 | gloss", "word count 'zz' is not hexadecimal"),
    ("00001740 03 n 09 entity 0 000 | gloss", "word count 9 does not fit the 7 fields"),
    ("00001740 03 n 01 entity 0 000 |    ", "empty gloss"),
])
def test_a_corrupt_wordnet_line_is_named_with_its_file_and_line(tmp_path, line, problem):
    synsets = dict(SYNSETS, **{"data.verb": [SYNSETS["data.verb"][0], line]})
    directory = write_wordnet(tmp_path / "wordnet", synsets)
    with pytest.raises(DataFileError) as error:
        read_wordnet(directory)
    message = str(error.value)
    assert message.startswith(f"{directory / 'data.verb'}: line 3: {problem}") and "wndb(5WN)" in message


def test_search_report_and_a_missing_wordnet(tmp_path, monkeypatch):
    monkeypatch.setattr(text_data, "SYSTEM_WORDNET_DIRS", ())
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("WNSEARCHDIR", raising=False)
    monkeypatch.setenv("SCRATCHGEN_DATA", str(tmp_path / "data"))
    report = search_report("wordnet-pairs")
    assert report.startswith("wordnet-pairs: WordNet not found") and str(tmp_path / "data" / "wordnet") in report
    assert "apt-get install wordnet-base" in report
    with pytest.raises(FileNotFoundError, match="apt-get install wordnet-base"):
        load_dataset("wordnet-pairs")
    write_wordnet(tmp_path / "data" / "wordnet")
    assert search_report("wordnet-definitions").startswith(f"wordnet-definitions: found WordNet at {tmp_path / 'data' / 'wordnet'}")
    monkeypatch.setenv("WNSEARCHDIR", str(tmp_path / "elsewhere"))
    assert "[$WNSEARCHDIR] no such directory" in search_report("wordnet-stream")


def test_missing_data_file(tmp_path):
    directory = write_wordnet(tmp_path / "wordnet")
    os.remove(directory / "data.adv")
    with pytest.raises(DataFileError, match="data.adv: is missing"):
        read_wordnet(directory)


def test_the_real_wordnet():
    try:
        directory = text_data.find_wordnet()
    except FileNotFoundError:
        pytest.skip("WordNet is not installed (apt-get install wordnet-base)")
    synsets = read_wordnet(directory)
    assert len(synsets) == 117_659  # WordNet 3.0's synsets
    assert {s.lexname for s in synsets} == set(range(45))
    assert sum(len(split_gloss(s.gloss)) - 1 for s in synsets) == 66_454  # consecutive parts of glosses
    data = load_text_dataset("wordnet-pairs", root=directory.parent if directory.name == "wordnet" else None)
    pairs = data.train.num_examples + data.validation.num_examples + data.test.num_examples
    assert pairs == 45_994  # one from each gloss with two parts or more
