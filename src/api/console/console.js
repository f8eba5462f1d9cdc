// The operator console of itsd (docs/console.md): a grid of live camera tiles, a camera page
// with live counts, the stage budgets, the camera's events and a scene editor, and the list of
// every camera's events; an event opens its snapshot and plays its clip. Plain browser
// JavaScript, no framework; everything comes from itsd's own API.
"use strict";

const TILE_MS = 250; // a visible tile asks for its next picture this long after the last came
const STATUS_MS = 2000;
const LIST_MS = 10000; // the grid looks for added and removed cameras this often
const EVENTS_MS = 2000; // an event list asks for new events this often (while the page shows)
const EVENTS_MAX = 30; // events listed (the newest)
const CLIP_WAIT_MS = 1000; // a clip still being written is asked for again this often,
const CLIP_WAIT_TRIES = 120; // this many times at most (evidence.post_s is seconds)
const $ = (id) => document.getElementById(id);

// ---- the API ------------------------------------------------------------------------------

function token() {
  return localStorage.getItem("itsd-token") || "";
}

function api(path, opts) {
  opts = opts || {};
  const headers = Object.assign({}, opts.headers || {});
  if (token()) headers["Authorization"] = "Bearer " + token();
  return fetch(path, Object.assign({}, opts, { headers: headers, cache: "no-store" }));
}

async function apiJson(path) {
  const r = await api(path);
  if (!r.ok) throw new Error(path + ": " + r.status);
  return r.json();
}

// A picture into an <img> or for a canvas: fetched as a blob (so the token goes along). width:
// itsd scales it down to that many pixels across (a tile's size), 0: the frame's own size.
async function picture(id, annotate, width) {
  const r = await api("/v1/cameras/" + encodeURIComponent(id) + "/snapshot.jpg?annotate=" +
                      (annotate ? 1 : 0) + (width ? "&width=" + width : ""));
  if (!r.ok) throw new Error("snapshot " + r.status);
  return r.blob();
}

// ---- the tile grid ------------------------------------------------------------------------

const tiles = new Map(); // camera id -> {el, img, visible, busy}
let observer = null;

function tileLoop(t) {
  if (t.busy || !t.visible || currentView() !== "grid") return;
  t.busy = true;
  const width = Math.max(16, Math.min(8192, Math.ceil(t.img.clientWidth * devicePixelRatio)));
  picture(t.id, true, width)
    .then((blob) => {
      const url = URL.createObjectURL(blob);
      t.img.onload = () => {
        if (t.url) URL.revokeObjectURL(t.url);
        t.url = url;
        t.img.dataset.frames = String(Number(t.img.dataset.frames || 0) + 1);
      };
      t.img.src = url;
    })
    .catch(() => {})
    .finally(() => {
      t.busy = false;
      setTimeout(() => tileLoop(t), TILE_MS);
    });
}

async function showGrid() {
  $("grid-view").hidden = false;
  $("camera-view").hidden = true;
  $("events-view").hidden = true;
  $("where").textContent = "cameras";
  stopCamera();
  stopAllEvents();
  let list;
  try {
    list = (await apiJson("/v1/cameras")).cameras;
  } catch (e) {
    $("grid-empty").hidden = false;
    $("grid-empty").textContent = "Cannot list the cameras (" + e.message + ").";
    return;
  }
  const grid = $("grid");
  const ids = new Set(list.map((c) => c.id));
  for (const [id, t] of tiles)
    if (!ids.has(id)) {
      observer.unobserve(t.el);
      t.el.remove();
      tiles.delete(id);
    }
  for (const c of list) {
    if (tiles.has(c.id)) continue;
    const el = document.createElement("div");
    el.className = "tile";
    el.dataset.camera = c.id;
    const img = document.createElement("img");
    img.alt = c.id;
    const label = document.createElement("span");
    label.textContent = c.id;
    el.append(img, label);
    el.onclick = () => (location.hash = "#camera=" + encodeURIComponent(c.id));
    grid.append(el);
    const t = { id: c.id, el: el, img: img, visible: false, busy: false };
    tiles.set(c.id, t);
    observer.observe(el);
  }
  $("grid-empty").hidden = list.length > 0;
  for (const t of tiles.values()) tileLoop(t);
}

