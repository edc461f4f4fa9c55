"""A small, learnable stand-in for the real archive (smoke preset, tests), in the official layout.

Byte-identical for the same arguments, so cached pipeline runs stay valid, and with one file per defect the reader
must drop, so tests can assert exact counts.
"""

from __future__ import annotations

import gzip
import io
import os
import random
import tarfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from pipeline_modules.data.layout import CLASSES, RATING_RANGE, SPLITS, relative_parts, review_location
from pipeline_modules.data.vet import EMPTY, NO_RATING, NOT_UTF8, RATING_MISMATCH

_POSITIVE = (
    "wonderful", "brilliant", "superb", "moving", "delightful", "charming", "gripping", "hilarious", "beautiful",
    "excellent", "touching", "stunning", "memorable", "enjoyable", "fantastic", "clever", "heartfelt", "masterful",
)  # fmt: skip
_NEGATIVE = (
    "awful", "boring", "dreadful", "tedious", "clumsy", "disappointing", "terrible", "lifeless", "predictable",
    "bland", "painful", "stupid", "forgettable", "annoying", "pointless", "horrible", "dull", "incoherent",
)  # fmt: skip
_POSITIVE_VERDICTS = ("I loved it.", "A masterpiece.", "Highly recommended!", "Worth every minute.", "10/10, see it.")
_NEGATIVE_VERDICTS = ("I hated it.", "A waste of time.", "Avoid it.", "Worst film this year.", "Do not bother.")
_NOUNS = (
    "plot", "acting", "script", "ending", "cast", "soundtrack", "dialogue", "direction", "pacing", "cinematography",
    "lead actress", "villain", "story", "editing", "final act",
)  # fmt: skip
_ADVERBS = ("really", "quite", "truly", "rather", "simply", "frankly", "surprisingly", "utterly")
_SETTINGS = (
    "the café scene", "a naïve hero", "Amélie's neighbour", "a sense of déjà vu", "the über-villain", "the façade",
    "Zoë's résumé", "a crème brûlée", "the Björk cameo", "the São Paulo chase", "Señor López", "the Müller brothers",
)  # fmt: skip
_TEMPLATES = (
    "The {noun} was {adverb} {word}.",
    "I thought the {noun} felt {word}.",
    "{Setting} is {adverb} {word}, and so is the {noun}.",
    "Honestly, the {noun} is {word}.",
    "What {a_word} {noun}!",
    "Everything about {setting} was {word}.",
)
_NEUTRAL = (
    "I saw it on a rainy Sunday with friends.",
    "It runs about two hours.",
    "The film is based on a novel I have not read.",
    "My brother recommended it after seeing {setting}.",
    "It was released last year in a few cinemas.",
    "The director also made a documentary about {setting}.",
)


@dataclass(frozen=True)
class SyntheticArchiveInfo:
    """What was written, so tests can assert exact read/kept/dropped counts instead of approximations."""

    path: Path
    n_per_class: int
    seed: int
    bad_files_per_split: dict[str, int]  # drop reason -> files written with that defect, in each split
    ignored_files: int  # files outside {train,test}/{pos,neg}: README, unsup/, urls, vocab

    @property
    def read_per_split(self) -> int:
        return 2 * self.n_per_class + sum(self.bad_files_per_split.values())

    @property
    def kept_per_split(self) -> int:
        return 2 * self.n_per_class

    @property
    def dropped_per_split(self) -> int:
        return sum(self.bad_files_per_split.values())


def _synthetic_review(rng: random.Random, label: int, max_words: int) -> str:
    own, other = (_POSITIVE, _NEGATIVE) if label else (_NEGATIVE, _POSITIVE)
    verdicts = _POSITIVE_VERDICTS if label else _NEGATIVE_VERDICTS
    target = rng.randint(min(12, max_words), max_words)
    sentences: list[str] = []
    words = 0
    while True:
        roll = rng.random()
        word = ""
        if roll < 0.2:
            sentence = rng.choice(_NEUTRAL)
        elif roll < 0.3:
            sentence = rng.choice(verdicts)
        else:
            # Noise: a fifth of sentiment words come from the other side, so the task is learnable but not trivial.
            word = rng.choice(other if rng.random() < 0.2 else own)
            sentence = rng.choice(_TEMPLATES)
        setting = rng.choice(_SETTINGS)
        sentence = sentence.format(
            noun=rng.choice(_NOUNS),
            adverb=rng.choice(_ADVERBS),
            word=word,
            a_word=("an " if word[:1] in "aeiou" else "a ") + word,
            setting=setting,
            Setting=setting[0].upper() + setting[1:],
        )
        n = len(sentence.split())
        if sentences and words + n > max_words:
            break
        sentences.append(sentence)
        words += n
        if words >= target:
            break
    text = sentences[0]
    for sentence in sentences[1:]:
        text += " <br /><br />" + sentence if rng.random() < 0.15 else " " + sentence
    return text


