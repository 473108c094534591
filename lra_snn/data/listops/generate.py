"""ListOps (Nangia & Bowman 2018; LRA, Tay et al. 2020): vocabulary, parser and evaluator, seeded generator, tokenizer.

Expressions use LRA's bracket format, e.g. ``( ( ( ( [MAX 2 ) 9 ) 4 ) ] )`` = MAX(2, 9, 4) = 9.
The generator follows LRA's recipe (``lra_benchmarks/data/listops.py``):
a node at depth < max_depth is an operator with probability 0.25 (else a digit), an operator takes
2..max_args children and one of MAX, MIN, MED, SM; a tree's length counts digits, operators and
closing brackets (not parentheses) and is kept when min_length < length < max_length.
Tokens: parentheses are dropped, ``]`` is kept as its own token; vocabulary ``<pad> <unk> <eos>
[MAX [MIN [MED [SM ] 0..9`` (18 ids), EOS appended. Our files never map a token to ``<unk>``: an
unknown token is a format error, because a silently altered expression would carry a wrong label.
"""

from __future__ import annotations

import random

import numpy as np

from lra_snn.data.tokenizers import EOS_ID, SPECIAL_TOKENS, token_dtype

OPERATORS = ("MAX", "MIN", "MED", "SM")
OPERATOR_TOKENS = tuple("[" + name for name in OPERATORS)
CLOSE_BRACKET = "]"
DIGIT_TOKENS = tuple(str(d) for d in range(10))
VOCAB = SPECIAL_TOKENS + OPERATOR_TOKENS + (CLOSE_BRACKET,) + DIGIT_TOKENS

FIRST_OPERATOR_ID = VOCAB.index(OPERATOR_TOKENS[0])
CLOSE_ID = VOCAB.index(CLOSE_BRACKET)
FIRST_DIGIT_ID = VOCAB.index("0")

OPERATOR_PROBABILITY = 0.25  # LRA's VALUE_P: a node below max_depth is a digit when r > 0.25

GENERATOR_VERSION = 1  # bump when generate() draws different trees for the same arguments

# --------------------------------------------------------------------------- parsing and evaluation

# Parsing maps every word to a code: vocabulary ids, then one code per parenthesis; lookup tables
# give each code's step in parenthesis depth and in bracket depth.
_OPEN_PAREN_CODE, _CLOSE_PAREN_CODE = len(VOCAB), len(VOCAB) + 1
_WORD_CODES = {token: index for index, token in enumerate(VOCAB) if token not in SPECIAL_TOKENS}
_WORD_CODES.update({"(": _OPEN_PAREN_CODE, ")": _CLOSE_PAREN_CODE})
_PAREN_STEP = np.zeros(len(VOCAB) + 2, dtype=np.int64)
_PAREN_STEP[[_OPEN_PAREN_CODE, _CLOSE_PAREN_CODE]] = (1, -1)
_BRACKET_STEP = np.zeros(len(VOCAB), dtype=np.int64)
_BRACKET_STEP[FIRST_OPERATOR_ID:CLOSE_ID] = 1
_BRACKET_STEP[CLOSE_ID] = -1


def parse(expression: str) -> np.ndarray:
    """Vocabulary ids (int64, no EOS) of ``expression``; ValueError says what is malformed.

    Checks: every token known, parentheses and brackets balanced, no operator without
    arguments, exactly one top-level expression.
    """
    words = expression.split()
    if not words:
        raise ValueError("empty expression")
    try:
        codes = np.fromiter(map(_WORD_CODES.__getitem__, words), np.int64, len(words))
    except KeyError as error:
        position = words.index(error.args[0]) + 1
        allowed = " ".join(("(", ")", *VOCAB[len(SPECIAL_TOKENS) :]))
        raise ValueError(f"unknown token {error.args[0]!r} (token {position}); allowed tokens: {allowed}") from None
    _check_nesting(_PAREN_STEP[codes], "parentheses")
    ids = codes[codes < _OPEN_PAREN_CODE]
    if not ids.size:
        raise ValueError("expression holds only parentheses")
    steps = _BRACKET_STEP[ids]
    depth = _check_nesting(steps, "brackets")
    if np.any((steps[:-1] == 1) & (steps[1:] == -1)):
        raise ValueError("an operator has no arguments")
    if np.any(depth[:-1] == 0):
        raise ValueError("more than one top-level expression")
    return ids


def _check_nesting(steps: np.ndarray, name: str) -> np.ndarray:
    """Depth after each token from its +1/-1/0 steps; ValueError unless never negative and ending at 0."""
    depth = np.cumsum(steps)
    if depth.size and (depth.min() < 0 or depth[-1] != 0):
        opening, closing = int((steps == 1).sum()), int((steps == -1).sum())
        raise ValueError(f"unbalanced {name}: {opening} opening, {closing} closing")
    return depth


def apply_operator(name: str, args: list[int]) -> int:
    """Value of ListOps operator ``name`` on digit arguments ``args``."""
    if name == "MAX":
        return max(args)
    if name == "MIN":
        return min(args)
    if name == "MED":  # integer part of the median; for an even count, the mean of the middle pair truncated
        ordered = sorted(args)
        middle = len(ordered) // 2
        return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) // 2
    if name == "SM":
        return sum(args) % 10
    raise ValueError(f"unknown operator {name!r}; ListOps operators are {OPERATORS}")