// ---- the camera page ----------------------------------------------------------------------

let cam = null; // {id, scene (edited), applied, img, events, timers, mode, pending, ...}

function currentCamera() {
  const m = /^#camera=(.+)$/.exec(location.hash);
  return m ? decodeURIComponent(m[1]) : null;
}

function currentView() {
  if (currentCamera() !== null) return "camera";
  return location.hash === "#events" ? "events" : "grid";
}

function stopCamera() {
  if (!cam) return;
  cam.stopped = true;
  if (cam.events) cam.events.close();
  stopEvents(cam.evlist);
  for (const t of cam.timers) clearInterval(t);
  cam = null;
}

async function showCamera(id) {
  stopCamera();
  stopAllEvents();
  $("grid-view").hidden = true;
  $("events-view").hidden = true;
  $("camera-view").hidden = false;
  $("where").textContent = id;
  cam = { id: id, scene: null, applied: null, img: null, timers: [], mode: null,
          pending: [], selected: null, drag: null, stopped: false };
  const c = cam;
  loadScene(c);
  pictureLoop(c);
  liveCounts(c);
  c.evlist = eventList($("cam-events"), $("cam-events-empty"), id);
  status(c);
  c.timers.push(setInterval(() => status(c), STATUS_MS));
}

async function loadScene(c) {
  try {
    const s = await apiJson("/v1/cameras/" + encodeURIComponent(c.id) + "/scene");
    c.applied = JSON.stringify(s);
    c.scene = s;
    c.selected = null;
    message("");
  } catch (e) {
    message("scene not available yet (" + e.message + "); retrying");
    if (!c.stopped) setTimeout(() => loadScene(c), 1000);
  }
  draw(c);
}

function pictureLoop(c) {
  if (c.stopped) return;
  picture(c.id, true, 0) // the frame's pixels: the editor's points are the scene's
    .then((blob) => createImageBitmap(blob))
    .then((bmp) => {
      c.img = bmp;
      const cv = $("picture");
      if (cv.width !== bmp.width || cv.height !== bmp.height) {
        cv.width = bmp.width;
        cv.height = bmp.height;
      }
      draw(c);
    })
    .catch(() => {})
    .finally(() => setTimeout(() => pictureLoop(c), TILE_MS));
}

// Live counts: the camera's event stream (Server-Sent Events). EventSource cannot send a
// token, so with one the same stream is read with fetch, one event per request.
function liveCounts(c) {
  const url = "/v1/cameras/" + encodeURIComponent(c.id) + "/events";
  if (!token()) {
    const open = () => {
      if (c.stopped) return;
      c.events = new EventSource(url);
      c.events.addEventListener("report", (ev) => showReport(JSON.parse(ev.data)));
      // an answer that is not a stream (503 before the camera's first frame) closes the
      // EventSource for good: open it again a second later
      c.events.onerror = () => {
        if (c.events.readyState === EventSource.CLOSED) setTimeout(open, 1000);
      };
    };
    open();
    return;
  }
  const poll = async () => {
    if (c.stopped) return;
    try {
      const text = await (await api(url)).text();
      const data = text.split("\n").filter((l) => l.startsWith("data: "));
      if (data.length) showReport(JSON.parse(data[0].slice(6)));
    } catch (e) {}
    setTimeout(poll, 1000);
  };
  poll();
}

function cell(tr, text, cls) {
  const td = document.createElement("td");
  td.textContent = text;
  if (cls) td.className = cls;
  tr.append(td);
}

function fmt(v, d) {
  return v === null || v === undefined ? "–" : Number(v).toFixed(d);
}

function fill(tbody, rows) {
  tbody.replaceChildren(...rows);
}

