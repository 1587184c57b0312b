"""Where a vehicle stands, read from its VDA 5050 state against the facility map: on a node
(its lastNodeId, if its position agrees; else the nearest node within reach), or off one, and
how far. The link asks this after a cancel, a lost order and whenever the vehicle holds nothing
of ours, so the controller places a vehicle only where it reports itself."""

from __future__ import annotations

import math

from fleet.vda5050.messages import State
from fleet.vda5050.order_parts import ON_NODE_M
from maps import FacilityMap, Node


def reach(node: Node) -> float:
    """How far from `node` a vehicle still stands on it (the map's deviation, else `ON_NODE_M`)."""
    return node.deviation_xy if node.deviation_xy is not None else ON_NODE_M


def off_last_node(fmap: FacilityMap, state: State) -> float:
    """Metres between the reported position and lastNodeId (0: no position or unknown node)."""
    pos, last = state.agv_position, fmap.node_by_id.get(state.last_node_id)
    if pos is None or last is None:
        return 0.0
    return math.hypot(pos.x - last.x, pos.y - last.y)


def node_at(fmap: FacilityMap, state: State) -> str | None:
    """The node the state shows the vehicle on: lastNodeId when its position (if it gives one)
    is within that node's reach, else the nearest node within its reach; None: off every node."""
    last = fmap.node_by_id.get(state.last_node_id)
    pos = state.agv_position
    if last is not None and (pos is None or off_last_node(fmap, state) <= reach(last)):
        return last.id
    if pos is None:
        return None
    nearest = min(fmap.nodes, key=lambda n: math.hypot(n.x - pos.x, n.y - pos.y))
    return nearest.id if math.hypot(nearest.x - pos.x, nearest.y - pos.y) <= reach(nearest) else None
