"""A random cut forest (Guha et al., ICML 2016), built and scored with NumPy.

Building: each tree takes `num_samples_per_tree` training points drawn without replacement and splits them
recursively with random cuts: a dimension chosen with probability proportional to its range in the node's
bounding box, and a value drawn uniformly within that range, until every leaf holds one distinct point (equal
points share a leaf, whose mass counts them).

Scoring follows the anomaly score of AWS's open-source random-cut-forest library, an estimate of how much the
point would displace the tree if inserted: at the leaf the point reaches, 1/(depth + 1) if the leaf holds a
different point, or (1 - mass/(2 * tree mass)) / (depth + log2(mass + 1)) if it holds the same point; then at
each node on the way back to the root, with p the probability that a random cut of the node's bounding box
grown to include the point separates the point (the growth of the box's summed ranges over the grown sum),
score = p / (depth + 1) + (1 - p) * score. The tree's score is multiplied by log2(tree mass + 1) and the forest
averages its trees. Normal points score about 1, isolated points several times more; AWS's RCF, with streaming
trees and its own sampling, gives scores of a similar scale but not the same numbers.

The artifact is `model.npz` (every tree's nodes: cut dimension, cut value, children, mass, and the leaves'
points; read with allow_pickle=False) beside `model.json`. Bounding boxes are rebuilt from the leaves on load.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np

from sagelab.algorithms.first_party.artifact import read_artifact, write_artifact

FORMAT = "sagelab-random-cut-forest/1"
LEAF = -1
#: Feature values gathered per scoring step (bounding boxes of the nodes being visited): about 8 MB.
_CHUNK_CELLS = 1_000_000


@dataclasses.dataclass
class Forest:
    """All trees' nodes in flat arrays; a tree's nodes are contiguous, parents before children."""

    cut_dim: np.ndarray  # (nodes,) int32, LEAF for leaves
    cut_value: np.ndarray  # (nodes,) float64
    left: np.ndarray  # (nodes,) int32 (absolute node index; -1 for leaves)
    right: np.ndarray  # (nodes,) int32
    mass: np.ndarray  # (nodes,) int32: points under the node
    leaf_point: np.ndarray  # (nodes,) int32: row of `points` for leaves, -1 for internal nodes
    points: np.ndarray  # (leaves, d) float64
    roots: np.ndarray  # (trees,) int32
    info: dict[str, Any] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        self._boxes()

    @property
    def feature_dim(self) -> int:
        return int(self.points.shape[1])

    def _boxes(self) -> None:
        """Bounding boxes of every node, children first (they follow their parents in the arrays)."""
        nodes, d = len(self.cut_dim), self.feature_dim
        low = np.empty((nodes, d))
        high = np.empty((nodes, d))
        leaves = self.cut_dim == LEAF
        low[leaves] = high[leaves] = self.points[self.leaf_point[leaves]]
        for node in np.flatnonzero(~leaves)[::-1]:
            a, b = self.left[node], self.right[node]
            low[node] = np.minimum(low[a], low[b])
            high[node] = np.maximum(high[a], high[b])
        self.low, self.high = low, high

    # -- building -------------------------------------------------------------------------------------------

    @classmethod
    def build(cls, x: np.ndarray, *, num_trees: int, samples_per_tree: int, seed: int) -> Forest:
        rng = np.random.default_rng(seed)
        columns: dict[str, list] = {k: [] for k in ("cut_dim", "cut_value", "left", "right", "mass", "leaf_point")}
        points: list[np.ndarray] = []
        roots = []
        size = min(samples_per_tree, len(x))
        for _ in range(num_trees):
            sample = x[rng.choice(len(x), size=size, replace=False)]
            roots.append(len(columns["mass"]))
            _grow(sample, rng, columns, points)
        return cls(np.array(columns["cut_dim"], dtype=np.int32), np.array(columns["cut_value"], dtype=np.float64),
                   np.array(columns["left"], dtype=np.int32), np.array(columns["right"], dtype=np.int32),
                   np.array(columns["mass"], dtype=np.int32), np.array(columns["leaf_point"], dtype=np.int32),
                   np.vstack(points), np.array(roots, dtype=np.int32))

    # -- scoring --------------------------------------------------------------------------------------------

    def scores(self, x: np.ndarray) -> np.ndarray:
        """The forest's score of each row of `x`: every (point, tree) pair walks its tree at once, in chunks
        small enough that the bounding boxes gathered per step stay within a few megabytes."""
        x = np.asarray(x, dtype=np.float64)
        trees = len(self.roots)
        per_chunk = max(1, max(trees, _CHUNK_CELLS // max(self.feature_dim, 1)) // trees)
        out = np.empty(len(x))
        for start in range(0, len(x), per_chunk):
            out[start:start + per_chunk] = self._chunk_scores(x[start:start + per_chunk])
        return out

    def _chunk_scores(self, x: np.ndarray) -> np.ndarray:
        n, trees = len(x), len(self.roots)
        owner = np.repeat(np.arange(n), trees)  # item -> its point
        node = np.tile(self.roots.astype(np.int64), n)  # item -> its node in its tree
        tree_mass = self.mass[node].astype(np.float64)
        path: list[np.ndarray] = []  # path[depth][item]: the node visited at that depth, -1 past the leaf
        active = np.arange(len(node))
        while active.size:
            step = np.full(len(node), -1, dtype=np.int64)
            step[active] = node[active]
            path.append(step)
            internal = active[self.cut_dim[node[active]] != LEAF]
            here = node[internal]
            go_left = x[owner[internal], self.cut_dim[here]] <= self.cut_value[here]
            node[internal] = np.where(go_left, self.left[here], self.right[here])
            active = internal
        score = np.zeros(len(node))
        for depth in range(len(path) - 1, -1, -1):
            items = np.flatnonzero(path[depth] >= 0)
            at = path[depth][items]
            leaf = self.cut_dim[at] == LEAF
            leaf_items, leaf_nodes = items[leaf], at[leaf]
            if leaf_items.size:
                mass = self.mass[leaf_nodes].astype(np.float64)
                same = np.all(x[owner[leaf_items]] == self.points[self.leaf_point[leaf_nodes]], axis=1)
                seen = (1.0 - mass / (2.0 * tree_mass[leaf_items])) / (depth + np.log2(mass + 1.0))
                score[leaf_items] = np.where(same, seen, 1.0 / (depth + 1.0))
            inner_items, inner_nodes = items[~leaf], at[~leaf]
            if inner_items.size:
                point = x[owner[inner_items]]
                low, high = self.low[inner_nodes], self.high[inner_nodes]
                growth = (np.maximum(low - point, 0.0) + np.maximum(point - high, 0.0)).sum(axis=1)
                span = (high - low).sum(axis=1) + growth
                p = np.divide(growth, span, out=np.zeros_like(growth), where=span > 0)
                score[inner_items] = p / (depth + 1.0) + (1.0 - p) * score[inner_items]
        return (score * np.log2(tree_mass + 1.0)).reshape(n, trees).mean(axis=1)

    # -- artifact -------------------------------------------------------------------------------------------

    def save(self, model_dir: Path) -> None:
        arrays = {"cut_dim": self.cut_dim, "cut_value": self.cut_value, "left": self.left,
                  "right": self.right, "mass": self.mass, "leaf_point": self.leaf_point, "points": self.points,
                  "roots": self.roots}
        write_artifact(model_dir, FORMAT, arrays,
                       {"feature_dim": self.feature_dim, "num_trees": int(len(self.roots)), **self.info})

    @classmethod
    def load(cls, model_dir: Path) -> Forest:
        meta, arrays = read_artifact(model_dir, FORMAT, "Random Cut Forest")
        info = {k: v for k, v in meta.items() if k not in ("feature_dim", "num_trees")}
        return cls(**arrays, info=info)


def _grow(points: np.ndarray, rng: np.random.Generator, columns: dict[str, list], leaves: list[np.ndarray]) -> None:
    """Append the tree over `points`, parents before children (an explicit stack: skewed data makes deep trees)."""
    stack: list[tuple[np.ndarray, int, str]] = [(points, -1, "")]
    while stack:
        block, parent, side = stack.pop()
        index = len(columns["mass"])
        for key in columns:
            columns[key].append(-1)
        columns["mass"][index] = len(block)
        if parent >= 0:
            columns[side][parent] = index
        low, high = block.min(axis=0), block.max(axis=0)
        span = high - low
        total = float(span.sum())
        if total <= 0.0:  # one distinct point (perhaps repeated)
            columns["cut_dim"][index] = LEAF
            columns["cut_value"][index] = 0.0
            columns["leaf_point"][index] = len(leaves)
            leaves.append(block[0])
            continue
        dim, goes_left = _cut(block, low, span, total, rng, columns["cut_value"], index)
        columns["cut_dim"][index] = dim
        stack.append((block[~goes_left], index, "right"))
        stack.append((block[goes_left], index, "left"))


def _cut(block: np.ndarray, low: np.ndarray, span: np.ndarray, total: float, rng: np.random.Generator,
         cut_values: list, index: int) -> tuple[int, np.ndarray]:
    """A random cut: the dimension with probability proportional to its span, the value uniform within it."""
    cumulative = np.cumsum(span)
    while True:
        dim = min(int(np.searchsorted(cumulative, rng.uniform(0.0, total), side="right")), len(span) - 1)
        if span[dim] <= 0.0:
            continue
        value = low[dim] + rng.uniform(0.0, 1.0) * span[dim]
        goes_left = block[:, dim] <= value
        if goes_left.any() and not goes_left.all():
            cut_values[index] = value
            return dim, goes_left


