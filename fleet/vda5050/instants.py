"""Instant actions tracked until the vehicle answers them: pure, time passed in.

Every instant action the controller sends (sec. 6.8) is kept with the headerId of its message
until the vehicle's state shows it FINISHED or FAILED, names it (or its message) in an error, or
`ANSWER_TIMEOUT_S` pass without a word of it. A refusal, a failure and silence come out alike:
the action's type and the vehicle's reason, for the controller to undo what it expected. The
requests that only ask for information (stateRequest, factsheetRequest) are answered by the
state or factsheet itself and are not tracked.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from fleet.vda5050.messages import ActionStatus, InstantActions, State

ANSWER_TIMEOUT_S = 30.0
UNTRACKED = frozenset({"stateRequest", "factsheetRequest"})


@dataclass
class _Sent:
    action_type: str
    header_id: int
    at: float
    status: str = "SENT"


@dataclass
class InstantTracker:
    status: dict[str, str] = field(default_factory=dict)  # actionId -> last status reported (SENT until then)
    _open: dict[str, _Sent] = field(default_factory=dict)  # actionId -> awaiting its end

    def sent(self, message: InstantActions, now: float) -> None:
        for action in message.actions:
            self.status[action.action_id] = "SENT"
            if action.action_type not in UNTRACKED:
                self._open[action.action_id] = _Sent(action.action_type, message.header_id, now)

    def on_state(self, state: State) -> list[tuple[str, str, str]]:
        """(actionId, action type, reason) of each tracked action the state shows refused or
        failed; those it shows FINISHED are done with."""
        refused: list[tuple[str, str, str]] = []
        for a in state.action_states:
            if a.action_id not in self.status:
                continue
            self.status[a.action_id] = a.action_status.value
            sent = self._open.get(a.action_id)
            if sent is None or a.action_status not in (ActionStatus.FINISHED, ActionStatus.FAILED):
                continue
            del self._open[a.action_id]
            if a.action_status is ActionStatus.FAILED:
                refused.append((a.action_id, sent.action_type, a.result_description or "failed"))
        for error in state.errors:
            named = error.reference("actionId")
            header = error.reference("headerId")
            topic = error.reference("topic")
            for action_id, sent in list(self._open.items()):
                if named == action_id or (topic == "instantActions" and header == str(sent.header_id)):
                    del self._open[action_id]
                    self.status[action_id] = "FAILED"
                    why = f"{error.error_type}: {error.error_description or ''}".strip(": ")
                    refused.append((action_id, sent.action_type, why))
        return refused

    def overdue(self, now: float) -> list[tuple[str, str, str]]:
        """Tracked actions the vehicle has not answered in `ANSWER_TIMEOUT_S`, given up on."""
        late = [(aid, s.action_type) for aid, s in self._open.items() if now - s.at >= ANSWER_TIMEOUT_S]
        for aid, _ in late:
            del self._open[aid]
            self.status[aid] = "FAILED"
        return [(aid, kind, f"no answer in {ANSWER_TIMEOUT_S:.0f} s") for aid, kind in late]

    def forget(self, action_id: str) -> None:
        self._open.pop(action_id, None)