function showReport(msg) {
  const rep = msg.report;
  const counts = [], flow = [], zones = [];
  for (const l of rep.lines || []) {
    for (const [cls, d] of Object.entries(l.total)) {
      if (!d[0] && !d[1] && !["car", "truck", "bus"].includes(cls)) continue;
      const tr = document.createElement("tr");
      cell(tr, l.name, "name");
      cell(tr, cls);
      cell(tr, d[0]);
      cell(tr, d[1]);
      tr.dataset.line = l.name;
      tr.dataset.cls = cls;
      counts.push(tr);
    }
    const w = l.window_1min, tr = document.createElement("tr");
    cell(tr, l.name, "name");
    cell(tr, fmt(w.flow_vph, 0));
    cell(tr, fmt(w.space_mean_speed_kmh, 1));
    cell(tr, fmt(w.density_veh_per_km_lane, 1));
    cell(tr, w.los || "–");
    flow.push(tr);
  }
  for (const z of rep.zones || []) {
    const tr = document.createElement("tr");
    cell(tr, "zone " + z.name, "name");
    cell(tr, z.count_now + " now, " + z.entries + " entered");
    zones.push(tr);
  }
  for (const q of rep.lanes || []) {
    const tr = document.createElement("tr");
    cell(tr, "queue " + q.name, "name");
    cell(tr, q.queue_vehicles + " veh, " + fmt(q.queue_m, 0) + " m");
    zones.push(tr);
  }
  const inc = document.createElement("tr");
  cell(inc, "incidents", "name");
  cell(inc, Object.entries(rep.incidents || {}).map(([k, v]) => k + " " + v).join(", "));
  zones.push(inc);
  const sp = document.createElement("tr");
  cell(sp, "tracks, mean speed", "name");
  cell(sp, rep.tracks_now + ", " + fmt(rep.mean_speed_kmh, 1) + " km/h");
  zones.push(sp);
  fill($("counts").tBodies[0], counts);
  fill($("flow").tBodies[0], flow);
  fill($("zones").tBodies[0], zones);
  $("counts-age").textContent = "frame " + msg.frame;
}

async function status(c) {
  try {
    const st = await apiJson("/v1/status");
    if (c.stopped) return;
    const rows = [];
    const all = (st.stages || []).concat(st.end_to_end ? [Object.assign({ stage: "end to end" },
                                                                          st.end_to_end)] : []);
    for (const s of all) {
      const tr = document.createElement("tr");
      if (s.over_budget) tr.className = "over";
      cell(tr, s.stage, "name");
      cell(tr, fmt(s.p99_ms, 1));
      cell(tr, fmt(s.budget_ms, 0));
      rows.push(tr);
    }
    fill($("stages").tBodies[0], rows);
  } catch (e) {}
}

// ---- events: the lists and the viewer -----------------------------------------------------

// A live list of the events that kept evidence (GET /v1/events, one camera's or all), newest
// first, asked for again every EVENTS_MS while the page is shown. Each event's thumbnail is its
// snapshot, fetched once and only when its row scrolls into view.
let thumbObserver = null;
let allEvents = null; // the events view's list

function eventList(ul, empty, camera) {
  ul.replaceChildren();
  const l = { ul: ul, empty: empty, camera: camera, items: new Map(), stopped: false,
              timer: null };
  const tick = async () => {
    if (l.stopped) return;
    if (!document.hidden) await refreshEvents(l);
    if (!l.stopped) l.timer = setTimeout(tick, EVENTS_MS);
  };
  tick();
  return l;
}

function stopEvents(l) {
  if (!l) return;
  l.stopped = true;
  clearTimeout(l.timer);
  for (const it of l.items.values()) dropItem(it);
  l.items.clear();
}

function stopAllEvents() {
  stopEvents(allEvents);
  allEvents = null;
}

function dropItem(it) {
  thumbObserver.unobserve(it.li);
  it.li.remove();
  if (it.url) URL.revokeObjectURL(it.url);
  it.url = null;
}

function placeText(e) {
  if (e.line) return "line " + e.line + (e.direction === "negative" ? " (−)" : " (+)");
  if (e.zone) return "zone " + e.zone;
  if (e.lane) return "lane " + e.lane;
  return "";
}

