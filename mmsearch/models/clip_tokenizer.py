"""CLIP's byte-pair tokenizer (open_clip's SimpleTokenizer with the default `lower` cleaning) without torch.

open_clip's tokenizer.py imports torch at the top (it returns torch tensors), and its package import pulls in timm
and torchvision: 3-10 s before a query can be embedded. This is the same algorithm on the same merges file (read
from open_clip's package directory, which is found without importing it), returning numpy int64 arrays;
`tests/test_query_imports.py` checks it gives open_clip's tokens on a spread of texts.
"""

from __future__ import annotations

import functools
import gzip
import html
import importlib.util
from pathlib import Path

import numpy as np

BPE_FILE = "bpe_simple_vocab_16e6.txt.gz"
# open_clip keeps the first 49152 - 256 - 2 merges: the vocabulary is 256 bytes, their end-of-word forms, the
# merges and 2 special tokens = 49408 ids.
MERGES = 49152 - 256 - 2
SPECIAL = ("<start_of_text>", "<end_of_text>")
PATTERN = r"""<start_of_text>|<end_of_text>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+"""


def default_bpe_path() -> Path:
    found = importlib.util.find_spec("open_clip")
    if found is None or not found.submodule_search_locations:
        raise ImportError("open_clip is not installed (its BPE merges file is needed)")
    return Path(next(iter(found.submodule_search_locations))) / BPE_FILE


@functools.cache
def bytes_to_unicode() -> dict[int, str]:
    """GPT-2's reversible map of bytes to printable characters, as open_clip has it."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(2**8):
        if b not in bs:
            bs.append(b)
            cs.append(2**8 + n)
            n += 1
    return dict(zip(bs, [chr(c) for c in cs], strict=True))


def _clean(text: str) -> str:
    if not (text.isascii() and text.isprintable() and "&" not in text):
        # ftfy (0.1-0.5 s to import) changes only non-ASCII text, control characters and HTML entities: plain
        # typed queries skip it and come out the same.
        import ftfy

        text = ftfy.fix_text(text)
    text = html.unescape(html.unescape(text)).strip()
    return " ".join(text.split()).strip().lower()


class ClipTokenizer:
    """Texts -> N x context_length int64 token ids: start, BPE tokens, end (cut to fit, end kept), zero padding."""

    def __init__(self, context_length: int = 77, bpe_path: Path | None = None) -> None:
        import regex

        self.context_length = context_length
        with gzip.open(bpe_path or default_bpe_path()) as f:
            merges = f.read().decode("utf-8").split("\n")[1 : MERGES + 1]
        pairs = [tuple(merge.split()) for merge in merges]
        vocab = list(bytes_to_unicode().values())
        vocab = vocab + [v + "</w>" for v in vocab] + ["".join(pair) for pair in pairs] + list(SPECIAL)
        self.encoder = {token: n for n, token in enumerate(vocab)}
        self.ranks = {pair: n for n, pair in enumerate(pairs)}
        self.sot, self.eot = self.encoder[SPECIAL[0]], self.encoder[SPECIAL[1]]
        self._cache: dict[str, str] = {t: t for t in SPECIAL}
        self._pattern = regex.compile(PATTERN, regex.IGNORECASE)

    def bpe(self, token: str) -> str:
        if token in self._cache:
            return self._cache[token]
        word = (*token[:-1], token[-1] + "</w>")
        while len(word) > 1:
            pairs = set(zip(word, word[1:], strict=False))
            bigram = min(pairs, key=lambda pair: self.ranks.get(pair, float("inf")))
            if bigram not in self.ranks:
                break
            word = _merge(word, bigram)
        self._cache[token] = " ".join(word)
        return self._cache[token]

    def encode(self, text: str) -> list[int]:
        table = bytes_to_unicode()
        ids: list[int] = []
        for token in self._pattern.findall(_clean(text)):
            token = "".join(table[b] for b in token.encode("utf-8"))
            ids.extend(self.encoder[piece] for piece in self.bpe(token).split(" "))
        return ids

    def __call__(self, texts: str | list[str], context_length: int | None = None) -> np.ndarray:
        texts = [texts] if isinstance(texts, str) else texts
        length = context_length or self.context_length
        out = np.zeros((len(texts), length), np.int64)
        for row, text in enumerate(texts):
            tokens = [self.sot, *self.encode(text), self.eot]
            if len(tokens) > length:
                tokens = tokens[:length]
                tokens[-1] = self.eot
            out[row, : len(tokens)] = tokens
        return out


def _merge(word: tuple[str, ...], bigram: tuple[str, str]) -> tuple[str, ...]:
    first, second = bigram
    merged: list[str] = []
    i = 0
    while i < len(word):
        if word[i] == first and i < len(word) - 1 and word[i + 1] == second:
            merged.append(first + second)
            i += 2
        else:
            merged.append(word[i])
            i += 1
    return tuple(merged)
