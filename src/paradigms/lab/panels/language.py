"""The language models' panels: GPT's next-token table and its continuation streamed (``paradigms sample RUN
--prompt P``), BERT's fills of a [MASK] (``paradigms fill RUN TEXT``)."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

from ...errors import UserError
from .base import NETWORKS, Panel, integer, number, said, text


def _gpt_settings(query: dict) -> dict:
    top_k = query.get("top_k")
    return {"prompt": text(query, "prompt", ""), "temperature": number(query, "temperature", 0.8, 0.01, 10.0),
            "top_k": None if top_k in (None, "", "0") else integer(query, "top_k", 200, 1, 1_000_000),
            "tokens": integer(query, "tokens", 200, 0, 2000), "seed": integer(query, "seed", 0, 0, 2 ** 31 - 1)}


def gpt_stream(run: Path, query: dict, body: bytes = b"") -> Iterator[str]:
    """The continuation of the prompt, piece by piece (``paradigms sample RUN --prompt P``)."""
    trained = NETWORKS.get(run, "recipe")
    s = _gpt_settings(query)
    pieces = trained.stream(s["prompt"], max(1, s["tokens"]), s["temperature"], s["top_k"], s["seed"])
    try:
        first = next(pieces, "")          # bad input is said before any text; the settings are checked: the prompt
    except UserError as e:
        raise said("prompt", e) from None
    yield first
    yield from pieces


def gpt(run: Path, query: dict, body: bytes) -> dict:
    """The next-token probability table after the prompt and, with ``tokens`` > 0, the whole continuation."""
    trained = NETWORKS.get(run, "recipe")
    s = _gpt_settings(query)
    try:
        table = trained.next_tokens(s["prompt"], top=10, temperature=s["temperature"])
    except UserError as e:
        raise said("prompt", e) from None
    out = {"next": [{"token": t, "p": p} for t, p in table], **s}
    if s["tokens"]:
        out["text"] = "".join(gpt_stream(run, query))
    return out


def bert(run: Path, query: dict, body: bytes) -> dict:
    """The most likely fills of each [MASK] (``paradigms fill RUN TEXT``)."""
    trained = NETWORKS.get(run, "recipe")
    sentence = text(query, "text", "The cat [MASK] on the mat.", 1000)
    top = integer(query, "top", 5, 1, 50)
    try:
        fills = trained.fill(sentence, top)
    except UserError as e:
        raise said("text", e) from None
    return {"text": sentence, "top": top, "fills": [[{"token": t, "p": p} for t, p in guesses] for guesses in fills]}


PANELS = [
    Panel("gpt", "GPT writes", ("transformer",),
          "Type the start of a text: the model's probability for each possible next token, then the continuation "
          "it draws token by token (temperature divides the logits; top-k keeps the k likeliest). Top-k 1 is greedy: "
          "the same text every time.", gpt, recipes=("gpt",), input="text", stream=gpt_stream),
    Panel("bert", "BERT fills the blank", ("transformer",),
          "Write a sentence with [MASK] where a word is missing: the tokens the masked language model finds likeliest "
          "there, with their probabilities.", bert, recipes=("bert",), input="text"),
]