function clipState(e) {
  return e.clip ? "clip" : e.clip_pending ? "clip pending" : "no clip";
}

function eventItem(l, e) {
  const li = document.createElement("li");
  li.className = "event";
  li.dataset.id = e.id;
  const img = document.createElement("img");
  img.alt = e.kind;
  const meta = document.createElement("div");
  meta.className = "meta";
  const line = (cls, text) => {
    const sp = document.createElement("span");
    sp.className = cls;
    sp.textContent = text;
    meta.append(sp);
    return sp;
  };
  line("kind", e.kind.replace(/_/g, " "));
  line("time", new Date(e.ts_us / 1000).toLocaleString());
  if (!l.camera) line("camera", "camera " + e.camera);
  line("what", [e.class, placeText(e)].filter((x) => x).join(", "));
  const it = { ev: e, li: li, img: img, url: null, loading: false, clip: line("clip", "") };
  li.append(img, meta);
  li.onclick = () => openEvent(it.ev);
  return it;
}

async function loadThumb(it) {
  if (it.url || it.loading || !it.ev.snapshot) return;
  it.loading = true;
  try {
    const r = await api(it.ev.snapshot);
    if (!r.ok) throw new Error(r.status);
    const url = URL.createObjectURL(await r.blob());
    if (!it.li.isConnected) return URL.revokeObjectURL(url);
    it.url = url;
    it.img.src = url;
  } catch (e) {
    it.img.alt = "no snapshot";
  } finally {
    it.loading = false;
  }
}

async function refreshEvents(l) {
  let list;
  try {
    list = (await apiJson("/v1/events?limit=" + EVENTS_MAX +
                          (l.camera ? "&camera=" + encodeURIComponent(l.camera) : ""))).events;
  } catch (e) {
    l.empty.hidden = false;
    l.empty.textContent = "Cannot list the events (" + e.message + ").";
    return;
  }
  if (l.stopped) return;
  l.empty.hidden = list.length > 0;
  l.empty.textContent = "No events with evidence yet (itsd keeps them with evidence.dir set).";
  const ids = new Set(list.map((e) => e.id));
  for (const [id, it] of l.items)
    if (!ids.has(id)) {
      dropItem(it);
      l.items.delete(id);
    }
  let prev = null;
  for (const e of list) {
    let it = l.items.get(e.id);
    if (!it) {
      it = eventItem(l, e);
      l.items.set(e.id, it);
    }
    it.ev = e;
    it.li.dataset.clip = clipState(e);
    it.clip.textContent = clipState(e);
    const want = prev ? prev.nextSibling : l.ul.firstChild;
    if (it.li !== want) l.ul.insertBefore(it.li, want);
    if (!it.observed) {
      it.observed = true;
      thumbObserver.observe(it.li);
    }
    prev = it.li;
  }
}

async function showEvents() {
  stopCamera();
  stopAllEvents();
  $("grid-view").hidden = true;
  $("camera-view").hidden = true;
  $("events-view").hidden = false;
  $("where").textContent = "events";
  allEvents = eventList($("all-events"), $("all-events-empty"), null);
}

// The viewer: the event's annotated snapshot, large, and its clip in a <video>. Both are
// fetched (with the token, like every picture) and shown from blob URLs; a clip still being
// written (clip_pending: its post_s has not passed) is asked for again until it is there.
let viewer = { gen: 0, urls: [] };

function closeViewer() {
  viewer.gen++;
  $("viewer").hidden = true;
  const v = $("viewer-clip");
  v.pause();
  v.removeAttribute("src");
  v.load();
  $("viewer-snapshot").removeAttribute("src");
  for (const u of viewer.urls) URL.revokeObjectURL(u);
  viewer.urls = [];
}

async function blobUrl(path, gen) {
  const r = await api(path);
  if (!r.ok) {
    const err = new Error(path + ": " + r.status);
    err.status = r.status;
    throw err;
  }
  const blob = await r.blob();
  if (gen !== viewer.gen) return null;
  const url = URL.createObjectURL(blob);
  viewer.urls.push(url);
  return url;
}

