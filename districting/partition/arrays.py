"""A graph as arrays: its adjacency matrix from an edge list, and the cut of a labelling."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp


def adjacency_from_edges(n: int, edges: np.ndarray) -> sp.csr_matrix:
    """Symmetric CSR adjacency of ``n`` nodes from one row ``(u, v)`` per undirected edge."""
    edges = np.asarray(edges, dtype=np.int64).reshape(-1, 2)
    u, v = edges[:, 0], edges[:, 1]
    data = np.ones(2 * len(u), dtype=np.int8)
    return sp.csr_matrix((data, (np.r_[u, v], np.r_[v, u])), shape=(n, n))


def cut_cost(edges: np.ndarray, labels: np.ndarray, cost: np.ndarray) -> float:
    """Summed ``cost`` of the edges (one row ``(u, v)`` each) whose ends lie in different parts."""
    return float(cost[labels[edges[:, 0]] != labels[edges[:, 1]]].sum())


def cut_edges(adj: sp.csr_matrix, labels: np.ndarray) -> int:
    """Number of undirected edges whose ends lie in different parts."""
    coo = sp.triu(adj, k=1).tocoo()
    return int(np.count_nonzero(labels[coo.row] != labels[coo.col]))
