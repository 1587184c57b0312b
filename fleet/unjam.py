"""Getting stuck vehicles moving again: circular waits broken by routing one vehicle around or
aside, idle vehicles moved out of the way of waiting ones, vehicles off their plan planned again.

Functions of the `fleet.core.Controller` they are given (they work on its traffic manager,
graph and vehicles, and emit through it); kept apart because this is a policy of its own, run
once a second from the controller's tick.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING

from fleet.model import TaskPhase
from fleet.traffic import lane_resource, node_resource

if TYPE_CHECKING:
    from fleet.core import Controller


def check_deadlocks(core: Controller) -> None:
    """Find circular waits and break each by getting one of its vehicles moving; a cycle that
    cannot be broken raises an alarm once and is tried again at every check."""
    cycles = {frozenset(c) for c in core.traffic.wait_cycles(boxed_in(core))}
    unresolved: set[frozenset[str]] = set()
    for cycle in sorted(cycles, key=sorted):
        new = cycle not in core._known_cycles
        if new:
            core.stats.deadlocks += 1
        members = ", ".join(sorted(cycle))
        how = _break_cycle(core, cycle)
        if how is not None:
            core.stats.deadlocks_resolved += 1
            core._alarm("deadlock-resolved", f"circular wait between {members}: {how}", sorted(cycle)[0])
        else:
            unresolved.add(cycle)
            if new:
                core.stats.deadlocks_unresolved += 1
                core._alarm("deadlock", f"circular wait between {members} cannot be broken", sorted(cycle)[0])
    core._known_cycles = unresolved


def boxed_in(core: Controller) -> dict[str, set[str]]:
    """Idle vehicles that others wait for and that cannot make way because every exit from
    where they stand is held, each with the holders: a wait the traffic manager cannot see,
    since the idle vehicle has asked for nothing. Seen with 60 carts on the plant: a delivery
    waited for an idle cart on the station, whose only exit was held by a cart on its way to
    parking that waited, through two more, for the delivery: a cycle nobody detected."""
    boxed: dict[str, set[str]] = {}
    for vid in _waited_for(core):
        v = core.vehicles[vid]
        if v.task is not None or not core.traffic.at_goal(vid):
            continue
        here = core.traffic.released_end(vid)
        ahead = [_step_holder(core, here, nxt) for nxt, _ in core.graph.successors[here]]
        if ahead and all(h is not None and h != vid for h in ahead):
            boxed[vid] = {h for h in ahead if h is not None}
    return boxed


def _waited_for(core: Controller) -> list[str]:
    """Vehicles some stopped vehicle waits for, in id order."""
    return sorted({w.holder for w in core.traffic.stopped_waits().values()} & core.vehicles.keys())


def _step_holder(core: Controller, a: str, b: str) -> str | None:
    """Who holds the step a->b: its lane, else its end node."""
    return core.traffic.holder(lane_resource(a, b)) or core.traffic.holder(node_resource(b))


def _blocked_for(core: Controller, vehicle_id: str) -> Callable[[str, str], bool]:
    def blocked(a: str, b: str) -> bool:
        return not core.traffic.free_for(vehicle_id, a, b)

    return blocked


def _break_cycle(core: Controller, cycle: frozenset[str]) -> str | None:
    """A vehicle of the cycle waiting for its planned turn goes without it, if that gets it
    moving; else one vehicle is routed to its goal around what others hold, or else aside to
    the nearest free node off the routes of those waiting for it (and on to its goal from
    there). Tried vehicle by vehicle; a route counts only if the traffic manager releases
    its first step at once. Returns what was done, or None."""
    if core.fleet_paused:
        return None
    for vid in sorted(cycle):
        # Waiting for a turn that cannot come: the order it was given does not match where the
        # vehicles really are. It goes on without its plan (and gets a new one soon).
        reason = core.traffic.waiting.get(vid)
        if reason is not None and reason.turn:
            core.traffic.drop_turns(vid)
            core._release(vid)
            if core.traffic.remaining(vid)[0]:
                return f"{vid} goes ahead of its planned turn"
    for vid in sorted(cycle):
        v = core.vehicles[vid]
        if not v.available or v.paused or v.task is None or v.task.phase is not TaskPhase.TRAVEL:
            continue
        here, goal = core.traffic.released_end(vid), core.traffic.route_goal(vid)
        around: list[str] | None = None
        for path in core.graph.paths_from(here, _blocked_for(core, vid)):
            if path[-1] == goal:
                around = path
                break
        if around is not None and _try_route(core, vid, around):
            return f"{vid} detours via {around[1]}"
        for path in _aside_paths(core, vid):
            if _try_route(core, vid, path + core._path(vid, path[-1], goal)[1:]):
                return f"{vid} moves aside to {path[-1]}"
    return None


def _aside_paths(
    core: Controller, vehicle_id: str, limit: int = 3, avoid: frozenset[str] = frozenset()
) -> list[list[str]]:
    """Paths, nearest first, to free nodes that are off the routes of everyone waiting for
    the vehicle and off `avoid`, are not stations and not where another vehicle is heading,
    over steps the vehicle could claim now."""
    in_the_way = set(avoid) | _in_the_way_of(core, vehicle_id)
    in_the_way |= {core.traffic.route_goal(v) for v in core.vehicles if v != vehicle_id and core.vehicles[v].placed}
    here = core.traffic.released_end(vehicle_id)
    found: list[list[str]] = []
    for path in core.graph.paths_from(here, _blocked_for(core, vehicle_id)):
        end = path[-1]
        if (
            end != here
            and end not in in_the_way
            and end not in core._station_nodes
            and core.traffic.holder(node_resource(end)) is None
        ):
            found.append(path)
            if len(found) == limit:
                break
    return found


def _in_the_way_of(core: Controller, vehicle_id: str) -> set[str]:
    """The route nodes of every vehicle waiting for this one."""
    waiters = [w for w, reason in core.traffic.waiting.items() if reason.holder == vehicle_id]
    return {n for w in waiters for n in core.traffic.route_nodes(w)}


def _try_route(core: Controller, vehicle_id: str, route: list[str]) -> bool:
    """Give the vehicle `route` if the traffic manager releases its first step now; else
    restore the route it had."""
    planned = [core.traffic.released_end(vehicle_id), *core.traffic.remaining(vehicle_id)[1]]
    core.traffic.set_route(vehicle_id, route)
    core._release(vehicle_id)
    if core.traffic.remaining(vehicle_id)[0]:
        return True
    core.traffic.set_route(vehicle_id, planned)
    core._release(vehicle_id)
    return False


def clear_idle_blockers(core: Controller) -> None:
    """A vehicle without work that stands where another one must pass (often a station it
    has just served, when no parking spot is free) moves aside to a free node."""
    if core.fleet_paused:
        return
    for vid in _waited_for(core):
        _move_aside(core, vid, depth=3)


def _move_aside(core: Controller, vehicle_id: str, depth: int, avoid: frozenset[str] = frozenset()) -> bool:
    """Move an idle vehicle to a free node out of the way (and off `avoid`). One boxed in by
    other idle vehicles (nobody waits for them, as nobody has asked to pass) gets them moved
    first, off the same ways, up to `depth` deep: the holders of the nodes where its search
    for a free node was stopped, nearest first; it follows at the next check.
    Seen with 60 carts on the plant, 45 parking spots all taken: an idle cart on a station node,
    its exit held by another idle cart, and a delivery to that station waiting for ever; and an
    idle cart whose only free way led along the route of the cart waiting for it, to a third
    idle cart two nodes on."""
    v = core.vehicles[vehicle_id]
    if v.task is not None or not v.available or v.paused or not core.traffic.at_goal(vehicle_id):
        return False
    for path in _aside_paths(core, vehicle_id, avoid=avoid):
        if _try_route(core, vehicle_id, path):
            core.stats.moved_aside += 1
            return True
    if depth == 0:
        return False
    avoid = avoid | _in_the_way_of(core, vehicle_id)
    for other in _holders_around(core, vehicle_id):
        if other in core.vehicles and _move_aside(core, other, depth - 1, avoid):
            return True
    return False


def _holders_around(core: Controller, vehicle_id: str) -> list[str]:
    """Who holds the nodes and lanes where the vehicle's free way ends, nearest first."""
    found: dict[str, None] = {}

    def blocked(a: str, b: str) -> bool:
        if core.traffic.free_for(vehicle_id, a, b):
            return False
        holder = _step_holder(core, a, b)
        if holder is not None and holder != vehicle_id:
            found[holder] = None
        return True

    for _ in core.graph.paths_from(core.traffic.released_end(vehicle_id), blocked):
        pass
    return list(found)


