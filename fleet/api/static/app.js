// Control-room page: draws the active map and follows vehicles and orders through the public API.
// An API key given as ?key= or typed into the sign-in form is kept for the browser tab's session
// and sent with every request.
// Without one, the page asks for it (a sign-in form) rather than drawing buttons that cannot work.
// The key is taken out of the address at once, so it is not bookmarked or read over a shoulder.
const urlKey = new URLSearchParams(location.search).get("key");
if (urlKey) {
  sessionStorage.setItem("fleet-key", urlKey);
  history.replaceState(null, "", location.pathname);
}
const apiKey = sessionStorage.getItem("fleet-key");

const api = async (path, options = {}) => {
  const headers = { "content-type": "application/json", ...(apiKey ? { "x-api-key": apiKey } : {}) };
  const response = await fetch(`/api/v1${path}`, { headers, ...options });
  const body = await response.json();
  if (!response.ok) throw new Error(body.detail?.[0]?.msg ?? body.detail ?? response.statusText);
  return body;
};

const svgNS = "http://www.w3.org/2000/svg";
const el = (name, attrs = {}, parent = null) => {
  const node = document.createElementNS(svgNS, name);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (parent) parent.appendChild(node);
  return node;
};

let plant = null;
let fleetPaused = false;
const vehicleShapes = new Map();
let fullView = null;
let view = null;

// Pan (drag) and zoom (wheel, or the +/- buttons) by moving the SVG view box; "fit" shows the
// whole plant again. A drag of more than a few pixels is a pan, not a click on a lane or zone.
function setView(v) {
  view = v;
  const svg = document.getElementById("map");
  svg.setAttribute("viewBox", `${v.x} ${v.y} ${v.w} ${v.h}`);
  const box = svg.getBoundingClientRect();
  pxScale = box.width ? Math.max(v.w / box.width, v.h / box.height) : 0.1; // world units per pixel
  placeLabels();
  if (lastVehicles) drawVehicles(lastVehicles);
}

// Labels keep their size on screen at every zoom; station labels that would overlap one placed
// before them are hidden until the operator zooms in far enough to read them apart.
let pxScale = 0.1;
function placeLabels() {
  const size = 11 * pxScale;
  const labels = document.getElementById("station-labels");
  if (!labels) return;
  labels.setAttribute("font-size", size);
  document.getElementById("vehicle-labels").setAttribute("font-size", size);
  const placed = [];
  for (const label of labels.children) {
    const w = (label.textContent.length * 0.66 + 0.5) * size, h = size; // a little wider than the glyphs
    const x = Number(label.getAttribute("x")), y = Number(label.getAttribute("y")) - h;
    const clash = placed.some((p) => x < p.x + p.w && p.x < x + w && y < p.y + p.h && p.y < y + h);
    label.classList.toggle("thinned", clash);
    if (!clash) placed.push({ x, y, w, h });
  }
}

function zoomAt(factor, cx, cy) {
  const w = Math.min(fullView.w * 4, Math.max(fullView.w / 40, view.w * factor));
  const k = w / view.w;
  setView({ x: cx - (cx - view.x) * k, y: cy - (cy - view.y) * k, w, h: view.h * k });
}

function toWorld(svg, clientX, clientY) {
  const box = svg.getBoundingClientRect();
  const scale = Math.max(view.w / box.width, view.h / box.height); // preserveAspectRatio meet
  const offX = (box.width * scale - view.w) / 2, offY = (box.height * scale - view.h) / 2;
  return [view.x - offX + (clientX - box.left) * scale, view.y - offY + (clientY - box.top) * scale, scale];
}

let dragMoved = false;
function setupPanZoom() {
  const svg = document.getElementById("map");
  svg.addEventListener("wheel", (event) => {
    event.preventDefault();
    const [x, y] = toWorld(svg, event.clientX, event.clientY);
    zoomAt(event.deltaY > 0 ? 1.2 : 1 / 1.2, x, y);
  }, { passive: false });
  let drag = null;
  svg.addEventListener("pointerdown", (event) => {
    drag = { x: event.clientX, y: event.clientY, view: { ...view } };
    dragMoved = false;
  });
  svg.addEventListener("pointermove", (event) => {
    if (!drag) return;
    const dx = event.clientX - drag.x, dy = event.clientY - drag.y;
    if (!dragMoved && Math.hypot(dx, dy) < 4) return;
    dragMoved = true;
    const [, , scale] = toWorld(svg, event.clientX, event.clientY);
    setView({ ...drag.view, x: drag.view.x - dx * scale, y: drag.view.y - dy * scale });
  });
  for (const end of ["pointerup", "pointerleave"]) svg.addEventListener(end, () => { drag = null; });
  const centre = () => [view.x + view.w / 2, view.y + view.h / 2];
  document.getElementById("zoom-in").addEventListener("click", () => zoomAt(1 / 1.5, ...centre()));
  document.getElementById("zoom-out").addEventListener("click", () => zoomAt(1.5, ...centre()));
  document.getElementById("zoom-fit").addEventListener("click", () => setView(fullView));
  window.addEventListener("resize", () => setView(view)); // labels and marks keep their size
}