def write_synthetic_archive(
    path: str | os.PathLike[str],
    *,
    n_per_class: int,
    seed: int,
    include_bad_files: bool = True,
    max_words: int = 120,
) -> SyntheticArchiveInfo:
    """Write a small ``aclImdb_v1.tar.gz`` in the official layout, byte-identical for the same arguments.

    Reviews are generated so a classifier can learn them (class-leaning sentiment words with 20% noise) while looking
    like IMDB to the code under test: HTML line breaks, non-ASCII text, varied lengths, class-consistent ratings,
    archive ordered by class, plus README/unsup files that must be ignored. With ``include_bad_files`` each split
    also gets one file per defect the reader must drop (two for ``empty``: empty and whitespace-only).
    """
    if n_per_class < 1:
        raise ValueError(f"n_per_class must be at least 1, got {n_per_class}")
    if max_words < 4:
        raise ValueError(f"max_words must be at least 4, got {max_words}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = random.Random(f"imdb-synthetic:{seed}")
    members: list[tuple[str, bytes | None]] = [("aclImdb", None)]  # None: a directory entry
    members.append(("aclImdb/README", b"Synthetic stand-in for the Large Movie Review Dataset v1.0 (tests only).\n"))
    members.append(("aclImdb/imdb.vocab", "\n".join(sorted(_POSITIVE + _NEGATIVE)).encode()))
    bad: Counter[str] = Counter()
    for folder in SPLITS:
        members.append((f"aclImdb/{folder}", None))
        for class_name, label in CLASSES.items():
            directory = f"aclImdb/{folder}/{class_name}"
            members.append((directory, None))
            for index in range(n_per_class):
                rating = rng.choice(RATING_RANGE[label])
                text = _synthetic_review(rng, label, max_words)
                members.append((f"{directory}/{index}_{rating}.txt", text.encode("utf-8")))
            if include_bad_files:
                n = n_per_class
                if label == 1:
                    members.append((f"{directory}/{n}_8.txt", b""))
                    members.append((f"{directory}/{n + 1}_9.txt", "Un film très réussi.".encode("latin-1")))
                    bad.update({EMPTY: 1, NOT_UTF8: 1})
                else:
                    members.append((f"{directory}/{n}_2.txt", b"  \n\t <br /><br /> \n"))
                    members.append((f"{directory}/{n + 1}.txt", b"A dull film, and its file name has no rating."))
                    members.append((f"{directory}/{n + 2}_9.txt", b"A superb film filed under neg, rated 9."))
                    bad.update({EMPTY: 1, NO_RATING: 1, RATING_MISMATCH: 1})
        members.append((f"aclImdb/{folder}/urls_pos.txt", b"http://www.imdb.com/title/tt0000001/usercomments\n"))
    members.append(("aclImdb/train/unsup", None))
    for index in range(2):
        members.append((f"aclImdb/train/unsup/{index}_0.txt", _synthetic_review(rng, index % 2, max_words).encode()))
    ignored = sum(1 for name, data in members if data is not None and review_location(relative_parts(name)) is None)
    per_split = {reason: n // len(SPLITS) for reason, n in bad.items()}

    # Fixed gzip and tar timestamps: the same arguments give the same bytes, so cached pipeline runs stay valid.
    with (
        open(path, "wb") as raw,
        gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as gz,
        tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as archive,
    ):
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.mtime = 1_300_000_000
            info.uname = info.gname = "imdb"
            if data is None:
                info.type = tarfile.DIRTYPE
                info.mode = 0o755
                archive.addfile(info)
            else:
                info.size = len(data)
                info.mode = 0o644
                archive.addfile(info, io.BytesIO(data))
    return SyntheticArchiveInfo(
        path=path, n_per_class=n_per_class, seed=seed, bad_files_per_split=per_split, ignored_files=ignored
    )