async function openEvent(e) {
  closeViewer();
  const gen = viewer.gen;
  $("viewer").hidden = false;
  $("viewer").dataset.id = e.id;
  $("viewer-caption").textContent = [e.kind.replace(/_/g, " "), "camera " + e.camera,
    new Date(e.ts_us / 1000).toLocaleString(), e.class, placeText(e)].filter((x) => x).join(" · ");
  const note = $("viewer-clip-note");
  if (e.snapshot)
    blobUrl(e.snapshot, gen).then((u) => u && ($("viewer-snapshot").src = u)).catch(() => {});
  if (!e.clip && !e.clip_pending) {
    note.textContent = "no clip: this camera keeps no video packets (replay and push cameras)";
    return;
  }
  const clip = e.clip || "/v1/events/" + encodeURIComponent(e.id) + "/clip.mp4";
  for (let tries = 1;; tries++) {
    if (gen !== viewer.gen) return;
    try {
      const u = await blobUrl(clip, gen);
      if (!u) return;
      const v = $("viewer-clip");
      v.src = u;
      note.textContent = "clip: evidence.pre_s before the event to evidence.post_s after it";
      v.play().catch(() => {});
      return;
    } catch (err) {
      if (err.status !== 404) {
        note.textContent = "no clip (" + err.message + ")";
        return;
      }
      if (!e.clip_pending) {
        note.textContent = "the clip is gone (the evidence folder's size or age limit)";
        return;
      }
      if (tries >= CLIP_WAIT_TRIES) {
        note.textContent = "no clip: it was not written (its video had left the camera's ring)";
        return;
      }
      note.textContent = "the clip is being written (it ends evidence.post_s after the event)…";
      await new Promise((res) => setTimeout(res, CLIP_WAIT_MS));
    }
  }
}

// ---- the scene editor ---------------------------------------------------------------------

function message(text) {
  $("editor-msg").textContent = text;
}

function toImage(ev) {
  const cv = $("picture"), r = cv.getBoundingClientRect();
  return [Math.round((ev.clientX - r.left) * cv.width / r.width),
          Math.round((ev.clientY - r.top) * cv.height / r.height)];
}

function shapes(s) {
  // every editable point: [kind, index, point index, the point array]
  const out = [];
  (s.lines || []).forEach((l, i) => l.points.forEach((p, k) => out.push(["line", i, k, p])));
  (s.zones || []).forEach((z, i) => z.polygon.forEach((p, k) => out.push(["zone", i, k, p])));
  (s.lanes || []).forEach((z, i) => z.polygon.forEach((p, k) => out.push(["lane", i, k, p])));
  if (s.calibration) s.calibration.image.forEach((p, k) => out.push(["calib", 0, k, p]));
  return out;
}

function near(p, q, d) {
  return Math.hypot(p[0] - q[0], p[1] - q[1]) <= d;
}

function segDist(p, a, b) {
  const dx = b[0] - a[0], dy = b[1] - a[1], l2 = dx * dx + dy * dy;
  const t = l2 ? Math.max(0, Math.min(1, ((p[0] - a[0]) * dx + (p[1] - a[1]) * dy) / l2)) : 0;
  return Math.hypot(p[0] - a[0] - t * dx, p[1] - a[1] - t * dy);
}

function uniqueName(base, list) {
  const names = new Set(list.map((x) => x.name));
  if (base && !names.has(base)) return base;
  base = base || "line";
  for (let i = 1;; i++)
    if (!names.has(base + "_" + i)) return base + "_" + i;
}