function drawMap(map, closed) {
  const svg = document.getElementById("map");
  const xs = map.nodes.map((n) => n.x), ys = map.nodes.map((n) => n.y);
  const pad = 6, minX = Math.min(...xs) - pad, maxX = Math.max(...xs) + pad;
  const minY = Math.min(...ys) - pad, maxY = Math.max(...ys) + pad;
  fullView = { x: minX, y: -maxY, w: maxX - minX, h: maxY - minY };
  setView(fullView);
  const world = el("g", { transform: "scale(1,-1)" }, svg); // plant y points up, SVG y down
  const nodes = Object.fromEntries(map.nodes.map((n) => [n.id, n]));
  for (const zone of map.zones) {
    const shape = el("polygon", { points: zone.polygon.map((p) => p.join(",")).join(" "), class: `zone zone-${zone.kind}`, "data-zone": zone.id }, world);
    shape.appendChild(document.createElementNS(svgNS, "title")).textContent = `zone ${zone.id} (${zone.kind}): click to close or open`;
    shape.addEventListener("click", () => toggleClosure("zones", zone.id, shape));
  }
  const defs = el("defs", {}, svg);
  const arrow = el("marker", { id: "arrow", viewBox: "0 0 4 4", refX: 4, refY: 2, markerWidth: 3, markerHeight: 3, orient: "auto" }, defs);
  el("path", { d: "M0,0 L4,2 L0,4 z", fill: "#3a4a5e" }, arrow);
  for (const lane of map.lanes) {
    const a = nodes[lane.from], b = nodes[lane.to];
    const line = el("line", { x1: a.x, y1: a.y, x2: b.x, y2: b.y, class: "lane", "data-lane": lane.id }, world);
    if (!lane.two_way) line.setAttribute("marker-end", "url(#arrow)");
    line.appendChild(document.createElementNS(svgNS, "title")).textContent = `lane ${lane.id}: click to close or open`;
    line.addEventListener("click", () => toggleClosure("lanes", lane.id, line));
  }
  showClosures(closed, map.closed_zones ?? []);
  const stationLabels = el("g", { id: "station-labels" }, svg);
  for (const [kind, items] of [["station", map.stations], ["charger", map.chargers], ["parking", map.parking]]) {
    for (const item of items) {
      const n = nodes[item.node];
      el("rect", { x: n.x - 0.8, y: n.y - 0.8, width: 1.6, height: 1.6, class: kind }, world);
      if (kind === "station") {
        el("text", { x: n.x + 1.2, y: -n.y + 0.5, class: "label", "data-station": item.id }, stationLabels).textContent = item.id;
      }
    }
  }
  el("g", { id: "paths" }, world);
  el("g", { id: "vehicles" }, world);
  el("g", { id: "vehicle-marks" }, world);
  el("g", { id: "vehicle-labels" }, svg);
  placeLabels();
}

// Each vehicle's released path (base, solid) and planned path beyond it (horizon, dashed).
function drawPaths(vehicles) {
  const layer = document.getElementById("paths");
  const at = (id) => plant.nodeById[id];
  const points = (list) => list.map((p) => `${p.x},${p.y}`).join(" ");
  layer.replaceChildren();
  for (const v of vehicles) {
    if (!v.base.length && !v.horizon.length) continue;
    const base = [{ x: v.x, y: v.y }, ...v.base.map(at)];
    const chosen = v.id === selected ? " selected" : "";
    if (v.base.length) el("polyline", { points: points(base), class: `path base${chosen}`, "data-base": v.id }, layer);
    if (v.horizon.length) el("polyline", { points: points([base.at(-1), ...v.horizon.map(at)]), class: `path horizon${chosen}`, "data-horizon": v.id }, layer);
  }
}

// Each vehicle: its footprint (true to scale), and around it a mark of fixed size on screen (a
// ring in its state's colour with a heading tick, a dot when it carries a load) with its id
// above, so every cart can be found and told apart at any zoom. A battery below 20 % is marked in
// the label. Clicking a mark selects the vehicle: its route is highlighted and its detail shown.
const LOW_BATTERY = 0.2;
let lastVehicles = null;
let selected = null;
const vehicleMarks = new Map();