def evaluate(expression: str) -> int:
    """Value (0..9) of a ListOps expression in LRA's bracket format."""
    operators: list[str] = []
    arguments: list[list[int]] = [[]]
    for token_id in parse(expression).tolist():
        if token_id >= FIRST_DIGIT_ID:
            arguments[-1].append(token_id - FIRST_DIGIT_ID)
        elif token_id == CLOSE_ID:
            value = apply_operator(operators.pop(), arguments.pop())
            arguments[-1].append(value)
        else:
            operators.append(OPERATORS[token_id - FIRST_OPERATOR_ID])
            arguments.append([])
    return arguments[0][0]


# --------------------------------------------------------------------------- generator


class _TooLong(Exception):
    """Raised inside the tree sampler once a tree reaches the length bound (it would be rejected)."""


class _TreeSampler:
    """Draws one LRA ListOps tree as bracket-format string pieces, its value and its length."""

    def __init__(self, rng: random.Random, max_depth: int, max_args: int, length_bound: int) -> None:
        self.rng = rng
        self.max_depth = max_depth
        self.max_args = max_args
        self.length_bound = length_bound
        self.pieces: list[str] = []
        self.length = 0

    def sample(self) -> tuple[str, int, int] | None:
        """``(expression, value, length)`` of a fresh tree, or None when it reached ``length_bound``."""
        self.pieces = []
        self.length = 0
        try:
            value = self._node(depth=1)
        except _TooLong:
            return None
        return " ".join(self.pieces), value, self.length

    def _grow(self, tokens: int) -> None:
        self.length += tokens
        if self.length >= self.length_bound:
            raise _TooLong

    def _node(self, depth: int) -> int:
        rng = self.rng
        if depth >= self.max_depth or rng.random() > OPERATOR_PROBABILITY:
            self._grow(1)
            value = rng.randrange(10)
            self.pieces.append(DIGIT_TOKENS[value])
            return value
        n_args = rng.randint(2, self.max_args)
        operator = rng.randrange(len(OPERATORS))
        self._grow(2)  # the operator token and its closing bracket
        self.pieces.append("( " * (n_args + 1) + OPERATOR_TOKENS[operator])
        args = []
        for _ in range(n_args):
            args.append(self._node(depth + 1))
            self.pieces.append(")")
        self.pieces.append("] )")
        return apply_operator(OPERATORS[operator], args)


def max_tree_length(max_depth: int, max_args: int) -> int:
    """Longest tree the recipe can draw: every node above max_depth an operator with max_args children."""
    length = 1
    for _ in range(max_depth - 1):
        length = 2 + max_args * length
    return length


def generate(
    n: int,
    *,
    seed: int,
    max_depth: int = 10,
    max_args: int = 10,
    min_length: int = 500,
    max_length: int = 2000,
    max_draws: int | None = None,
) -> list[tuple[str, int]]:
    """``n`` distinct ``(expression, label)`` pairs with min_length < length < max_length, shuffled.

    Deterministic in ``seed``. ``max_draws`` (default 10,000 per example) bounds the number of trees
    drawn, so bounds that rarely or never admit a tree fail with an error instead of looping.
    """
    _check_generator_bounds(n, max_depth, max_args, min_length, max_length)
    rng = random.Random(seed)
    sampler = _TreeSampler(rng, max_depth, max_args, length_bound=max_length)
    draws_left = 10_000 * n if max_draws is None else max_draws
    examples: dict[str, int] = {}
    while len(examples) < n:
        if draws_left == 0:
            raise RuntimeError(
                f"found only {len(examples)} of {n} distinct ListOps trees with {min_length} < length < "
                f"{max_length} (max_depth={max_depth}, max_args={max_args}); widen the bounds or raise max_draws"
            )
        draws_left -= 1
        tree = sampler.sample()
        if tree is not None and tree[2] > min_length:
            examples.setdefault(tree[0], tree[1])
    pairs = list(examples.items())
    rng.shuffle(pairs)
    return pairs


def _check_generator_bounds(n: int, max_depth: int, max_args: int, min_length: int, max_length: int) -> None:
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    if max_depth < 1 or max_args < 2:
        raise ValueError(f"need max_depth >= 1 and max_args >= 2, got max_depth={max_depth}, max_args={max_args}")
    if min_length + 1 >= max_length:
        raise ValueError(f"no length lies strictly between min_length={min_length} and max_length={max_length}")
    longest = max_tree_length(max_depth, max_args)
    if longest <= min_length:
        raise ValueError(
            f"max_depth={max_depth}, max_args={max_args} allow trees of at most {longest} tokens, "
            f"not more than min_length={min_length}"
        )


# --------------------------------------------------------------------------- tokenizer


class ListOpsTokenizer:
    """LRA tokenisation: drop parentheses, keep ``]``, map to the fixed 18-id vocabulary, append EOS.

    ``max_length`` bounds a sequence including EOS (LRA: 2,048); a longer expression is an
    error, never truncated (a truncated expression has no defined value).
    """

    vocab = VOCAB

    def __init__(self, max_length: int | None = 2048) -> None:
        self.max_length = max_length

    @property
    def vocab_size(self) -> int:
        return len(self.vocab)

    def encode(self, expression: str) -> np.ndarray:
        """Ids (int16) of ``expression`` followed by EOS; ValueError if malformed or too long."""
        ids = parse(expression)
        if self.max_length is not None and len(ids) + 1 > self.max_length:
            raise ValueError(
                f"{len(ids)} tokens + EOS exceed max_length={self.max_length} (data.max_seq_len); ListOps is never "
                f"truncated: raise it or generate shorter expressions"
            )
        return np.append(ids, EOS_ID).astype(token_dtype(self.vocab_size))

    def decode(self, ids: np.ndarray) -> list[str]:
        """Token strings of ``ids``."""
        return [self.vocab[i] for i in np.asarray(ids).tolist()]