function onDown(ev) {
  const c = cam;
  if (!c || !c.scene) return;
  const p = toImage(ev), tol = 10 * $("picture").width / $("picture").getBoundingClientRect().width;
  if (c.mode) {
    c.pending.push(p);
    if (c.mode === "calib" && c.pending.length === 4) {
      const road = $("road-points").value.trim().split(/\s+/).map((xy) => xy.split(",").map(Number));
      if (road.length !== 4 || road.some((q) => q.length !== 2 || q.some((v) => !isFinite(v)))) {
        setMode(null);
        return message("road points: four x,y pairs in metres, e.g. 0,0 3.5,0 3.5,20 0,20");
      }
      c.scene.calibration = { image: c.pending.slice(), road: road };
      setMode(null);
      message("calibration set: save to apply");
      draw(c);
      return;
    }
    if (c.mode === "line" && c.pending.length === 2) {
      const [a, b] = c.pending;
      // positive: across the line, to the right of a -> b in image coordinates
      const dx = b[0] - a[0], dy = b[1] - a[1], n = Math.hypot(dx, dy) || 1;
      c.scene.lines = c.scene.lines || [];
      const name = uniqueName($("shape-name").value.trim(), c.scene.lines);
      c.scene.lines.push({ name: name, points: [a, b],
                           positive: [-Math.round(dy / n * 100) / 100, Math.round(dx / n * 100) / 100],
                           lanes: 1 });
      c.selected = ["line", c.scene.lines.length - 1];
      setMode(null);
    }
    $("close-zone").disabled = !((c.mode === "zone" || c.mode === "lane") && c.pending.length >= 3);
    draw(c);
    return;
  }
  for (const [kind, i, k, pt] of shapes(c.scene))
    if (near(pt, p, tol)) {
      c.drag = [kind, i, k];
      c.selected = [kind, i];
      draw(c);
      return;
    }
  c.selected = null;
  (c.scene.lines || []).forEach((l, i) => {
    if (segDist(p, l.points[0], l.points[1]) <= tol) c.selected = ["line", i];
  });
  for (const kind of ["zone", "lane"])
    if (!c.selected)
      (c.scene[kind + "s"] || []).forEach((z, i) => {
        for (let k = 0; k < z.polygon.length; k++)
          if (segDist(p, z.polygon[k], z.polygon[(k + 1) % z.polygon.length]) <= tol)
            c.selected = [kind, i];
      });
  draw(c);
}

function onMove(ev) {
  const c = cam;
  if (!c || !c.drag) return;
  const [kind, i, k] = c.drag, p = toImage(ev);
  if (kind === "line") c.scene.lines[i].points[k] = p;
  else if (kind === "calib") c.scene.calibration.image[k] = p;
  else c.scene[kind + "s"][i].polygon[k] = p;
  draw(c);
}

function onUp() {
  if (cam) cam.drag = null;
}

function setMode(mode) {
  if (!cam) return;
  cam.mode = mode;
  cam.pending = [];
  $("add-line").classList.toggle("active", mode === "line");
  $("add-zone").classList.toggle("active", mode === "zone");
  $("add-lane").classList.toggle("active", mode === "lane");
  $("calibrate").classList.toggle("active", mode === "calib");
  $("close-zone").disabled = true;
  message(mode === "line" ? "click the line's two end points"
          : mode === "zone" ? "click the zone's corners, then Close"
          : mode === "lane" ? "click the lane's corners, its entry edge first, then Close"
          : mode === "calib" ? "click the four road points, in the order of the road coordinates"
          : "");
}

function closeZone() {
  const c = cam;
  if (!c || c.pending.length < 3) return;
  const poly = c.pending.slice();
  if (c.mode === "lane") {
    // travel: from the middle of the entry edge (the first two corners) to the centroid
    const cx = poly.reduce((a, q) => a + q[0], 0) / poly.length;
    const cy = poly.reduce((a, q) => a + q[1], 0) / poly.length;
    const ex = (poly[0][0] + poly[1][0]) / 2, ey = (poly[0][1] + poly[1][1]) / 2;
    const n = Math.hypot(cx - ex, cy - ey) || 1;
    c.scene.lanes = c.scene.lanes || [];
    const name = uniqueName($("shape-name").value.trim() || "lane", c.scene.lanes);
    c.scene.lanes.push({ name: name, polygon: poly, direction: [
      Math.round((cx - ex) / n * 100) / 100, Math.round((cy - ey) / n * 100) / 100] });
    c.selected = ["lane", c.scene.lanes.length - 1];
  } else {
    c.scene.zones = c.scene.zones || [];
    const name = uniqueName($("shape-name").value.trim() || "zone", c.scene.zones);
    c.scene.zones.push({ name: name, polygon: poly, walk: false });
    c.selected = ["zone", c.scene.zones.length - 1];
  }
  setMode(null);
  draw(c);
}