function vehicleState(v) {
  if (v.connection && v.connection !== "online") return "offline";
  if (v.errors.length || v.safety_stop || v.load_mismatch || !v.in_service) return "trouble";
  if (v.paused) return "paused";
  return v.activity;
}

function drawVehicles(vehicles) {
  lastVehicles = vehicles;
  const layer = document.getElementById("vehicles");
  const marks = document.getElementById("vehicle-marks");
  const labels = document.getElementById("vehicle-labels");
  const type = plant.vehicle_types[0];
  const spots = labelSpots(vehicles);
  for (const v of vehicles) {
    let shape = vehicleShapes.get(v.id);
    if (!shape) {
      shape = el("rect", { width: type.length, height: type.width, x: -type.length / 2, y: -type.width / 2, "data-vehicle": v.id }, layer);
      shape.appendChild(document.createElementNS(svgNS, "title"));
      vehicleShapes.set(v.id, shape);
      const mark = el("g", { "data-mark": v.id }, marks);
      el("circle", { r: 8, class: "ring" }, mark);
      el("line", { x1: 0, y1: 0, x2: 12, y2: 0, class: "tick" }, mark);
      el("circle", { r: 3, class: "load" }, mark);
      mark.appendChild(document.createElementNS(svgNS, "title"));
      mark.addEventListener("click", () => { if (!dragMoved) select(v.id); });
      const label = el("text", { "text-anchor": "middle", class: "vlabel", "data-label": v.id }, labels);
      vehicleMarks.set(v.id, [mark, label]);
    }
    const [mark, label] = vehicleMarks.get(v.id);
    const deg = (v.heading * 180) / Math.PI;
    // A CSS transform (user units as px) so the transition glides between two polls.
    shape.style.transform = `translate(${v.x}px, ${v.y}px) rotate(${deg}deg)`;
    mark.style.transform = `translate(${v.x}px, ${v.y}px) rotate(${deg}deg) scale(${pxScale})`;
    const [lx, ly] = spots.get(v.id);
    label.style.transform = `translate(${lx}px, ${ly}px)`;
    const state = vehicleState(v);
    const low = v.battery < LOW_BATTERY;
    shape.setAttribute("class", `vehicle ${v.activity}${v.wait_reason ? " waiting" : ""}${v.paused ? " paused" : ""}`);
    mark.setAttribute("class", `vmark ${state}${v.wait_reason ? " waiting" : ""}${v.loads.length ? " loaded" : ""}${v.id === selected ? " selected" : ""}`);
    label.setAttribute("class", `vlabel ${state}${low ? " low-battery" : ""}`);
    label.textContent = labelText(v);
    const text = `${v.id}: ${state}${v.loads.length ? ", loaded" : ""}, battery ${Math.round(v.battery * 100)} %${v.wait_reason ? ` (${v.wait_reason})` : ""}`;
    shape.firstChild.textContent = text;
    mark.lastChild.textContent = text;
  }
  if (selected) showDetail(vehicles.find((v) => v.id === selected));
}

const labelText = (v) => (v.battery < LOW_BATTERY ? `${v.id} \u26a0${Math.round(v.battery * 100)}%` : v.id);

// Where each vehicle's id label goes (its baseline centre, in map units with y down): above its
// mark if that is free, else below, right or left, further out ring by ring, so that no two
// labels overlap and each stays inside the view. The selected vehicle is placed first.
function labelSpots(vehicles) {
  const size = 11 * pxScale;
  const placed = [];
  const spots = new Map();
  const first = (v) => (v.id === selected ? "" : v.id);
  const inView = (b) => b.x >= view.x && b.y >= view.y && b.x + b.w <= view.x + view.w && b.y + b.h <= view.y + view.h;
  for (const v of [...vehicles].sort((a, b) => first(a).localeCompare(first(b)))) {
    const w = (labelText(v).length * 0.7 + 0.8) * size, h = size * 1.25;
    const cx = v.x, cy = -v.y;
    const seen = inView({ x: cx, y: cy, w: 0, h: 0 });
    let spot = null;
    for (let ring = 1; ring <= 8 && !spot; ring++) {
      const d = size * ring;
      for (const [dx, dy] of [[0, -d], [0, d + h], [d + w / 2, h / 3], [-d - w / 2, h / 3]]) {
        const box = { x: cx + dx - w / 2, y: cy + dy - h * 0.85, w, h };
        if ((!seen || inView(box)) && !placed.some((p) => box.x < p.x + p.w && p.x < box.x + box.w && box.y < p.y + p.h && p.y < box.y + box.h)) {
          spot = [cx + dx, cy + dy, box];
          break;
        }
      }
    }
    spot ??= [cx, cy - size, { x: cx - w / 2, y: cy - size - h * 0.85, w, h }]; // a crowd too dense at this zoom
    placed.push(spot[2]);
    spots.set(v.id, [spot[0], spot[1]]);
  }
  return spots;
}

