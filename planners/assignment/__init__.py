"""Assignment of transport orders to vehicles: OR-Tools pickup-and-delivery, a greedy baseline,
an evaluator and a validator.

Battery is a resource of the model: a vehicle with an `EnergyUse` may take only routes whose
energy, including the drive from its last drop-off to the nearest charger, fits in its
`energy_wh` (what it has above its reserve). The greedy baseline and the validator count energy
the same way (`route_energy`: a load draws its extra for every leg it is on board); the solver's
energy dimension counts it over the direct leg from pick-up to drop-off, exact with one load at
a time, and its routes are cut back to fit `route_energy` (`_within_energy`).

Objective: the priority-weighted sum of order completion times (drop-off service finished),
counted from now. Travel adds a small tie-breaking term in the solver. Every plan the solver
returns is warm-started from the greedy nearest-vehicle plan and then compared with it by
`evaluate_routes`, so the returned plan is never worse than the baseline.

Times are seconds relative to "now"; the solver works in deciseconds (integers).
"""

from planners.assignment.evaluate import evaluate_routes, route_energy, validate_plan
from planners.assignment.greedy import greedy_plan
from planners.assignment.model import (
    LATENESS_PER_COMPLETION,
    AssignmentPlan,
    EnergyUse,
    OrderTask,
    Stop,
    StopKind,
    TravelMatrix,
    VehicleSlot,
    energy_use_for,
)
from planners.assignment.solve import solve_assignment

__all__ = [
    "LATENESS_PER_COMPLETION",
    "AssignmentPlan",
    "EnergyUse",
    "OrderTask",
    "Stop",
    "StopKind",
    "TravelMatrix",
    "VehicleSlot",
    "energy_use_for",
    "evaluate_routes",
    "greedy_plan",
    "route_energy",
    "solve_assignment",
    "validate_plan",
]
