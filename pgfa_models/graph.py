"""NTU RGB+D 25-joint skeleton graph and the ST-GCN 'spatial' partition adjacency.

The spatial partition strategy (Yan et al., ST-GCN, AAAI 2018) splits the 1-hop
neighbourhood of every joint into three subsets by their hop distance to a centre
joint (NTU joint 20, spine shoulder, 0-based):

* ``A[0]`` root: the joint itself (self loop);
* ``A[1]`` entries ``[j, i]`` with ``dist(j, centre) > dist(i, centre)`` (plus any
  equal-distance non-self neighbours, which a tree does not have);
* ``A[2]`` entries ``[j, i]`` with ``dist(j, centre) < dist(i, centre)``.

This is the subset order and index convention of the public ST-GCN code
(``a_root``, ``a_close``, ``a_further``); the paper calls subsets 1/2 centripetal and
centrifugal. Each subset gets its own weights, so only consistency matters.

Every subset is column-normalised with the degree of the full 1-hop adjacency
(self loops included): ``A_k[j, i] = adj[j, i] / deg(i)``. Used as
``y[..., w] = sum_k sum_v x_k[..., v] * A[k, v, w]``.
"""
from __future__ import annotations

import numpy as np

from .layouts import NTU25_BONES

NUM_JOINTS = 25
CENTER_JOINT = 20  # spine shoulder, 0-based (NTU joint 21 1-based)

# The NTU-25 bones are defined once, in pgfa_models.layouts (0-based (child, parent) pairs);
# the graph's undirected edges are exactly those bones.
NTU25_EDGES: tuple[tuple[int, int], ...] = NTU25_BONES


def hop_distance(num_nodes: int, edges, max_hop: int = 1) -> np.ndarray:
    """Hop distance matrix of an undirected graph; ``inf`` beyond ``max_hop``."""
    adj = np.zeros((num_nodes, num_nodes), dtype=np.int64)
    for i, j in edges:
        adj[i, j] = adj[j, i] = 1
    dist = np.full((num_nodes, num_nodes), np.inf)
    reach = np.eye(num_nodes, dtype=np.int64)  # walks of length exactly d
    dist[reach > 0] = 0
    for d in range(1, max_hop + 1):
        reach = np.minimum(reach @ adj, 1)
        dist[(reach > 0) & np.isinf(dist)] = d
    return dist


def spatial_adjacency(num_nodes: int = NUM_JOINTS, edges=NTU25_EDGES,
                      center: int = CENTER_JOINT, max_hop: int = 1) -> np.ndarray:
    """ST-GCN 'spatial' partition adjacency, float32 ``(1 + 2*max_hop, V, V)``."""
    dist = hop_distance(num_nodes, edges, max_hop)
    adj = (dist <= max_hop).astype(np.float64)
    deg = adj.sum(axis=0)
    norm = adj / np.where(deg > 0, deg, 1.0)[None, :]  # column-normalised: A D^-1
    to_center = hop_distance(num_nodes, edges, max_hop=num_nodes)[:, center]
    subsets = []
    for hop in range(max_hop + 1):
        root = np.zeros_like(norm)
        close = np.zeros_like(norm)
        far = np.zeros_like(norm)
        mask = dist == hop  # [j, i]: j is a hop-neighbour of i
        jj, ii = np.nonzero(mask)
        for j, i in zip(jj, ii):
            if to_center[j] == to_center[i]:
                root[j, i] = norm[j, i]
            elif to_center[j] > to_center[i]:
                close[j, i] = norm[j, i]
            else:
                far[j, i] = norm[j, i]
        if hop == 0:
            subsets.append(root)
        else:
            subsets.append(root + close)
            subsets.append(far)
    return np.stack(subsets).astype(np.float32)


class Graph:
    """NTU-25 graph with the spatial partition adjacency ``A`` (3, 25, 25) float32."""

    def __init__(self, center: int = CENTER_JOINT, max_hop: int = 1):
        self.num_nodes = NUM_JOINTS
        self.edges = NTU25_EDGES
        self.center = center
        self.A = spatial_adjacency(NUM_JOINTS, NTU25_EDGES, center, max_hop)