// The selected vehicle's detail over the map: what it does, why it waits, what it reports.
function select(id) {
  selected = selected === id ? null : id;
  document.getElementById("vehicle-detail").hidden = selected === null;
  for (const row of document.querySelectorAll("#vehicles tbody tr")) row.classList.toggle("selected", row.dataset.vehicle === selected);
  if (lastVehicles) {
    drawPaths(lastVehicles);
    drawVehicles(lastVehicles);
  }
}

function showDetail(v) {
  const box = document.getElementById("vehicle-detail");
  if (!v) {
    box.hidden = true;
    return;
  }
  const rows = [
    ["vehicle", `${v.id} (${v.type})`],
    ["state", `${vehicleState(v)}${v.connection && v.connection !== "online" ? ` since ${clock(v.connection_since ?? 0)}` : ""}`],
    ["battery", `${Math.round(v.battery * 100)} %`],
    ["order", v.order_id ?? "none"],
    ["carries", v.loads.join(", ") || "nothing"],
    ["next stops", v.stops.join(", ") || "none"],
    ["waits for", v.wait_reason ?? "nothing"],
    ["errors", [...v.errors, ...(v.safety_stop ? [`safety: ${v.safety_stop}`] : [])].join("; ") || "none"],
  ];
  if (v.load_mismatch) rows.push(["load check", v.load_mismatch]);
  if (v.unfit?.length || v.lacks?.length) rows.push(["no orders", [...v.lacks.map((a) => `cannot ${a}`), ...v.unfit].join("; ")]);
  const list = document.createElement("dl");
  for (const [term, value] of rows) {
    list.appendChild(document.createElement("dt")).textContent = term;
    const dd = list.appendChild(document.createElement("dd"));
    dd.textContent = value;
    dd.dataset.detail = term;
  }
  box.replaceChildren(list);
  if (v.load_mismatch) box.appendChild(loadDecision(v));
}

// A load mismatch waits for the operator: keep the controller's record, or the vehicle's report.
function loadDecision(v) {
  const choices = document.createElement("p");
  choices.className = "load-decision";
  for (const [trust, label, question] of [
    ["record", "keep the record", `${v.id}: the record is right, its sensing erred (or the load is back)?`],
    ["vehicle", "trust the vehicle", `${v.id}: its report is right? Orders of loads it does not carry fail.`],
  ]) {
    const button = choices.appendChild(document.createElement("button"));
    button.className = "action";
    button.dataset.trust = trust;
    button.textContent = label;
    button.addEventListener("click", async () => {
      if (!confirm(question)) return;
      try {
        await api(`/vehicles/${v.id}/load-decision`, { method: "POST", body: JSON.stringify({ trust }) });
      } catch (error) {
        alert(`${v.id}: ${error.message}`);
      }
      refresh();
    });
  }
  return choices;
}

function fillVehicles(vehicles) {
  const body = document.querySelector("#vehicles tbody");
  body.replaceChildren(...vehicles.map((v) => {
    const row = document.createElement("tr");
    row.dataset.vehicle = v.id;
    row.classList.toggle("selected", v.id === selected);
    row.addEventListener("click", (event) => { if (event.target.tagName !== "BUTTON") select(v.id); });
    // A vehicle carrying several loads: the order it serves now, then what else is on board.
    const others = v.loads.filter((o) => o !== v.order_id);
    const work = `${v.order_id ?? ""}${others.length ? ` (carries ${others.join(", ")})` : ""}`;
    // A vehicle not online says so first: an operator must see a lost connection at once.
    const doing = v.paused ? "paused" : v.activity;
    const state = v.connection && v.connection !== "online" ? `${v.connection} · ${doing}` : doing;
    for (const text of [v.id, state, `${Math.round(v.battery * 100)} %`, work]) {
      row.appendChild(document.createElement("td")).textContent = text;
    }
    const why = row.appendChild(document.createElement("td"));
    why.className = "why";
    why.textContent = v.wait_reason ?? "";
    const cell = row.appendChild(document.createElement("td"));
    const button = cell.appendChild(document.createElement("button"));
    button.className = "action";
    button.textContent = v.paused ? "resume" : "pause";
    button.addEventListener("click", async () => {
      if (!v.paused && !confirm(`Pause ${v.id}? It stops where it is.`)) return;
      await api(`/vehicles/${v.id}/${v.paused ? "resume" : "pause"}`, { method: "POST" });
      refresh();
    });
    for (const [verb, label] of [["charge", "charge"], ["park", "park"]]) {
      const send = cell.appendChild(document.createElement("button"));
      send.className = `action send-${verb}`;
      send.textContent = label;
      send.addEventListener("click", async () => {
        if (!confirm(`Send ${v.id} to ${verb === "charge" ? "a charger" : "a parking spot"}?`)) return;
        try {
          await api(`/vehicles/${v.id}/${verb}`, { method: "POST" });
        } catch (error) {
          alert(`${v.id}: ${error.message}`);
        }
        refresh();
      });
    }
    return row;
  }));
}

