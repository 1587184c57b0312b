"""One step at a time for agents that turn on the spot: PIBT over short operations.

An agent faces east, south, west or north (0..3, clockwise) and each step drives one cell
straight ahead, turns a quarter either way, or waits (the League of Robot Runners 2024 model).
Plain PIBT, choosing one action per step, does poorly here: an agent asked to make room can
only drive on in the direction it faces, so jams form and grow. Planning a few steps ahead
fixes that: each step every agent picks an *operation*, a sequence of `DEPTH` actions ("turn,
then drive twice"), and only the first action is carried out; the next step plans again.

The choice is PIBT's, lifted from cells to operations (the idea of the operation-based PIBT
variants of the 2024 competition): agents in priority order take the best operation (the
lowest cost left to the goal after it; then through the fewest cells other agents stand on;
then the earliest progress) whose cells and moves meet no reserved ones. An operation that
passes the cell of an agent not yet planned (which would otherwise stand there) first asks that
agent to plan around it; if it cannot, the operation is dropped and the next one tried. Agents
that cannot be planned stand still; `failed` names those asked to make room that could not
(the caller may raise their priority: see `planners.lifelong`).

Why it is safe: an agent being planned, or one that failed, may fall back to standing where it
is, so no other operation may touch its cell while that can happen; everything else is in the
reservation table (cell per time, and moves, so no two agents trade places). An agent is
planned at most `_TRIES` times per step, so a step takes time linear in agents x operations.
Distances are exact over (cell, heading) states, one backward search per goal, cached; driving
against a row's or column's way costs more (`against_grain`).

The costs follow the traffic (`observe`, with `guidance`): each step's cells and drives feed a
moving average per cell (how often an agent stands there) and per cell and heading (how often
one drives in that way); every `REFRESH_STEPS` steps, driving into a cell costs more by
`DENSITY_WEIGHT` x its occupancy plus `CONTRAFLOW_WEIGHT` x how often agents drive it the other
way, and the distance cache starts again. Routes bend around jams and away from oncoming
flows, which PIBT alone (one step at a time, each agent its own shortest way) cannot do:
RANDOM-03 (400 agents, 800 steps), seeds 0-3: 922, 897, 820, 857 tasks without, 1224, 1229,
1230, 1166 with.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Sequence

import numpy as np
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import dijkstra

from planners.mapf import GridGraph

DEPTH = 3  # actions per operation
FORWARD, CLOCKWISE, COUNTER, WAIT = range(4)
_STEP = ((0, 1), (1, 0), (0, -1), (-1, 0))  # heading -> (row, col) change, as GridGraph.ahead
_MAX_CHAIN = 64  # agents asked to make room, one after the other, before a branch gives up
# Times an agent may be asked to make room in one step before it stands for that step. At 3,
# a cart in a dead end used them up on the first few operations of the one wanting in (all
# entering at once) before the one that gives it time to turn and leave: RANDOM-01 gridlocked
# (66 tasks in 400 steps; 316 with 10).
_TRIES = 10
# Traffic guidance. RANDOM-03, first 400 steps, seed 0 (tasks): without 475; occupancy alone at
# weight 1, 3, 6: 504, 509, 503; with 3 and the contraflow weight 10, 30, 60, 120: 529, 590,
# 581, 600; 800 steps, contraflow 30, 60, 120: 1120, 1083, 1224 (one run each: noisy).
DENSITY_WEIGHT = 3.0
CONTRAFLOW_WEIGHT = 120.0
TRAFFIC_MEMORY = 0.95  # per step: the averages reach back about 20 steps
REFRESH_STEPS = 40  # each refresh costs a backward search per goal in use again


def _turned(heading: int, action: int) -> int:
    """The heading after `action` (a drive or a wait keeps it)."""
    if action == CLOCKWISE:
        return (heading + 1) % 4
    if action == COUNTER:
        return (heading - 1) % 4
    return heading


def _operations() -> tuple[tuple[int, ...], ...]:
    """Every action sequence of `DEPTH`, one per distinct effect (cells visited and final
    heading, from a standard start), the one with the fewest turns: "turn clockwise, turn back"
    is waiting twice; of "turn, wait" and "wait, turn" the earlier turn is kept."""
    seen: dict[tuple[object, ...], tuple[int, ...]] = {}
    every = itertools.product((FORWARD, CLOCKWISE, COUNTER, WAIT), repeat=DEPTH)
    for actions in sorted(every, key=lambda acts: sum(a in (CLOCKWISE, COUNTER) for a in acts)):
        r = c = h = 0
        visited = []
        for act in actions:
            if act == FORWARD:
                r, c = r + _STEP[h][0], c + _STEP[h][1]
            h = _turned(h, act)
            visited.append((r, c))
        seen.setdefault((*visited, h), actions)
    return tuple(seen.values())


OPERATIONS = _operations()


class OperationPibt:
    """`step(cells, headings, order)`: the next cell and heading of every agent."""

    def __init__(
        self,
        graph: GridGraph,
        goals: Sequence[int],
        seed: int = 0,
        against_grain: float = 1.0,
        guidance: bool = True,
    ) -> None:
        self.graph = graph
        self.against_grain = against_grain
        self.guidance = guidance
        self.rng = random.Random(seed)
        self.n = len(graph.neighbours)
        self._rows: dict[int, list[float]] = {}
        self._reverse = self._reverse_transitions()
        coo = self._reverse.tocoo()
        self._edges = (coo.row, coo.col, coo.data.copy())
        self.occupancy = np.zeros(self.n)  # moving average: how often an agent stands on each cell
        self.flow = np.zeros((self.n, 4))  # moving average: how often one drives into it, per heading
        self._last_cells: list[int] | None = None
        self._observed = 0
        self.goals = list(goals)
        self._traces: dict[int, list[tuple[tuple[int, ...], tuple[int, ...]]]] = {}
        self.failed: set[int] = set()  # of the last step: asked to make room, could not
        self.held: set[int] = set()  # of the last step: planned, but worse than alone: others in the way

    # ---- distances over (cell, heading) states: state = 4 x cell + heading ----------------

    def _reverse_transitions(self) -> csr_matrix:
        """Edges from each state to the states that reach it in one action, with their costs: a
        turn 1, a drive 1, or 1 + `against_grain` against the way of its row or column (rows
        alternately east and west, columns south and north): soft one-way lanes that keep
        opposing flows apart in dense traffic."""
        src, dst, w = [], [], []
        for cell, ahead in enumerate(self.graph.ahead):
            r, c = (int(x) for x in self.graph.cells[cell])
            for h, nxt in enumerate(ahead):
                s = 4 * cell + h
                if nxt >= 0:
                    src.append(4 * nxt + h)
                    dst.append(s)
                    grain = (h == 0) == (r % 2 == 0) if h in (0, 2) else (h == 1) == (c % 2 == 0)
                    w.append(1.0 if grain else 1.0 + self.against_grain)
                for turned in ((h + 1) % 4, (h - 1) % 4):
                    src.append(4 * cell + turned)
                    dst.append(s)
                    w.append(1.0)
        size = 4 * self.n
        return csr_matrix((w, (src, dst)), shape=(size, size))

    def state_distances(self, goal: int) -> list[float]:
        """Cost from every state to standing on `goal` in any heading (inf when cut off)."""
        row = self._rows.get(goal)
        if row is None:
            goals = [4 * goal + h for h in range(4)]
            row = dijkstra(self._reverse, directed=True, indices=goals, min_only=True).tolist()
            self._rows[goal] = row
        return row

    def set_goal(self, agent: int, goal: int) -> None:
        self.goals[agent] = goal

    def observe(self, cells: Sequence[int], headings: Sequence[int]) -> None:
        """Feed one step's traffic to the moving averages; every `REFRESH_STEPS`, costs from them."""
        stand = np.zeros(self.n)
        stand[list(cells)] = 1.0
        drove = np.zeros((self.n, 4))
        if self._last_cells is not None and len(self._last_cells) == len(cells):
            for before, now, heading in zip(self._last_cells, cells, headings, strict=True):
                if before != now:
                    drove[now, heading] = 1.0
        self._last_cells = list(cells)
        self.occupancy = TRAFFIC_MEMORY * self.occupancy + (1 - TRAFFIC_MEMORY) * stand
        self.flow = TRAFFIC_MEMORY * self.flow + (1 - TRAFFIC_MEMORY) * drove
        self._observed += 1
        if self._observed % REFRESH_STEPS == 0:
            self._follow_traffic()

    def _follow_traffic(self) -> None:
        """Drives into a cell cost more by its occupancy and by the flow the other way through it."""
        to_state, from_state, cost = self._edges
        cell, heading = to_state // 4, to_state % 4
        drives = cell != from_state // 4
        extra = DENSITY_WEIGHT * self.occupancy[cell] + CONTRAFLOW_WEIGHT * self.flow[cell, (heading + 2) % 4]
        weights = cost + np.where(drives, extra, 0.0)
        self._reverse = csr_matrix((weights, (to_state, from_state)), shape=self._reverse.shape)
        self._rows.clear()

    def _traces_from(self, state: int) -> list[tuple[tuple[int, ...], tuple[int, ...]]]:
        """For each operation possible from `state`: the cells at times 1..DEPTH and the states."""
        traces = self._traces.get(state)
        if traces is None:
            traces = []
            ahead = self.graph.ahead
            for actions in OPERATIONS:
                cell, h = divmod(state, 4)
                cells, states = [], []
                for act in actions:
                    if act == FORWARD:
                        cell = ahead[cell][h]
                        if cell < 0:
                            break
                    h = _turned(h, act)
                    cells.append(cell)
                    states.append(4 * cell + h)
                else:
                    traces.append((tuple(cells), tuple(states)))
            self._traces[state] = traces
        return traces

    # ---- one step ---------------------------------------------------------------------------

    def step(self, cells: Sequence[int], headings: Sequence[int], order: Sequence[int]) -> tuple[list[int], list[int]]:
        if self.guidance:
            self.observe(cells, headings)
        n_agents = len(cells)
        self._cells = cells
        self._states = [4 * c + h for c, h in zip(cells, headings, strict=True)]
        self._at = {c: a for a, c in enumerate(cells)}
        self._plan: list[tuple[tuple[int, ...], tuple[int, ...]] | None] = [None] * n_agents
        self._cell_at: dict[int, int] = {}  # time x cells + cell -> agent
        self._moves: set[tuple[int, int, int]] = set()  # (time, from, to)
        self._fixed: set[int] = set()  # cells of agents being planned or that failed: may stand there
        self.failed = set()
        self.held = set()
        self._tries = [0] * n_agents
        for agent in order:
            if self._plan[agent] is None and agent not in self.failed:
                self._plan_agent(agent, 0)
        new_cells, new_headings = list(cells), list(headings)
        for agent, plan in enumerate(self._plan):
            if plan is not None:
                new_cells[agent] = plan[1][0] // 4
                new_headings[agent] = plan[1][0] % 4
        return new_cells, new_headings

    def _plan_agent(self, agent: int, depth: int) -> bool:
        self._tries[agent] += 1
        here = self._cells[agent]
        self._fixed.add(here)
        dist = self.state_distances(self.goals[agent])
        rand = self.rng.random
        at = self._at
        start = self._states[agent]
        at_goal, stand = dist[start] == 0, (start,) * DEPTH
        # By the cost left after the operation only, not the operation's own: counting it too (a
        # drive into a jam costs what the guidance says) gave RANDOM-03 1141, 1242, 1186 tasks on
        # seeds 0-2 against 1224, 1229, 1230 without.
        options = sorted(
            ((dist[tr[1][-1]], tr) for tr in self._traces_from(start)),
            key=lambda option: (
                option[0],
                at_goal and option[1][1] != stand,  # at the goal, no turning for nothing
                sum(c != here and c in at for c in option[1][0]),  # through fewer agents' cells
                sum(dist[s] for s in option[1][1]),
                rand(),
            ),
        )
        for way, trace in options:
            if self._try(agent, here, trace, depth):
                self._fixed.discard(here)
                if way > options[0][0]:
                    self.held.add(agent)
                return True
        if self._tries[agent] < _TRIES and depth > 0:
            # It failed around the operation that asked it to move: it may still find one of its
            # own later, and until then it stands where it is, which everything planned avoids.
            self._fixed.discard(here)
        else:
            self.failed.add(agent)  # stays where it is; its cell stays fixed for everyone else
        return False

    def _try(self, agent: int, here: int, trace: tuple[tuple[int, ...], tuple[int, ...]], depth: int) -> bool:
        path = trace[0]
        n = self.n
        blockers: list[int] = []
        prev = here
        for t, cell in enumerate(path, start=1):
            if self._cell_at.get(t * n + cell, agent) != agent or (t, cell, prev) in self._moves:
                return False
            if cell != here:
                if cell in self._fixed:
                    return False
                other = self._at.get(cell)
                if other is not None and self._plan[other] is None and other not in blockers:
                    blockers.append(other)
            prev = cell
        if blockers and depth >= _MAX_CHAIN:
            return False
        self._reserve(agent, here, trace)
        for other in blockers:
            if self._plan[other] is None and (other in self.failed or not self._plan_agent(other, depth + 1)):
                self._unreserve(agent, here)
                return False
        return True

    def _reserve(self, agent: int, here: int, trace: tuple[tuple[int, ...], tuple[int, ...]]) -> None:
        prev = here
        for t, cell in enumerate(trace[0], start=1):
            self._cell_at[t * self.n + cell] = agent
            if cell != prev:
                self._moves.add((t, prev, cell))
            prev = cell
        self._plan[agent] = trace

    def _unreserve(self, agent: int, here: int) -> None:
        trace = self._plan[agent]
        assert trace is not None
        prev = here
        for t, cell in enumerate(trace[0], start=1):
            del self._cell_at[t * self.n + cell]
            self._moves.discard((t, prev, cell))
            prev = cell
        self._plan[agent] = None