def replan_off_plan(core: Controller) -> None:
    """Keep planned traffic planned: a vehicle that cannot move (paused, offline, in error)
    gives up its turns so nobody waits for it to come by; a vehicle driving without a plan
    (planning failed, a detour, back from a stop) is planned again; so is one that others have
    waited for, for their turn, longer than `replan_late_s` (it is late: slowed, or held up):
    planned anew, it lets those go first that can. At most every `replan_every_s` per vehicle."""
    if not core.config.planned_traffic or core.fleet_paused:
        return
    now, config = core.clock.now(), core.config
    since = core._turn_waits
    waits = {(vid, r.holder) for vid, r in core.traffic.stopped_waits().items() if r.turn}
    for key in [k for k in since if k not in waits]:
        del since[key]
    late = {holder for vid, holder in waits if now - since.setdefault((vid, holder), now) > config.replan_late_s}
    for vid, v in sorted(core.vehicles.items()):
        if not v.placed or core.traffic.at_goal(vid):
            continue
        if not core.can_move(v):
            core.traffic.drop_turns(vid)
            continue
        if v.stopping or now - core._planned_at.get(vid, -math.inf) < config.replan_every_s:
            continue
        if core.traffic.released_end(vid) == core.traffic.route_goal(vid):
            continue  # all of it released: nothing left to plan
        if vid in late or not core.traffic.planned(vid):
            core.stats.replans += 1
            core._reroute(vid)