const ENDED = new Set(["finished", "cancelled", "failed"]);
const CANCELLABLE = new Set(["accepted", "assigned", "to_pickup"]); // once loaded, the load must be delivered
const clock = (t) => new Date(t * 1000).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });

function dueText(o) {
  if (o.lateness_s != null) return o.lateness_s > 0 ? `${Math.round(o.lateness_s / 60)} min late` : "on time";
  // Until loaded, when the load is ready at the pick-up matters too: "10:30-11:00" (ready to
  // due) or "from 10:30", kept short so the panel fits a laptop's width.
  const ready = o.ready_at && CANCELLABLE.has(o.state) ? clock(o.ready_at) : "";
  if (ready) return o.due_at ? `${ready}\u2013${clock(o.due_at)}` : `from ${ready}`;
  return o.due_at ? `due ${clock(o.due_at)}` : "";
}

function fillOrders(recent) {
  const body = document.querySelector("#orders tbody");
  body.replaceChildren(...recent.map((o) => {
    const row = document.createElement("tr");
    row.dataset.order = o.id;
    row.className = `order-${o.state}${o.lateness_s > 0 ? " late" : ""}`;
    for (const text of [o.id, `${o.pickup} \u2192 ${o.dropoff}`, o.state, o.priority, o.vehicle_id ?? "", dueText(o)]) {
      row.appendChild(document.createElement("td")).textContent = text;
    }
    row.children[1].className = "route";
    const cell = row.appendChild(document.createElement("td"));
    if (!ENDED.has(o.state)) {
      const prio = cell.appendChild(document.createElement("button"));
      prio.className = "action prioritise";
      prio.textContent = "prio";
      prio.addEventListener("click", async () => {
        const answer = prompt(`New priority for ${o.id} (0 normal ... 10 most urgent)`, String(o.priority));
        if (answer === null) return;
        try {
          await api(`/orders/${o.id}`, { method: "PATCH", body: JSON.stringify({ priority: Number(answer) }) });
        } catch (error) {
          alert(`${o.id}: ${error.message}`);
        }
        refreshOrders();
      });
    }
    if (CANCELLABLE.has(o.state)) {
      const cancel = cell.appendChild(document.createElement("button"));
      cancel.className = "action cancel";
      cancel.textContent = "cancel";
      cancel.addEventListener("click", async () => {
        if (!confirm(`Cancel ${o.id} (${o.pickup} to ${o.dropoff})?`)) return;
        try {
          await api(`/orders/${o.id}/cancel`, { method: "POST", body: JSON.stringify({ reason: "cancelled in the control room" }) });
        } catch (error) {
          alert(`${o.id}: ${error.message}`);
        }
        refreshOrders();
      });
    }
    return row;
  }));
}

// Closed lanes and zones as the controller has them; an operator closes or opens one by clicking it.
function showClosures(lanes, zones) {
  for (const line of document.querySelectorAll("line.lane")) line.classList.toggle("closed", lanes.includes(line.dataset.lane));
  for (const shape of document.querySelectorAll("polygon.zone")) shape.classList.toggle("closed", zones.includes(shape.dataset.zone));
}

async function refreshClosures() {
  const [lanes, zones] = await Promise.all([api("/lanes/closed"), api("/zones/closed")]);
  showClosures(lanes.closed, zones.closed);
}

async function toggleClosure(kind, id, shape) {
  if (document.body.classList.contains("viewer") || dragMoved) return;
  const closing = !shape.classList.contains("closed");
  const what = kind === "lanes" ? "lane" : "zone";
  if (!confirm(`${closing ? "Close" : "Open"} ${what} ${id}?${closing ? " Vehicles are routed around it." : ""}`)) return;
  await api(`/${kind}/${id}/${closing ? "close" : "open"}`, { method: "POST" });
  await refreshClosures();
}