function flip() {
  const c = cam;
  if (!c || !c.selected || (c.selected[0] !== "line" && c.selected[0] !== "lane"))
    return message("select a line or lane first");
  if (c.selected[0] === "line") {
    const l = c.scene.lines[c.selected[1]];
    l.positive = [-l.positive[0], -l.positive[1]];
  } else {
    const l = c.scene.lanes[c.selected[1]];
    l.direction = [-l.direction[0], -l.direction[1]];
  }
  draw(c);
}

function del() {
  const c = cam;
  if (!c || !c.selected || c.selected[0] === "calib")
    return message("select a line, zone or lane first");
  const [kind, i] = c.selected;
  const list = c.scene[kind + "s"];
  const name = list[i].name;
  if (kind === "line")
    for (const lane of c.scene.lanes || [])
      if (lane.stop_line === name) delete lane.stop_line;
  list.splice(i, 1);
  c.selected = null;
  draw(c);
}

async function save() {
  const c = cam;
  if (!c || !c.scene) return;
  message("saving…");
  const r = await api("/v1/cameras/" + encodeURIComponent(c.id) + "/scene", {
    method: "PUT", headers: { "Content-Type": "application/json" },
    body: JSON.stringify(c.scene) });
  let body = {};
  try {
    body = await r.json();
  } catch (e) {}
  if (r.ok) {
    c.applied = JSON.stringify(c.scene);
    message("saved" + (body.saved_to ? " to " + body.saved_to : "") + " and applied");
    $("save").dataset.saved = String(Number($("save").dataset.saved || 0) + 1);
  } else {
    message("not saved: " + (body.error ? body.error.message : r.status));
  }
}

function arrow(g, a, b, pos) {
  const mx = (a[0] + b[0]) / 2, my = (a[1] + b[1]) / 2, n = Math.hypot(pos[0], pos[1]) || 1;
  const ux = pos[0] / n, uy = pos[1] / n, len = 18;
  g.beginPath();
  g.moveTo(mx, my);
  g.lineTo(mx + ux * len, my + uy * len);
  g.lineTo(mx + ux * len * 0.5 - uy * 6, my + uy * len * 0.5 + ux * 6);
  g.moveTo(mx + ux * len, my + uy * len);
  g.lineTo(mx + ux * len * 0.5 + uy * 6, my + uy * len * 0.5 - ux * 6);
  g.stroke();
}

