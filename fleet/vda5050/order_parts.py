"""Order nodes and edges made from the facility map (VDA 5050 sec. 6.6): a node with its position
in the vehicle's mapId, the deviation it allows and the heading the map requires there, an edge
with its lane's speed and length."""

from __future__ import annotations

from fleet.vda5050.messages import Action, Edge, Node, NodePosition
from maps import FacilityMap

ON_NODE_M = 0.5  # a vehicle this near a node stands on it (the allowedDeviationXY of our nodes)


def order_id(vehicle_id: str, prefix: str, count: int) -> str:
    """The orderId of a vehicle's `count`-th order of this controller run (`prefix`)."""
    return f"{vehicle_id}-{prefix}{count:06d}"


def node_action_id(order: str, action_type: str) -> str:
    return f"{order}-{action_type}"


def instant_action_id(vehicle_id: str, prefix: str, count: int) -> str:
    return f"{vehicle_id}-ia-{prefix}{count}"


def map_node(
    fmap: FacilityMap,
    map_id: str,
    node_id: str,
    seq: int,
    released: bool,
    actions: list[Action] | None = None,
    deviation: float | None = None,
) -> Node:
    """The order node, carrying the heading the map requires there, if any. Its position allows
    the map node's own deviation (else `ON_NODE_M`), widened to `deviation` for a vehicle that
    stands that far off it (the first node of an order started off a node)."""
    n = fmap.node_by_id[node_id]
    allowed = n.deviation_xy if n.deviation_xy is not None else ON_NODE_M
    if deviation is not None:
        allowed = max(allowed, deviation)
    position = NodePosition(
        x=n.x,
        y=n.y,
        map_id=map_id,
        theta=n.theta,
        allowed_deviation_xy=round(allowed, 3),
        allowed_deviation_theta=n.deviation_theta,
    )
    return Node(node_id=node_id, sequence_id=seq, released=released, actions=actions or [], node_position=position)


def map_edge(fmap: FacilityMap, a: str, b: str, seq: int, released: bool) -> Edge:
    lane = fmap.lane_between.get((a, b))
    return Edge(
        edge_id=lane.id if lane else f"{a}-{b}",
        sequence_id=seq,
        released=released,
        start_node_id=a,
        end_node_id=b,
        actions=[],
        max_speed=lane.max_speed if lane else None,
        length=lane.length if lane else None,
    )
