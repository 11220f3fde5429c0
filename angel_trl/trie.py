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

        Names are sorted lexicographically and laid end to end in one flat array; a node is created
        at each position past the longest common prefix with the previous name, and a shared
        position takes the node of the same position in the name above. Nodes are then renumbered
        breadth-first. Every temporary is one entry per token: no names x longest-name matrix, whose
        padding one long IUPAC name would blow up for every row.
        """
        n = len(sequences)
        if n == 0:
            raise ValueError("cannot build a trie over zero names")
        seqs = [s if type(s) is list else list(s) for s in sequences]  # one type, so lists compare lexicographically
        for i, s in enumerate(seqs):
            if not s or s[-1] != eos_token_id or eos_token_id in s[:-1]:
                raise ValueError(f"name {i} must contain EOS ({eos_token_id}) exactly once, at the end")
        order = np.array(sorted(range(n), key=seqs.__getitem__), dtype=np.int64)
        lengths = np.fromiter((len(seqs[i]) for i in order), dtype=np.int64, count=n)
        total = int(lengths.sum())
        idx_t = np.int32 if total < 2**31 else np.int64  # per-token temporaries dominate memory: 32-bit whenever they fit
        flat = np.fromiter((t for i in order for t in seqs[i]), dtype=np.int64, count=total)
        if flat.max() >= 2**31:
            raise ValueError("token ids must be below 2**31")
        flat = flat.astype(np.int32)
        del seqs

        starts = np.cumsum(lengths) - lengths
        row = np.repeat(np.arange(n, dtype=idx_t), lengths)
        col = (np.arange(total, dtype=idx_t) - np.repeat(starts.astype(idx_t), lengths)).astype(idx_t)
        # The same position in the previous name, where that name is long enough (else -1).
        above = np.concatenate([[0], starts[:-1]]).astype(idx_t)[row]
        above += col
        above[col >= np.concatenate([[0], lengths[:-1]]).astype(idx_t)[row]] = -1
        same = (above >= 0) & (flat == flat[np.maximum(above, 0)])
        # Longest common prefix with the previous name = the column of its first mismatch.
        lcp = lengths.astype(idx_t)  # no mismatch: a duplicate of the name above
        mismatch = np.flatnonzero(~same)
        first = np.unique(row[mismatch], return_index=True)
        lcp[first[0]] = col[mismatch[first[1]]]
        new = col >= lcp[row]
        del same, mismatch, first, lcp, row, above
        num_nodes = int(new.sum()) + 1
        node_of = np.zeros(total, dtype=idx_t)
        node_of[new] = np.arange(1, num_nodes, dtype=idx_t)  # provisional ids, in sorted-name order
        # A shared position takes the node of the nearest new position above it in its column: in
        # column-major order the first entry of each column is new (the name above it is shorter,
        # because sorted names sharing a prefix are contiguous), so a running maximum of the last new
        # index never crosses into another column.
        by_col = np.argsort(col, kind="stable").astype(idx_t)
        last_new = np.maximum.accumulate(np.where(new[by_col], np.arange(total, dtype=idx_t), idx_t(0)))
        node_of[by_col] = node_of[by_col[last_new]]
        del by_col, last_new

        positions = np.flatnonzero(new)
        ids = node_of[positions]
        token = np.zeros(num_nodes, dtype=np.int32)
        parent = np.zeros(num_nodes, dtype=idx_t)
        depth = np.zeros(num_nodes, dtype=idx_t)
        token[ids] = flat[positions]
        parent[ids] = np.where(col[positions] > 0, node_of[np.maximum(positions - 1, 0)], 0)  # the previous token of the same name
        depth[ids] = col[positions] + 1
        last = node_of[starts + lengths - 1]  # provisional id of each sorted name's EOS node
        del flat, col, new, node_of, positions, ids

        # Breadth-first renumbering, level by level: siblings sorted by token become contiguous.
        new_id = np.zeros(num_nodes, dtype=idx_t)
        by_depth = np.argsort(depth, kind="stable")
        level_ends = np.searchsorted(depth[by_depth], np.arange(int(depth.max()) + 1), side="right")
        for lo, hi in zip(level_ends[:-1], level_ends[1:]):  # level_ends[0] = 1: the root, depth 0, keeps id 0
            level = by_depth[lo:hi]
            level = level[np.lexsort((token[level], new_id[parent[level]]))]
            new_id[level] = np.arange(lo, hi, dtype=idx_t)
        del by_depth, depth
        node_token = np.zeros(num_nodes, dtype=np.int32)
        node_token[new_id] = token
        new_parent = np.zeros(num_nodes, dtype=idx_t)
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