async function refresh() {
  const vehicles = await api("/vehicles");
  drawPaths(vehicles);
  drawVehicles(vehicles);
  fillVehicles(vehicles);
}

// Open alarms, newest first, one per condition (ISA-18.2): severity, how often it was raised,
// and whether it still holds. An operator acknowledges one (a condition then stays until it
// clears) or shelves it for 30 minutes. A robot cell's failed transfer (the vehicle waits at the
// station) also gets retry and abort while that cell waits; `held` maps vehicle id -> station.
function fillAlarms(alarms, held = {}) {
  document.getElementById("alarm-count").textContent = alarms.length ? `(${alarms.length} open)` : "";
  const body = document.querySelector("#alarms tbody");
  body.replaceChildren(...alarms.slice(0, 30).map((a) => {
    const row = document.createElement("tr");
    row.dataset.alarm = a.id;
    row.className = `alarm ${a.code} sev-${a.severity} ${a.state}`;
    const time = new Date(a.raised_at * 1000).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", hourCycle: "h23" });
    const sev = row.appendChild(document.createElement("td"));
    sev.className = "sev";
    sev.textContent = a.severity;
    row.appendChild(document.createElement("td")).textContent = time;
    const what = row.appendChild(document.createElement("td"));
    what.className = "what";
    const repeat = a.count > 1 ? ` (\u00d7${a.count})` : "";
    const ended = a.cleared_at != null ? " \u2014 cleared" : a.acknowledged_at != null ? " \u2014 acknowledged" : "";
    what.textContent = `${a.code}: ${a.message}${repeat}${ended}`;
    what.title = what.textContent;
    const cell = row.appendChild(document.createElement("td"));
    cell.className = "buttons";
    const station = a.code === "transfer-failed" ? held[a.vehicle_id] : undefined;
    const actions = station
      ? [["retry", `/stations/${station}/transfer/retry`], ["abort", `/stations/${station}/transfer/abort`]]
      : [];
    if (a.acknowledged_at == null) actions.push(["ack", `/alarms/${a.id}/acknowledge`]);
    actions.push(["shelve", `/alarms/${a.id}/shelve`, { minutes: 30 }]);
    for (const [label, path, payload] of actions) {
      const button = cell.appendChild(document.createElement("button"));
      button.className = "action";
      button.dataset.alarmAction = label;
      button.textContent = label;
      if (label === "shelve") button.title = "off the list for 30 minutes";
      button.addEventListener("click", async () => {
        if (label === "abort" && !confirm(`Abort the transfer at ${station}? The order fails.`)) return;
        await api(path, { method: "POST", ...(payload ? { body: JSON.stringify(payload) } : {}) });
        refreshOrders();
      });
    }
    return row;
  }));
  if (!alarms.length) nothingYet(body, "no open alarm", 4);
}

// An empty table says so, rather than showing its header alone.
function nothingYet(body, text, columns) {
  const cell = body.appendChild(document.createElement("tr")).appendChild(document.createElement("td"));
  cell.colSpan = columns;
  cell.className = "none";
  cell.textContent = text;
}

// The journal: what happened that needs nobody to act (lanes opened, limits changed,
// conditions ended), newest first.
function fillJournal(entries) {
  document.querySelector("#journal tbody").replaceChildren(...entries.map((e) => {
    const row = document.createElement("tr");
    row.dataset.entry = e.id;
    row.className = e.code;
    row.appendChild(document.createElement("td")).textContent = new Date(e.at * 1000).toLocaleTimeString();
    row.appendChild(document.createElement("td")).textContent = e.message;
    return row;
  }));
  if (!entries.length) nothingYet(document.querySelector("#journal tbody"), "nothing yet", 2);
}

// The header strip: what needs attention, at a glance; each count names what it counts.
function fillGlance(o) {
  const chips = [
    ["mode", o.mode, o.mode !== "running"],
    ["late", `${o.late_orders} late order${o.late_orders === 1 ? "" : "s"}`, o.late_orders > 0],
    ["blocked", `${o.vehicles_blocked.length} blocked`, o.vehicles_blocked.length > 0, o.vehicles_blocked.join(", ")],
    ["trouble", `${o.vehicles_in_trouble.length} in trouble`, o.vehicles_in_trouble.length > 0, o.vehicles_in_trouble.join(", ")],
    ...["critical", "high", "medium", "low"].map((sev) => [`sev-${sev}`, `${o.alarms[sev]} ${sev}`, o.alarms[sev] > 0]),
    ["shelved", `${o.alarms.shelved} shelved`, false],
    ["orders", `${o.open_orders} open orders`, false],
    ...o.problems.map((p, i) => [`problem-${i}`, p, true]),
  ];
  document.getElementById("summary").replaceChildren(...chips.map(([name, text, hot, title]) => {
    const chip = document.createElement("span");
    chip.className = `chip ${name}${hot ? " hot" : ""}`;
    chip.dataset.glance = name;
    chip.textContent = text;
    if (title) chip.title = title;
    return chip;
  }));
}

