"""Small graph helpers over noded line networks: union-find and Dijkstra.

The road network, the sewer trees and the utility routes all need "which
segments touch" and "shortest way along the roads"; networkx is not a
dependency, and these few functions are all the sample needs.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
import shapely
from shapely.geometry import LineString


class UnionFind:
    """Disjoint sets over ``0..n-1`` with path halving."""

    def __init__(self, n: int) -> None:
        self.parent = list(range(n))

    def find(self, i: int) -> int:
        """Return the representative of ``i``'s set."""
        parent = self.parent
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    def union(self, a: int, b: int) -> None:
        """Merge the sets of ``a`` and ``b``."""
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)


@dataclass
class LineGraph:
    """Nodes at the shared endpoints of noded lines; one edge per line.

    Attributes
    ----------
    nodes
        ``(n, 2)`` node coordinates.
    edges
        ``(m, 2)`` node indices of each line's start and end.
    lengths
        Length of each line.
    adjacency
        For each node, the ``(neighbour, edge)`` pairs.
    """

    nodes: np.ndarray
    edges: np.ndarray
    lengths: np.ndarray
    adjacency: list[list[tuple[int, int]]] = field(default_factory=list)

    @classmethod
    def from_lines(cls, lines: Sequence[LineString]) -> LineGraph:
        """Build the graph; endpoints that are exactly equal become one node."""
        index: dict[tuple[float, float], int] = {}
        edges = np.empty((len(lines), 2), dtype=np.int64)
        for i, line in enumerate(lines):
            coords = shapely.get_coordinates(line)
            for j, xy in enumerate((coords[0], coords[-1])):
                key = (float(xy[0]), float(xy[1]))
                edges[i, j] = index.setdefault(key, len(index))
        nodes = np.array(list(index), dtype=np.float64).reshape(-1, 2)
        lengths = shapely.length(np.asarray(lines, dtype=object)).astype(np.float64)
        graph = cls(nodes, edges, lengths)
        graph.adjacency = [[] for _ in range(len(nodes))]
        for e, (a, b) in enumerate(edges):
            graph.adjacency[a].append((int(b), e))
            graph.adjacency[b].append((int(a), e))
        return graph

    def components(self) -> list[int]:
        """Component label (smallest node index) of every node."""
        uf = UnionFind(len(self.nodes))
        for a, b in self.edges:
            uf.union(int(a), int(b))
        return [uf.find(i) for i in range(len(self.nodes))]

    def nearest_node(self, x: float, y: float, allowed: np.ndarray | None = None) -> int:
        """Index of the node closest to ``(x, y)``, optionally among ``allowed``."""
        d2 = (self.nodes[:, 0] - x) ** 2 + (self.nodes[:, 1] - y) ** 2
        if allowed is not None:
            d2 = np.where(allowed, d2, np.inf)
        return int(np.argmin(d2))

    def dijkstra(
        self,
        sources: Iterable[int],
        edge_ok: np.ndarray | None = None,
        heights: np.ndarray | None = None,
        climb_penalty: float = 0.0,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Shortest paths from the nearest of ``sources`` to every node.

        Parameters
        ----------
        sources
            Start nodes (distance 0).
        edge_ok
            Optional boolean mask of edges that may be used.
        heights, climb_penalty
            With node ``heights``, stepping away from the sources onto a
            lower node costs ``climb_penalty`` per metre of drop: used for
            gravity sewers, whose flow runs back towards the sources.

        Returns
        -------
        dist, parent_node, parent_edge
            Distance to each node (``inf`` if unreachable), the previous node
            and the edge used to reach it (-1 for sources and unreachable).
        """
        n = len(self.nodes)
        dist = np.full(n, np.inf)
        parent = np.full(n, -1, dtype=np.int64)
        via = np.full(n, -1, dtype=np.int64)
        heap: list[tuple[float, int]] = []
        for s in sources:
            dist[s] = 0.0
            heap.append((0.0, int(s)))
        heapq.heapify(heap)
        while heap:
            d, a = heapq.heappop(heap)
            if d > dist[a]:
                continue
            for b, e in self.adjacency[a]:
                if edge_ok is not None and not edge_ok[e]:
                    continue
                nd = d + self.lengths[e]
                if heights is not None:
                    nd += climb_penalty * max(0.0, float(heights[a] - heights[b]))
                if nd < dist[b]:
                    dist[b], parent[b], via[b] = nd, a, e
                    heapq.heappush(heap, (nd, b))
        return dist, parent, via

    def path_edges(
        self, parent_edge: np.ndarray, parent_node: np.ndarray, target: int
    ) -> list[int]:
        """Edges on the way from ``target`` back to its source, in that order."""
        out: list[int] = []
        node = target
        while parent_edge[node] >= 0:
            out.append(int(parent_edge[node]))
            node = int(parent_node[node])
        return out
