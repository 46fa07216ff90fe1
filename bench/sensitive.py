"""What the banned-word check costs: a 2,000-character text against 50,000 words, and the memory
the words take in each worker.

    .venv/bin/python -m bench.sensitive [--words 50000] [--chars 2000] [--runs 5000]

The words are random runs of 2-8 CJK characters (and a few Latin ones) drawn from 20,000 ideographs;
the text is Chinese as a model writes it: runs of common ideographs, full-width punctuation, some
ASCII words and digits, and no banned word (the usual case, and the one every message pays); then the
same text with full-width letters and digits in it (`ＱＱ号１２３`, as input methods type them), and with
a symbol NFKC turns into letters (`25℃`). Memory is
the process's resident size before and after the list is built, as a worker builds it at start.
"""

from __future__ import annotations

import argparse
import gc
import random
import statistics
import time

from bot.safety.stream import StreamFilter
from bot.safety.words import WordList

COMMON = [chr(c) for c in range(0x4E00, 0x4E00 + 3000)]
IDEOGRAPHS = [chr(c) for c in range(0x4E00, 0x4E00 + 20000)]
PUNCTUATION = "，。：；！？、（）“”《》 "
WIDE = "ＱＱ号１２３"
SYMBOL = "25℃"


def word_list(count: int, rng: random.Random) -> list[str]:
    words: set[str] = set()
    while len(words) < count:
        if rng.random() < 0.05:
            words.add("".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(4, 10))))
        else:
            words.add("".join(rng.choice(IDEOGRAPHS) for _ in range(rng.randint(2, 8))))
    return sorted(words)


def answer_text(chars: int, rng: random.Random, words: WordList) -> str:
    parts: list[str] = []
    while sum(map(len, parts)) < chars:
        run = "".join(rng.choice(COMMON) for _ in range(rng.randint(5, 15)))
        if rng.random() < 0.1:
            run += f" Python {rng.randint(1, 999)} "
        if not words.hits(run):  # the text holds no banned word
            parts.append(run + rng.choice(PUNCTUATION))
    text = "".join(parts)[:chars]
    return text if not words.hits(text) else answer_text(chars, rng, words)


def resident_mb() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * 4096 / 2**20


def median_us(action, runs: int) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        action()
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--words", type=int, default=50_000)
    parser.add_argument("--chars", type=int, default=2_000)
    parser.add_argument("--runs", type=int, default=5_000)
    args = parser.parse_args()
    rng = random.Random(13)
    words = word_list(args.words, rng)
    gc.collect()
    before, started = resident_mb(), time.perf_counter()
    banned = WordList(words)
    built = time.perf_counter() - started
    gc.collect()
    memory = resident_mb() - before
    text = answer_text(args.chars, rng, banned)
    assert len(text) == args.chars and not banned.hits(text)
    print(f"{len(banned)} words (longest {banned.longest}), built in {built * 1000:.0f} ms, {memory:.1f} MB resident")
    print(f"check, {len(text)} clean characters: median {median_us(lambda: banned.hits(text), args.runs):.1f} µs")
    # Full-width letters and digits, as Chinese input methods type them: the reading is then not
    # NFKC-normal, and only the part of it that holds them is normalised. A symbol whose NFKC holds a
    # letter (℃ → °c, ㎡, ⓐ): the whole text goes through NFKC first.
    for inserted, label in ((WIDE, f"the same with {WIDE} in it: "), (SYMBOL, f"the same with {SYMBOL} in it:    ")):
        other = text[:1000] + inserted + text[1000 : len(text) - len(inserted)]
        assert len(other) == len(text) and not banned.hits(other)
        print(f"check, {label} median {median_us(lambda other=other: banned.hits(other), args.runs):.1f} µs")
    dirty = text[:1000] + words[0] + text[1000:1998]
    print(f"check and mask, one word in it:   median {median_us(lambda: banned.mask(dirty), 200):.0f} µs")
    pieces = [text[i : i + 4] for i in range(0, len(text), 4)]
    per_piece = median_us(lambda: _stream(banned, pieces), 50) / len(pieces)
    print(f"stream filter, 4-character pieces: {per_piece:.1f} µs a piece")


def _stream(words: WordList, pieces: list[str]) -> None:
    screen = StreamFilter(words)
    for piece in pieces:
        screen.feed(piece)
    screen.finish()


if __name__ == "__main__":
    main()
