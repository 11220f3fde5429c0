"""A compact prefix trie over the token ids of every KB name, for constrained decoding.

GENRE and GenBioEL keep a nested dict per node: ~8.5 GB for 5M names. Here the trie is three flat
numpy arrays, ~10 bytes a node. Nodes are numbered breadth-first with siblings sorted by token, so
the children of node ``n`` are the nodes ``first_child[n] .. first_child[n+1]-1`` and their tokens
``node_token[first_child[n]:first_child[n+1]]`` are sorted (lookup is a binary search);
``terminal_name[n]`` is the name a node completes (``-1`` for inner nodes). Node 0 is the root.
Saved with ``numpy.savez`` (``allow_pickle=False``): loadable without our code.
"""

from __future__ import annotations

import zipfile
from bisect import bisect_left
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from angel_trl.errors import InputFormatError
from angel_trl.data.files import atomic_open

_FORMAT_VERSION = 2
_ARRAYS = ("format_version", "eos_token_id", "first_child", "node_token", "terminal_name")


class NameTrie:
    """Prefix trie over name token sequences; every sequence must end with the EOS token."""

    def __init__(self, first_child: np.ndarray, node_token: np.ndarray, terminal_name: np.ndarray, eos_token_id: int,
                 alias_rep: np.ndarray | None = None, alias_name: np.ndarray | None = None):
        self.first_child = first_child
        self.node_token = node_token
        self.terminal_name = terminal_name
        self.eos_token_id = int(eos_token_id)
        # Names whose token sequences collide (a tokenizer's normalisation, truncation to the same
        # tokens): one path, so ``terminal_name`` holds the first; the others are kept here, sorted by
        # that first name (``alias_rep``), so that every concept of a path stays reachable.
        self.alias_rep = np.zeros(0, dtype=np.int64) if alias_rep is None else np.asarray(alias_rep, dtype=np.int64)
        self.alias_name = np.zeros(0, dtype=np.int64) if alias_name is None else np.asarray(alias_name, dtype=np.int64)
        # Walks index the arrays one element at a time: through memoryviews and ``bisect`` each step
        # costs C-level int reads instead of numpy scalar boxing and a sliced searchsorted (~5x faster).
        self._first_child = memoryview(np.ascontiguousarray(first_child))
        self._node_token = memoryview(np.ascontiguousarray(node_token))

    # ------------------------------------------------------------------ build
    @classmethod
    def build(cls, sequences: Sequence[Sequence[int]], eos_token_id: int) -> NameTrie:
        """Build from one token sequence per name (name ``i`` = ``sequences[i]``, ending in EOS).

        Names are sorted lexicographically, then walked one token position (column) at a time: in
        column ``j`` a name starts a new node unless it equals the name above it up to ``j``. In
        sorted order the new nodes of a column come out already breadth-first, grouped by parent
        and sorted by token, so their ids are a running count. Temporaries are one entry per name
        (per token only for the names' tokens, laid end to end): no nested dicts, and no names x
        longest-name matrix, whose padding one long IUPAC name would blow up for every row.
        """
        order, lengths, flat = _sorted_names(sequences, eos_token_id)
        node_token, parent, terminal, reps, others = _nodes_by_column(order, lengths, flat)
        del flat
        num_nodes = len(node_token)
        # Nodes are breadth-first and children of one parent contiguous, so parents are non-decreasing.
        first_child = np.searchsorted(parent[1:], np.arange(num_nodes + 1, dtype=parent.dtype)).astype(parent.dtype) + 1
        del parent

        token_dtype = np.uint16 if node_token.max() < 2**16 else np.int32
        index_dtype = np.int32 if num_nodes < 2**31 else np.int64
        by_rep = np.lexsort((others, reps))
        return cls(first_child.astype(index_dtype), node_token.astype(token_dtype), terminal.astype(index_dtype), eos_token_id, reps[by_rep], others[by_rep])

    # ------------------------------------------------------------------ queries
    @property
    def num_nodes(self) -> int:
        return len(self.terminal_name)

    def allowed(self, node: int) -> np.ndarray:
        """Token ids that may follow ``node`` (empty only for a completed name)."""
        return self.node_token[self.first_child[node] : self.first_child[node + 1]]

    def step(self, node: int, token: int) -> int:
        """The child of ``node`` by ``token``, or -1 if ``token`` leaves the trie."""
        hi = self._first_child[node + 1]
        pos = bisect_left(self._node_token, token, self._first_child[node], hi)
        return pos if pos < hi and self._node_token[pos] == token else -1

    def walk(self, tokens: Sequence[int], node: int = 0) -> int:
        """The node reached from ``node`` by ``tokens`` (-1 if the path leaves the trie)."""
        first_child, node_token = self._first_child, self._node_token  # step() inlined: this is the hot loop
        for t in tokens:
            hi = first_child[node + 1]
            node = bisect_left(node_token, t, first_child[node], hi)
            if node >= hi or node_token[node] != t:
                return -1
        return node

    @property
    def num_collisions(self) -> int:
        """Names that share their whole token path with an earlier name."""
        return len(self.alias_name)

    def names_at(self, name: int) -> list[int]:
        """``name`` (as :meth:`name_of` returns it) and every name whose tokens collide with it."""
        lo, hi = np.searchsorted(self.alias_rep, [name, name + 1])
        return [name, *self.alias_name[lo:hi].tolist()]

    def name_of(self, tokens: Sequence[int]) -> int:
        """Index of the name whose full sequence (ending in EOS) is ``tokens``, else -1."""
        node = self.walk(tokens)
        return int(self.terminal_name[node]) if node >= 0 else -1

    @property
    def nbytes(self) -> int:
        return sum(a.nbytes for a in (self.first_child, self.node_token, self.terminal_name))

    # ------------------------------------------------------------------ save / load
    def save(self, path: str | Path) -> None:
        """Write ``.npz`` atomically (plain arrays, no pickle): a kill never leaves half a trie."""
        with atomic_open(path, "wb") as f:
            np.savez(
                f,
                format_version=np.int64(_FORMAT_VERSION),
                eos_token_id=np.int64(self.eos_token_id),
                first_child=self.first_child,
                node_token=self.node_token,
                terminal_name=self.terminal_name,
                alias_rep=self.alias_rep,
                alias_name=self.alias_name,
            )

    @classmethod
    def load(cls, path: str | Path) -> NameTrie:
        """Read what :meth:`save` wrote; another or a damaged file is an input error, not a traceback."""
        try:
            with np.load(path, allow_pickle=False) as z:
                missing = [a for a in _ARRAYS if a not in z.files]
                if missing:
                    raise InputFormatError(path, None, f"not an angel-trl trie (no {', '.join(missing)})")
                version = int(z["format_version"])
                if version != _FORMAT_VERSION:
                    raise InputFormatError(path, None, f"trie format version {version}, expected {_FORMAT_VERSION}")
                aliases = (z["alias_rep"], z["alias_name"]) if "alias_rep" in z.files and "alias_name" in z.files else (None, None)
                trie = cls(z["first_child"], z["node_token"], z["terminal_name"], int(z["eos_token_id"]), *aliases)
        except InputFormatError:
            raise
        except (zipfile.BadZipFile, EOFError, TypeError, ValueError) as e:
            # A truncated or foreign file: np.load fails with one of these (TypeError: a bare .npy array).
            raise InputFormatError(path, None, f"not a readable angel-trl trie ({type(e).__name__}: {e})") from None
        problem = trie._structure_problem()
        if problem:
            raise InputFormatError(path, None, f"a damaged trie: {problem}")
        return trie

    def _structure_problem(self) -> str | None:
        """What makes the arrays no trie that walks safely (an IndexError or a wrong name at link
        time), or None: vectorised checks, one pass over each array."""
        arrays = {"first_child": self.first_child, "node_token": self.node_token, "terminal_name": self.terminal_name, "alias_rep": self.alias_rep, "alias_name": self.alias_name}
        for name, a in arrays.items():
            if a.ndim != 1 or a.dtype.kind not in "iu":
                return f"{name} is a {a.dtype} array of shape {a.shape}, not a 1-d integer array"
        n, fc = self.num_nodes, self.first_child
        if n == 0 or len(self.node_token) != n or len(fc) != n + 1:
            return f"its arrays disagree on the number of nodes ({n} terminal_name, {len(self.node_token)} node_token, {len(fc)} first_child)"
        # Node 0 is the root and its children come first; offsets never decrease and end at the last node.
        if fc[0] != 1 or fc[-1] != n or np.any(fc[1:] < fc[:-1]):
            return "first_child is not an increasing list of child offsets from 1 to the number of nodes"
        if self.terminal_name.min() < -1 or self.eos_token_id < 0:
            return "a negative name index or EOS token id"
        if len(self.alias_rep) != len(self.alias_name) or (len(self.alias_rep) and (min(self.alias_rep.min(), self.alias_name.min()) < 0 or np.any(self.alias_rep[1:] < self.alias_rep[:-1]))):
            return "alias_rep and alias_name are not two lists of name indices of one length, alias_rep sorted"
        return None