// The shift panel: KPIs over the last 8 hours, or over the time the controller has run when
// that is shorter (so a rate is right from the first minute), with orders finished as bars.
const WAIT_CAUSES = {
  node: "a node another holds", lane: "a lane another holds", zone: "a single-vehicle zone", turn: "another's turn",
  load: "a load to be ready", cell: "a robot cell", safety: "its safety system",
};
const span = (s) => (s < 3600 ? `${Math.max(1, Math.round(s / 60))} min` : `${(s / 3600).toFixed(s < 36000 ? 1 : 0)} h`);

function fillKpis(k) {
  document.getElementById("kpi-window").textContent = `(last ${span(k.covered_s)})`;
  const waits = Object.entries(k.waiting_s_by_cause)
    .filter(([, s]) => s >= 30)
    .sort(([, a], [, b]) => b - a)
    .map(([cause, s]) => `${WAIT_CAUSES[cause] ?? cause} ${Math.round(s / 60)} min`).join(", ");
  const rows = [
    ["finished", `${k.orders_finished} (${k.finished_per_hour.toFixed(1)} / h)`],
    ["lead time", k.orders_finished
      ? `${Math.round(k.lead_time_mean_s / 60)} min mean, ${Math.round(k.lead_time_p95_s / 60)} min p95`
      : "none finished yet"],
    ["utilisation", `${Math.round(k.utilisation * 100)} %`],
    ["vehicles waited for", waits || "nothing"],
  ];
  document.getElementById("kpis").replaceChildren(...rows.flatMap(([term, value]) => {
    const dt = document.createElement("dt"), dd = document.createElement("dd");
    dt.textContent = term;
    dd.textContent = value;
    dd.dataset.kpi = term;
    return [dt, dd];
  }));
  const chart = document.getElementById("kpi-chart");
  const most = Math.max(1, ...k.finished_by_bin.map(([, n]) => n));
  const width = 320 / k.finished_by_bin.length;
  const bars = k.finished_by_bin.map(([start, n], i) => {
    const h = (n / most) * 56;
    const bar = el("rect", { x: i * width + 1, y: 60 - h, width: width - 2, height: h, class: "bar" });
    bar.appendChild(document.createElementNS(svgNS, "title")).textContent = `${clock(start)}: ${n} finished`;
    return bar;
  });
  chart.replaceChildren(...bars);
  document.getElementById("kpi-empty").hidden = k.orders_finished > 0; // an empty box says why
}

async function refreshKpis() {
  fillKpis(await api("/kpis"));
}

// Admission control: how many vehicles work on orders, against the limit an operator set.
function fillAdmission(admission) {
  const limit = admission.max_working_vehicles;
  const state = document.getElementById("admission-state");
  state.textContent = limit === null
    ? `${admission.working} working, no limit`
    : `${admission.working} working, at most ${limit}`;
  state.dataset.limit = limit ?? "";
}

// Vehicles that reported in but are not in the fleet (shown only when there are any); an
// operator admits one with its button, after checking it is a vehicle the plant expects.
function fillPending(pending) {
  document.getElementById("pending-section").hidden = pending.length === 0;
  document.getElementById("pending-count").textContent = pending.length ? `(${pending.length})` : "";
  document.querySelector("#pending tbody").replaceChildren(...pending.map((p) => {
    const row = document.createElement("tr");
    row.dataset.pending = p.serial_number;
    const texts = [`${p.manufacturer} / ${p.serial_number}`, new Date(p.last_seen * 1000).toLocaleTimeString(), p.messages];
    for (const text of texts) row.appendChild(document.createElement("td")).textContent = text;
    const button = row.appendChild(document.createElement("td")).appendChild(document.createElement("button"));
    button.className = "action";
    button.dataset.admit = p.serial_number;
    button.textContent = "admit";
    button.addEventListener("click", async () => {
      if (!confirm(`Admit ${p.serial_number} of ${p.manufacturer} into the fleet? It will be given work.`)) return;
      await api(`/pending-vehicles/${encodeURIComponent(p.serial_number)}/admit`, { method: "POST" });
      refreshOrders();
    });
    return row;
  }));
}

