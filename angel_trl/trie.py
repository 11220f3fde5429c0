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

from .errors import InputFormatError
from .io_utils import atomic_open

_FORMAT_VERSION = 2
_ARRAYS = ("format_version", "eos_token_id", "first_child", "node_token", "terminal_name")


class NameTrie:
    """Prefix trie over name token sequences; every sequence must end with the EOS token."""

    def __init__(self, first_child: np.ndarray, node_token: np.ndarray, terminal_name: np.ndarray, eos_token_id: int):
        self.first_child = first_child
        self.node_token = node_token
        self.terminal_name = terminal_name
        self.eos_token_id = int(eos_token_id)
        # Walks index the arrays one element at a time: through memoryviews and ``bisect`` each step
        # costs C-level int reads instead of numpy scalar boxing and a sliced searchsorted (~5x faster).
        self._first_child = memoryview(np.ascontiguousarray(first_child))
        self._node_token = memoryview(np.ascontiguousarray(node_token))

    # ------------------------------------------------------------------ build
    @classmethod
    def build(cls, sequences: Sequence[Sequence[int]], eos_token_id: int) -> NameTrie:
        """Build from one token sequence per name (name ``i`` = ``sequences[i]``, ending in EOS).

        Vectorised: sequences are padded into a matrix, sorted lexicographically, and a node is
        created at each position past the longest common prefix with the previous row; nodes are
        then renumbered breadth-first.
        """
        n = len(sequences)
        if n == 0:
            raise ValueError("cannot build a trie over zero names")
        lengths = np.fromiter((len(s) for s in sequences), dtype=np.int64, count=n)
        if lengths.min() < 1:
            raise ValueError("every name needs at least its EOS token")
        for i, s in enumerate(sequences):
            if s[-1] != eos_token_id or eos_token_id in s[:-1]:
                raise ValueError(f"name {i} must contain EOS ({eos_token_id}) exactly once, at the end")
        width = int(lengths.max())
        total = int(lengths.sum())
        # The n x width matrices dominate peak memory: keep them 32-bit whenever ids fit.
        idx_t = np.int32 if total < 2**31 else np.int64
        flat = np.fromiter((t for s in sequences for t in s), dtype=np.int64, count=total)
        if flat.max() >= 2**31:
            raise ValueError("token ids must be below 2**31")
        mat = np.full((n, width), -1, dtype=np.int32)
        rows = np.repeat(np.arange(n), lengths)
        cols = np.arange(len(flat)) - np.repeat(np.cumsum(lengths) - lengths, lengths)
        mat[rows, cols] = flat
        del flat, rows, cols

        order = np.lexsort(mat.T[::-1])  # lexicographic row order; -1 padding sorts first
        mat = mat[order]
        valid = mat >= 0
        same_as_prev = np.zeros_like(valid)
        same_as_prev[1:] = mat[1:] == mat[:-1]
        # A position shares the previous row's node iff all positions up to it are equal.
        new = valid & ~np.logical_and.accumulate(same_as_prev, axis=1)
        del same_as_prev
        num_nodes = int(new.sum()) + 1
        node_of = np.full(mat.shape, -1, dtype=idx_t)
        node_of[new] = np.arange(1, num_nodes, dtype=idx_t)  # provisional ids, row-major
        # Shared positions take the node of the row above: forward-fill down each column.
        src_row = np.maximum.accumulate(np.where(new | ~valid, np.arange(n, dtype=idx_t)[:, None], idx_t(0)), axis=0)
        node_of = np.where(valid, np.take_along_axis(node_of, src_row, axis=0), -1)
        del src_row

        r, c = np.nonzero(new)
        ids = node_of[r, c]
        token = np.zeros(num_nodes, dtype=np.int64)
        parent = np.zeros(num_nodes, dtype=np.int64)
        depth = np.zeros(num_nodes, dtype=np.int64)
        token[ids] = mat[r, c]
        parent[ids] = np.where(c > 0, node_of[r, np.maximum(c - 1, 0)], 0)
        depth[ids] = c + 1
        last = node_of[np.arange(n), lengths[order] - 1]  # provisional id of each name's EOS node
        del mat, node_of, valid, new, r, c, ids

        # Breadth-first renumbering, level by level: siblings sorted by token become contiguous.
        new_id = np.zeros(num_nodes, dtype=np.int64)
        next_id = 1
        for d in range(1, width + 1):
            level = np.flatnonzero(depth == d)
            level = level[np.lexsort((token[level], new_id[parent[level]]))]
            new_id[level] = np.arange(next_id, next_id + len(level))
            next_id += len(level)
        node_token = np.zeros(num_nodes, dtype=np.int64)
        node_token[new_id] = token
        new_parent = np.zeros(num_nodes, dtype=np.int64)
        new_parent[new_id] = new_id[parent]
        first_child = np.searchsorted(new_parent[1:], np.arange(num_nodes + 1)) + 1

        terminal = np.full(num_nodes, -1, dtype=np.int64)
        # Duplicate sequences (two names with the same ids) keep the lowest name index.
        terminal_ids = new_id[last]
        by_node = np.lexsort((order, terminal_ids))
        first_of = np.ones(n, dtype=bool)
        first_of[1:] = terminal_ids[by_node][1:] != terminal_ids[by_node][:-1]
        terminal[terminal_ids[by_node][first_of]] = order[by_node][first_of]

        token_dtype = np.uint16 if node_token.max() < 2**16 else np.int32
        index_dtype = np.int32 if num_nodes < 2**31 else np.int64
        return cls(first_child.astype(index_dtype), node_token.astype(token_dtype), terminal.astype(index_dtype), eos_token_id)

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
                return cls(z["first_child"], z["node_token"], z["terminal_name"], int(z["eos_token_id"]))
        except InputFormatError:
            raise
        except (zipfile.BadZipFile, EOFError, TypeError, ValueError) as e:
            # A truncated or foreign file: np.load fails with one of these (TypeError: a bare .npy array).
            raise InputFormatError(path, None, f"not a readable angel-trl trie ({type(e).__name__}: {e})") from None
