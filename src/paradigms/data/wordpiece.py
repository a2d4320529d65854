"""Learning a WordPiece vocabulary (BERT's tokeniser) from a text, the same in every process.

The ``tokenizers`` library's WordPiece trainer numbers the ``##`` continuation characters in a hash map's order, and
equal counts then go to different pairs from one process to the next: two fresh runs on the same text got different
vocabularies. Here the merges are the same as that trainer's but every id is fixed, so the vocabulary is a function of
the text alone (:func:`paradigms.data.tokenize.train_tokenizer` calls this for ``wordpiece``).

    counts = word_counts(text)                                  # {"the": 2113, "king": 97, ...}
    vocab = learn_wordpieces(counts, 4000, ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"))
"""

from __future__ import annotations

import heapq
from collections import Counter, defaultdict


def lines(text: str, chunk: int = 1 << 16):
    """The text in pieces of about ``chunk`` characters cut at line ends (what a trainer reads)."""
    start = 0
    while start < len(text):
        end = text.find("\n", start + chunk)
        end = len(text) if end < 0 else end + 1
        yield text[start:end]
        start = end


def word_counts(text: str) -> Counter:
    """How often each word of ``text`` occurs, the words as BERT uncased sees them (lower-cased, punctuation apart)."""
    from tokenizers import normalizers, pre_tokenizers

    normalizer, pre = normalizers.BertNormalizer(lowercase=True), pre_tokenizers.BertPreTokenizer()
    return Counter(w for part in lines(text) for w, _ in pre.pre_tokenize_str(normalizer.normalize_str(part)))


def learn_wordpieces(counts: dict[str, int], vocab_size: int, specials: tuple[str, ...],
                      continuations: list[str] | None = None) -> list[str]:
    """A WordPiece vocabulary learned from word counts as BERT's (and the ``tokenizers``) WordPiece trainer learns
    it: the specials, every character of the words, every character that follows another as a ``##`` continuation
    (both in code-point order), then merges until there are ``vocab_size`` entries (or no pair is left). Each
    merge joins the most frequent pair of adjacent pieces (counted over the words, times each word's count) in
    every word: ``a`` + ``##b`` is ``ab``, ``##a`` + ``##b`` is ``##ab`` (one that makes a piece already there,
    the same letters joined in another order, adds no entry). Ties: equal counts go to the pair of the lower ids
    (left first, then right; ids are the places in the vocabulary), that is to the older pieces, as in the
    ``tokenizers`` trainer, whose ``##`` ids alone come in a hash map's order. The vocabulary is thus a function of
    the counts. ``continuations``: the ``##`` pieces in this order instead (to check the trainer against that one)."""
    words = sorted(counts)
    weight = [counts[w] for w in words]
    follow = sorted({"##" + c for w in words for c in w[1:]}) if continuations is None else continuations
    vocab = list(dict.fromkeys([*specials, *sorted({c for w in words for c in w}), *follow]))
    ids = {t: i for i, t in enumerate(vocab)}
    pieces = [[ids[w[0]], *(ids["##" + c] for c in w[1:])] for w in words]
    pair_count: Counter = Counter()
    where: dict[tuple[int, int], set[int]] = defaultdict(set)   # the words a pair occurs in
    for i, ps in enumerate(pieces):
        for pair in zip(ps, ps[1:]):
            pair_count[pair] += weight[i]
            where[pair].add(i)
    heap = [(-n, a, b) for (a, b), n in pair_count.items()]   # the most frequent first, then the lower ids
    heapq.heapify(heap)
    while len(vocab) < vocab_size and heap:
        n, a, b = heapq.heappop(heap)
        if -n != pair_count[a, b]:   # an outdated count: queue the pair again at its count now
            if pair_count[a, b] > 0:
                heapq.heappush(heap, (-pair_count[a, b], a, b))
            continue
        token = vocab[a] + vocab[b][2:]
        if token not in ids:
            ids[token] = len(vocab)
            vocab.append(token)
        new, grown = ids[token], set()
        for i in sorted(where.pop((a, b))):
            old, ps = pieces[i], _merge(pieces[i], a, b, new)
            for pair in zip(old, old[1:]):
                pair_count[pair] -= weight[i]
                if pair in where:
                    where[pair].discard(i)
            for pair in zip(ps, ps[1:]):
                pair_count[pair] += weight[i]
                where[pair].add(i)
                if new in pair:
                    grown.add(pair)
            pieces[i] = ps
        for pair in sorted(grown):   # only pairs with the new piece can have grown
            heapq.heappush(heap, (-pair_count[pair], *pair))
    return vocab


def _merge(pieces: list[int], a: int, b: int, new: int) -> list[int]:
    """``pieces`` with each ``a`` followed by ``b`` (from the left) replaced by ``new``."""
    out, i = [], 0
    while i < len(pieces):
        if i + 1 < len(pieces) and pieces[i] == a and pieces[i + 1] == b:
            out.append(new)
            i += 2
        else:
            out.append(pieces[i])
            i += 1
    return out


__all__ = ["learn_wordpieces", "lines", "word_counts"]