function draw(c) {
  if (!c || c !== cam) return;
  const cv = $("picture"), g = cv.getContext("2d");
  if (c.img) g.drawImage(c.img, 0, 0);
  else {
    g.fillStyle = "#000";
    g.fillRect(0, 0, cv.width, cv.height);
  }
  if (!c.scene) return;
  const sel = (kind, i) => c.selected && c.selected[0] === kind && c.selected[1] === i;
  g.lineWidth = 2;
  g.font = "13px sans-serif";
  (c.scene.zones || []).forEach((z, i) => {
    g.strokeStyle = g.fillStyle = sel("zone", i) ? "#ffffff" : "#ff4fd8";
    g.beginPath();
    z.polygon.forEach((p, k) => (k ? g.lineTo(p[0], p[1]) : g.moveTo(p[0], p[1])));
    g.closePath();
    g.stroke();
    g.fillText(z.name, z.polygon[0][0] + 4, z.polygon[0][1] + 14);
  });
  (c.scene.lanes || []).forEach((z, i) => {
    g.strokeStyle = g.fillStyle = sel("lane", i) ? "#ffffff" : "#c08aff";
    g.setLineDash([6, 4]);
    g.beginPath();
    z.polygon.forEach((p, k) => (k ? g.lineTo(p[0], p[1]) : g.moveTo(p[0], p[1])));
    g.closePath();
    g.stroke();
    g.setLineDash([]);
    const cx = z.polygon.reduce((a, q) => a + q[0], 0) / z.polygon.length;
    const cy = z.polygon.reduce((a, q) => a + q[1], 0) / z.polygon.length;
    const d = z.direction, n = Math.hypot(d[0], d[1]) || 1;
    arrow(g, [cx - d[0] / n * 20, cy - d[1] / n * 20], [cx + d[0] / n * 20, cy + d[1] / n * 20],
          [d[0], d[1]]);
    g.fillText(z.name, cx + 6, cy);
  });
  if (c.scene.calibration) {
    g.fillStyle = "#00ff88";
    c.scene.calibration.image.forEach((p, k) => {
      g.beginPath();
      g.arc(p[0], p[1], 5, 0, 2 * Math.PI);
      g.fill();
      g.fillText(String(k + 1), p[0] + 7, p[1] - 5);
    });
  }
  (c.scene.lines || []).forEach((l, i) => {
    const [a, b] = l.points;
    g.strokeStyle = g.fillStyle = sel("line", i) ? "#ffffff" : "#ff4fd8";
    g.lineWidth = 3;
    g.beginPath();
    g.moveTo(a[0], a[1]);
    g.lineTo(b[0], b[1]);
    g.stroke();
    g.lineWidth = 2;
    arrow(g, a, b, l.positive);
    g.fillText(l.name, a[0] + 4, a[1] - 6);
  });
  g.fillStyle = "#ff4fd8";
  for (const [, , , p] of shapes(c.scene)) g.fillRect(p[0] - 3, p[1] - 3, 6, 6);
  g.fillStyle = "#00ff88";
  for (const p of c.pending) g.fillRect(p[0] - 4, p[1] - 4, 8, 8);
}

// ---- wiring -------------------------------------------------------------------------------

function route() {
  closeViewer();
  const view = currentView();
  if (view === "camera") showCamera(currentCamera());
  else if (view === "events") showEvents();
  else showGrid();
}

function init() {
  $("token").value = token();
  $("token").onchange = () => {
    localStorage.setItem("itsd-token", $("token").value);
    route();
  };
  observer = new IntersectionObserver((entries) => {
    for (const e of entries) {
      const t = tiles.get(e.target.dataset.camera);
      if (!t) continue;
      t.visible = e.isIntersecting;
      tileLoop(t);
    }
  });
  thumbObserver = new IntersectionObserver((entries) => {
    for (const e of entries) {
      if (!e.isIntersecting) continue;
      const l = cam && cam.evlist && cam.evlist.items.has(e.target.dataset.id) ? cam.evlist
                : allEvents;
      const it = l && l.items.get(e.target.dataset.id);
      if (it) loadThumb(it);
    }
  });
  $("viewer-close").onclick = closeViewer;
  $("viewer").onclick = (ev) => {
    if (ev.target === $("viewer")) closeViewer();
  };
  window.addEventListener("keydown", (ev) => {
    if (ev.key === "Escape" && !$("viewer").hidden) closeViewer();
  });
  const cv = $("picture");
  cv.addEventListener("mousedown", onDown);
  cv.addEventListener("mousemove", onMove);
  window.addEventListener("mouseup", onUp);
  $("add-line").onclick = () => setMode(cam && cam.mode === "line" ? null : "line");
  $("add-zone").onclick = () => setMode(cam && cam.mode === "zone" ? null : "zone");
  $("add-lane").onclick = () => setMode(cam && cam.mode === "lane" ? null : "lane");
  $("calibrate").onclick = () => setMode(cam && cam.mode === "calib" ? null : "calib");
  $("close-zone").onclick = closeZone;
  $("flip").onclick = flip;
  $("delete").onclick = del;
  $("revert").onclick = () => cam && loadScene(cam);
  $("save").onclick = save;
  window.addEventListener("hashchange", route);
  setInterval(() => {
    if (currentView() === "grid") showGrid();
  }, LIST_MS);
  route();
}

init();