def _sorted_names(sequences: Sequence[Sequence[int]], eos_token_id: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Check every name, then ``(order, lengths, flat)``: the name indices in lexicographic order,
    their lengths in that order and their tokens laid end to end in that order."""
    n = len(sequences)
    if n == 0:
        raise ValueError("cannot build a trie over zero names")
    seqs = [s if type(s) is list else list(s) for s in sequences]  # one type, so lists compare lexicographically
    for i, s in enumerate(seqs):
        if not s or s[-1] != eos_token_id or eos_token_id in s[:-1]:
            raise ValueError(f"name {i} must contain EOS ({eos_token_id}) exactly once, at the end")
    order = np.array(sorted(range(n), key=seqs.__getitem__), dtype=np.int64)  # stable: duplicates keep index order
    lengths = np.fromiter((len(seqs[i]) for i in order), dtype=np.int64, count=n)
    try:
        flat = np.fromiter((t for i in order for t in seqs[i]), dtype=np.int32, count=int(lengths.sum()))
    except OverflowError:
        raise ValueError("token ids must be below 2**31") from None
    return order, lengths, flat


def _nodes_by_column(order: np.ndarray, lengths: np.ndarray, flat: np.ndarray) -> tuple[np.ndarray, ...]:
    """``(node_token, parent, terminal, alias_rep, alias_name)`` of every node, breadth-first, made
    column by column from the sorted names (see :meth:`NameTrie.build`)."""
    n, total = len(order), len(flat)
    starts = np.cumsum(lengths) - lengths
    idx_t = np.int32 if total < 2**31 else np.int64
    node = np.zeros(n, dtype=idx_t)  # each name's node at the current column (the root before column 0)
    alive = np.ones(n, dtype=bool)  # the name equals the one above it so far
    tokens, parents = [np.zeros(1, dtype=np.int32)], [np.zeros(1, dtype=idx_t)]  # the root
    terminal = [np.full(1, -1, dtype=idx_t)]
    alias_reps, alias_names = [], []
    next_id = 1
    for j in range(int(lengths.max())):
        rows = np.flatnonzero(lengths > j)  # the names long enough, in sorted order
        tok = flat[starts[rows] + j]
        same = np.zeros(len(rows), dtype=bool)  # the name above is long enough, equal so far, and has this token too
        same[1:] = (rows[1:] - 1 == rows[:-1]) & (tok[1:] == tok[:-1])
        same &= alive[rows]
        alive[rows] = same
        new = ~same  # the first row of a column is always new: the name above it is shorter
        parents.append(node[rows][new])
        tokens.append(tok[new])
        first_id, next_id = next_id, next_id + len(tokens[-1])
        node[rows] = first_id + np.cumsum(new, dtype=idx_t) - 1  # the last new node at or above each row
        ending = rows[lengths[rows] == j + 1]
        column_terminal, reps, names = _column_terminals(order, ending, node, first_id, next_id - first_id)
        terminal.append(column_terminal)
        alias_reps.append(reps)
        alias_names.append(names)
    return np.concatenate(tokens), np.concatenate(parents), np.concatenate(terminal), np.concatenate(alias_reps), np.concatenate(alias_names)


def _column_terminals(order: np.ndarray, ending: np.ndarray, node: np.ndarray, first_id: int, num_new: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``terminal`` of one column's ``num_new`` new nodes, and the ``(alias_rep, alias_name)`` of
    the names ending in it (sorted rows ``ending``) that collide with an earlier one."""
    # Each name ends in its own EOS node (``terminal`` holds -1 for inner nodes); duplicate names
    # share one, which keeps the lowest name index: the first of them in stable sorted order.
    column_terminal = np.full(num_new, -1, dtype=node.dtype)
    reps = names = order[:0]
    if len(ending):
        first = np.concatenate([[True], node[ending][1:] != node[ending][:-1]])
        rep_of = order[ending[first]][np.cumsum(first) - 1]  # the first name of each row's node
        reps, names = rep_of[~first], order[ending[~first]]
        ending = ending[first]
    column_terminal[node[ending] - first_id] = order[ending]
    return column_terminal, reps, names