async function refreshOrders() {
  const [recent, overview, alarms, admission, pending, journal] = await Promise.all([
    api("/orders?newest_first=true&limit=40"), api("/overview"), api("/alarms?open_only=true&limit=100"),
    api("/fleet/admission"), api("/pending-vehicles"), api("/journal?limit=15"),
  ]);
  fillOrders(recent);
  fillGlance(overview);
  fillJournal(journal);
  fillAdmission(admission);
  fillPending(pending);
  const held = {};
  if (alarms.some((a) => a.code === "transfer-failed")) {
    for (const s of await api("/stations")) {
      if (s.cell && s.cell.waiting_for_operator) held[s.cell.vehicle_id] = s.id;
    }
  }
  fillAlarms(alarms, held);
}

function setupForm() {
  const from = document.getElementById("order-from"), to = document.getElementById("order-to");
  for (const s of plant.stations) {
    if (s.kind !== "dropoff") from.add(new Option(s.id, s.id));
    if (s.kind !== "pickup") to.add(new Option(s.id, s.id));
  }
  document.getElementById("order-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const out = document.getElementById("order-result");
    try {
      const body = { from: from.value, to: to.value, priority: Number(document.getElementById("order-priority").value) };
      const order = await api("/orders", { method: "POST", body: JSON.stringify(body) });
      out.textContent = `created ${order.id}`;
      out.dataset.order = order.id;
      refreshOrders();
    } catch (error) {
      out.textContent = `refused: ${error.message}`;
    }
  });
}

function setupAdmission() {
  document.getElementById("admission-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const out = document.getElementById("admission-result");
    const text = document.getElementById("admission-limit").value.trim();
    const limit = text === "" ? null : Number(text);
    if (!confirm(limit === null ? "Let every vehicle work?" : `Let at most ${limit} vehicles work at once?`)) return;
    try {
      fillAdmission(await api("/fleet/admission", { method: "PUT", body: JSON.stringify({ max_working_vehicles: limit }) }));
      out.textContent = "";
    } catch (error) {
      out.textContent = `refused: ${error.message}`;
    }
  });
}

// The shift report (from storage) opens in a tab of its own: fetched with the key in a header,
// so the key never goes into an address.
function setupReport() {
  document.getElementById("report").addEventListener("click", async () => {
    const headers = apiKey ? { "x-api-key": apiKey } : {};
    const response = await fetch("/api/v1/report?hours=8", { headers });
    const page = URL.createObjectURL(new Blob([await response.text()], { type: "text/html" }));
    window.open(page, "_blank");
  });
}

function setupStop() {
  const button = document.getElementById("estop");
  button.addEventListener("click", async () => {
    if (!fleetPaused && !confirm("Pause the whole fleet?")) return;
    const state = await api(`/fleet/${fleetPaused ? "resume" : "pause"}`, { method: "POST" });
    fleetPaused = state.paused;
    button.textContent = fleetPaused ? "RESUME FLEET" : "EMERGENCY PAUSE";
    button.classList.toggle("paused", fleetPaused);
  });
}

// The sign-in form, shown instead of the control room while no accepted key is held.
function signIn(why) {
  document.body.classList.add("signed-out");
  document.getElementById("signin-why").textContent = why;
  const form = document.getElementById("signin");
  form.hidden = false;
  document.getElementById("signin-key").focus();
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    sessionStorage.setItem("fleet-key", document.getElementById("signin-key").value.trim());
    location.reload();
  });
}

async function main() {
  let role;
  try {
    role = (await api("/whoami")).role;
  } catch (error) {
    signIn(apiKey ? `that key is not accepted (${error.message})` : "");
    return;
  }
  if (role === "plc") {
    signIn("a PLC key reads only its own station: sign in with a viewer, operator or admin key");
    return;
  }
  document.body.classList.remove("signed-out");
  document.body.classList.toggle("viewer", role === "viewer");
  plant = await api("/map");
  plant.nodeById = Object.fromEntries(plant.nodes.map((n) => [n.id, n]));
  document.getElementById("plant").textContent = plant.name;
  drawMap(plant, plant.closed_lanes ?? []);
  setupForm();
  setupAdmission();
  setupStop();
  setupReport();
  setupPanZoom();
  await Promise.all([refresh(), refreshOrders(), refreshKpis()]);
  setInterval(refresh, 500);
  setInterval(refreshOrders, 2000);
  setInterval(refreshClosures, 2000);
  setInterval(refreshKpis, 10000);
}

main();
