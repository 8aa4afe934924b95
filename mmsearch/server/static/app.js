// mmsearch page: the query lives in the URL (?q=…&modality=…&channel=…&explain=1&then=…&within=…&top_k=…, or
// ?like=ID&start=&end=, or ?image=SHA), and so does an open moment (&open=FILE_ID&t=START&end=END): every moment
// has a link. Every search is a fetch of /api/search, every card a moment. No framework, no build step.
// The player's timeline is timeline.js, the clip list cliplist.js.
"use strict";

const $ = (sel) => document.querySelector(sel);
const KIND_LABEL = { frame: "video", speech: "speech", image: "image", ocr: "on-screen text", audio: "sound", face: "face", subtitle: "subtitle" };
const PAGE = 10; // results per "more results"
let lastResults = [];
let lastState = null;
let channelLabels = {}; // channel name -> the label /api/info gives it
let channelQueries = {}; // channel name -> the queries it can search with (text, image, like)

function clock(s) {
  if (s === null || s === undefined) return "";
  const t = Math.floor(s), h = Math.floor(t / 3600), m = Math.floor((t % 3600) / 60), sec = t % 60;
  const mm = String(m).padStart(2, "0"), ss = String(sec).padStart(2, "0");
  return h ? `${h}:${mm}:${ss}` : `${mm}:${ss}`;
}

function span(r) {
  return r.start === null ? "" : `${clock(r.start)}–${clock(r.end)}`;
}

function baseName(path) {
  return path.split(/[\\/]/).pop(); // a server on Windows sends C:\media\clip.mp4
}

// The API labels an example as `like:/full/path@START-END`: a person reads the file's name and the time range.
function queryLabel(query) {
  const m = /^like:(.*?)(?:@([\d.]+)-([\d.]+))?$/.exec(query);
  if (!m) return query;
  return `like: ${baseName(m[1])}${m[2] ? ` ${clock(Number(m[2]))}–${clock(Number(m[3]))}` : ""}`;
}

function stateFromUrl() {
  const p = new URLSearchParams(location.search);
  return {
    q: p.get("q") || "",
    like: p.get("like"),
    person: p.get("person"), // a person's id (people.js): their moments, or a filter on the words
    start: p.get("start"),
    end: p.get("end"),
    image: p.get("image"),
    then: p.getAll("then"),
    within: p.get("within"),
    group: p.get("group") === "1",
    open: p.get("open"),
    t: p.get("t"),
    tEnd: p.get("t_end"),
    modality: p.get("modality") || "any",
    channels: p.getAll("channel"),
    explain: p.get("explain") === "1",
    // No controls on the page: kept from a link (`&fusion=rrf&top_k=30`) for as long as the query is refined.
    fusion: p.get("fusion"),
    top_k: p.get("top_k"),
  };
}

function stateFromForm() {
  const boxes = [...document.querySelectorAll('input[name="channel"]')];
  const chosen = boxes.filter((c) => c.checked).map((c) => c.value);
  return {
    q: $("#q").value.trim(),
    modality: $("#modality").value,
    channels: chosen.length === boxes.length ? [] : chosen, // all of them: no filter, as the CLI's default
    explain: $("#explain").checked,
    then: $("#then").value.split(";").map((t) => t.trim()).filter(Boolean),
    within: $("#within").value && Number($("#within").value) !== 60 ? $("#within").value : null,
    group: $("#group").checked,
    fusion: stateFromUrl().fusion,
    top_k: null, // a new search starts at the first page
  };
}

function showInForm(state) {
  $("#q").value = state.q || "";
  $("#modality").value = state.modality;
  showChannels(state);
  $("#explain").checked = state.explain;
  $("#then").value = (state.then || []).join("; ");
  $("#within").value = state.within || 60;
  $("#group").checked = state.group;
}

function showChannels(state) {
  for (const box of document.querySelectorAll('input[name="channel"]')) {
    box.checked = state.channels.length === 0 || state.channels.includes(box.value);
  }
}

// The channel filters: one checkbox per channel this index has (/api/info), labelled for people.
function renderChannels(channels) {
  const set = $("#channels");
  for (const old of set.querySelectorAll("label")) old.remove();
  for (const c of channels) {
    const label = document.createElement("label");
    label.title = c.about;
    const box = document.createElement("input");
    Object.assign(box, { type: "checkbox", name: "channel", value: c.name });
    box.addEventListener("change", filtersChanged);
    label.append(box, c.label);
    channelLabels[c.name] = c.label;
    channelQueries[c.name] = c.queries;
    set.appendChild(label);
  }
  set.hidden = channels.length < 2; // a single channel is no choice
  showChannels(stateFromUrl());
}

function filtersChanged() {
  const s = stateFromUrl();
  if (s.q || s.like || s.image) navigate({ ...s, ...stateFromForm(), q: s.q, top_k: s.top_k });
}

// The chosen channels that can search this kind of query (keywords need words: an image has none). None of them
// left: no filter, every channel that applies, rather than an error for a filter the person set for words.
function fitting(channels, kind) {
  return channels.filter((c) => !channelQueries[c] || channelQueries[c].includes(kind));
}

function searchParams(state, kind = "text") {
  const p = new URLSearchParams();
  if (state.like) {
    p.set("like", state.like);
    if (state.start !== null && state.start !== undefined) { p.set("start", state.start); p.set("end", state.end); }
  } else if (state.image) {
    p.set("image", state.image);
  } else if (state.q) {
    p.set("q", state.q);
    for (const part of state.then || []) p.append("then", part);
    if ((state.then || []).length && state.within) p.set("within", state.within);
  }
  if (state.person) p.set("person", state.person);
  if (state.modality && state.modality !== "any") p.set("modality", state.modality);
  for (const c of fitting(state.channels || [], state.like ? "like" : kind)) p.append("channel", c);
  if (state.explain) p.set("explain", "1");
  for (const key of ["fusion", "top_k"]) if (state[key]) p.set(key, state[key]);
  return p;
}

// The page's URL: the search, plus how it is shown (group) and the open moment (open, t, t_end).
function pageParams(state) {
  const p = searchParams(state, state.image ? "image" : "text");
  if (state.group) p.set("group", "1");
  if (state.open) {
    p.set("open", state.open);
    if (state.t !== null && state.t !== undefined) p.set("t", state.t);
    if (state.tEnd !== null && state.tEnd !== undefined) p.set("t_end", state.tEnd);
  }
  return p;
}

function navigate(state) {
  const p = pageParams(state);
  history.pushState(null, "", p.toString() ? `/?${p}` : "/");
  runFromUrl();
}

function setStatus(html, isError = false) {
  const el = $("#status");
  el.innerHTML = html;
  el.classList.toggle("error", isError);
}

function escapeHtml(s) {
  return s.replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
}

// Only the words the keyword channel matched (the server says which: BM25's stemming and stop words) are marked.
function highlight(text, words) {
  let html = escapeHtml(text);
  const usable = (words || []).map((w) => escapeHtml(w).replace(/[.*+?^${}()|[\]\\]/g, "\\$&"));
  if (usable.length) html = html.replace(new RegExp(`(?<![\\w])(${usable.join("|")})(?![\\w])`, "g"), "<mark>$1</mark>");
  return html;
}

// A moment that merged words of several kinds (speech and on-screen text, say) shows each with its own time, so the
// words that were searched for are never hidden behind the transcript; one piece of words: its text, as before.
function wordsHtml(r) {
  const worded = (r.evidence || []).filter((p) => p.text);
  if (new Set(worded.map((p) => p.kind)).size < 2) return r.text ? highlight(r.text, r.matched_words) : "";
  return worded
    .map((p) => {
      const who = p.channel === null || p.channel === undefined ? "" : ` (${p.channel === 0 ? "left" : "right"})`;
      const label = `${KIND_LABEL[p.kind] || p.kind}${who} ${span(p)}`;
      return `<span class="piece"><span class="piece-kind">${escapeHtml(label)}</span> ${highlight(p.text, r.matched_words)}</span>`;
    })
    .join("");
}

// A moment with words that the keyword channel did not match was found by meaning: say so, mark nothing.
function foundBy(r) {
  if (!r.text || (r.matched_words && r.matched_words.length)) return "";
  return r.kind === "speech" || r.kind === "ocr" ? "Found by meaning: none of these words is in the query." : "";
}

async function apiError(response) {
  try {
    const body = await response.json();
    return body;
  } catch {
    return { error: `${response.status} ${response.statusText}`, hint: null };
  }
}

function showError(body, status) {
  if (status === 401) {
    setStatus("This server needs a token: open <code>/?token=YOUR_TOKEN</code> once.", true);
  } else if ((status === 404 || status === 503) && /no index/.test(body.error)) {
    $("#results").innerHTML = "";
    setStatus('<span class="empty"><strong>No index yet</strong>run <code>mmsearch index ./media</code>, then search again.</span>');
    return;
  } else {
    setStatus(escapeHtml(body.error) + (body.hint ? ` <span class="hint">— ${escapeHtml(body.hint)}</span>` : ""), true);
  }
  $("#results").innerHTML = "";
}

async function runFromUrl() {
  const state = stateFromUrl();
  showInForm(state);
  showQueryImage(state.image);
  if (!state.q && !state.like && !state.image && !state.person) {
    $("#results").innerHTML = "";
    $("#more-results").hidden = true;
    setStatus("Type what you are looking for, or drop an image anywhere on the page.");
    return;
  }
  setStatus("Searching…");
  const kind = state.image ? "image" : "text";
  const data = await show(() => fetch(`/api/search?${searchParams(state, kind)}`), state);
  if (data && state.open) openFromUrl(state, data.results);
}

function showQueryImage(sha) {
  const img = $("#query-image");
  img.hidden = !sha;
  if (sha) img.src = `/api/query-image/${sha}`;
  else img.removeAttribute("src");
}

// A moment link (&open=FILE_ID&t=START&t_end=END): the result it names, or the file at that time.
function openFromUrl(state, results) {
  const t = state.t === null ? null : Number(state.t);
  const r = results.find((x) => String(x.file_id) === state.open && (t === null || Math.abs((x.start || 0) - t) < 0.05));
  if (r) { openPlayer(r); return; }
  const same = results.find((x) => String(x.file_id) === state.open);
  openPlayer({
    file_id: Number(state.open), path: same ? same.path : `file ${state.open}`, kind: same ? same.kind : "frame",
    start: t, end: state.tEnd === null ? t : Number(state.tEnd), score: same ? same.score : 0, text: null,
    media_kind: same ? same.media_kind : "video", media_url: `/media/${state.open}`, matched_words: [],
  });
}

async function searchImage(file) {
  if (!file || !file.type.startsWith("image/")) {
    setStatus("That is not an image: drop a JPEG, PNG or WebP.", true);
    return;
  }
  const state = { ...stateFromForm(), q: "", then: [] };
  const body = new FormData();
  body.append("image", file, file.name || "pasted-image");
  const p = searchParams(state, "image");
  $("#q").value = "";
  setStatus(`Searching by image ${escapeHtml(file.name || "")}…`);
  const data = await show(() => fetch(`/api/search?${p}`, { method: "POST", body }), state);
  // The server keeps the image by its hash: the search gets a URL like any other (reload, share, back).
  if (data && data.image) {
    history.pushState(null, "", `/?${pageParams({ ...state, image: data.image })}`);
    lastState = { ...state, image: data.image };
    showQueryImage(data.image);
  }
}

async function show(request, state) {
  const explain = state.explain;
  let response;
  try {
    response = await request();
  } catch {
    $("#results").innerHTML = "";
    setStatus("Cannot reach the mmsearch server: is <code>mmsearch serve</code> still running?", true);
    return;
  }
  if (!response.ok) {
    showError(await apiError(response), response.status);
    $("#more-results").hidden = true;
    return null;
  }
  const data = await response.json();
  lastResults = data.results;
  lastState = state;
  const grid = $("#results");
  grid.innerHTML = "";
  $("#more-results").hidden = data.results.length < Number(state.top_k || PAGE);
  if (!data.results.length) {
    const advice = data.query.startsWith("like:")
      ? "Nothing else in the index is close enough to this moment."
      : "Try other words, or another modality.";
    setStatus(`<span class="empty"><strong>No moments found</strong>for “${escapeHtml(queryLabel(data.query))}”. ${advice}</span>`);
    return data;
  }
  setStatus(`${data.results.length} moment${data.results.length === 1 ? "" : "s"} for <b>${escapeHtml(queryLabel(data.query))}</b>`);
  grid.classList.toggle("grouped", state.group);
  if (state.group) renderGroups(grid, data.results);
  else data.results.forEach((r, i) => grid.appendChild(card(r, i, explain)));
  return data;
}

// "Group by file": one row per file, its matches as markers on a mini timeline (scaled to its last match).
function renderGroups(grid, results) {
  const files = new Map();
  results.forEach((r, i) => { if (!files.has(r.file_id)) files.set(r.file_id, []); files.get(r.file_id).push([r, i]); });
  for (const matches of files.values()) {
    const first = matches[0][0];
    const row = document.createElement("article");
    row.className = "file-row";
    const name = document.createElement("h3");
    name.className = "name";
    name.textContent = `${baseName(first.path)} · ${matches.length} match${matches.length === 1 ? "" : "es"}`;
    name.title = first.path;
    const strip = document.createElement("div");
    strip.className = "mini-track";
    const scale = Math.max(...matches.map(([r]) => r.end || r.start || 0), 1) * 1.05;
    for (const [r, i] of matches) {
      const mark = document.createElement("button");
      mark.type = "button";
      mark.className = `marker m-${r.kind}`;
      mark.dataset.index = i;
      mark.style.left = `${(100 * (r.start || 0)) / scale}%`;
      mark.style.width = `${Math.max(1.5, (100 * ((r.end || r.start || 0) - (r.start || 0))) / scale)}%`;
      mark.title = `${KIND_LABEL[r.kind] || r.kind} ${span(r)}`;
      mark.setAttribute("aria-label", `Open ${baseName(r.path)} ${span(r)}`);
      mark.addEventListener("click", () => openPlayer(r));
      strip.appendChild(mark);
    }
    row.append(name, strip);
    grid.appendChild(row);
  }
}

function moreResults() {
  const state = stateFromUrl();
  navigate({ ...state, top_k: String(Math.min(1000, Number(state.top_k || PAGE) + PAGE)), open: null });
}

function card(r, index, explain) {
  const node = $("#card").content.firstElementChild.cloneNode(true);
  const thumb = node.querySelector(".thumb");
  if (r.thumbnail_url) thumb.style.backgroundImage = `url("${r.thumbnail_url}")`;
  else thumb.classList.add("audio");
  node.querySelector(".badge").textContent = KIND_LABEL[r.kind] || r.kind;
  node.querySelector(".range").textContent = span(r);
  node.querySelector(".name").textContent = baseName(r.path);
  node.querySelector(".name").title = r.path;
  node.querySelector(".kind").textContent = r.media_kind;
  node.querySelector(".score").textContent = `score ${r.score.toFixed(3)}`;
  node.querySelector(".snippet").innerHTML = wordsHtml(r);
  const note = node.querySelector(".found-by");
  note.textContent = foundBy(r);
  note.hidden = !note.textContent;
  const box = node.querySelector(".select");
  box.checked = typeof MMClips !== "undefined" && MMClips.has(r);
  box.addEventListener("click", (e) => e.stopPropagation());
  box.addEventListener("change", () => MMClips.toggle(r, box.checked));
  node.querySelector(".select-clip").addEventListener("click", (e) => e.stopPropagation());
  node.result = r;
  if (explain && r.channels) {
    const table = node.querySelector(".why");
    table.hidden = false;
    for (const [name, c] of Object.entries(r.channels)) {
      table.tBodies[0].insertAdjacentHTML("beforeend", `<tr><td>${escapeHtml(channelLabels[name] || name)}</td><td>#${c.rank}</td><td>${c.score.toFixed(3)}</td></tr>`);
    }
  }
  node.dataset.index = index;
  node.setAttribute("aria-label", `${baseName(r.path)} ${span(r)} ${KIND_LABEL[r.kind] || r.kind}`);
  node.addEventListener("click", () => openPlayer(r));
  node.addEventListener("keydown", (e) => { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); openPlayer(r); } });
  return node;
}

let current = null;

function openPlayer(r) {
  current = r;
  const stage = $("#stage");
  stage.innerHTML = "";
  $("#player-title").textContent = baseName(r.path);
  $("#player-meta").textContent = [r.media_kind, span(r), `score ${r.score.toFixed(3)}`].filter(Boolean).join(" · ");
  $("#player-text").innerHTML = wordsHtml(r);
  $("#found-by").textContent = foundBy(r);
  $("#found-by").hidden = !foundBy(r);
  $("#open").href = r.media_url;
  if (r.media_kind === "image") {
    const img = document.createElement("img");
    img.src = r.media_url;
    img.alt = baseName(r.path);
    stage.appendChild(img);
  } else {
    const el = document.createElement(r.media_kind === "audio" ? "audio" : "video");
    el.controls = true;
    el.preload = "metadata";
    el.addEventListener("loadedmetadata", () => {
      el.currentTime = r.start || 0;
      el.play().catch(() => {}); // a blocked autoplay leaves the player at the moment, paused
    }, { once: true });
    el.src = r.media_url;
    stage.appendChild(el);
  }
  if (!$("#player").open) $("#player").showModal();
  if (typeof MMTimeline !== "undefined") MMTimeline.open(r, lastResults, lastState || stateFromUrl());
}

function closePlayer() {
  const media = $("#stage").querySelector("video, audio");
  if (media) media.pause();
  $("#stage").innerHTML = "";
  if (typeof MMTimeline !== "undefined") MMTimeline.close();
  if ($("#player").open) $("#player").close();
  const state = stateFromUrl();
  if (state.open) history.replaceState(null, "", `/?${pageParams({ ...state, open: null })}`); // the link did its job
}

function moreLikeThis() {
  if (!current) return;
  const state = { ...stateFromForm(), q: "", like: String(current.file_id), start: null, end: null };
  if (current.start !== null && current.end !== null) { state.start = current.start; state.end = current.end; }
  closePlayer();
  navigate(state);
}

async function showInfo() {
  let response;
  try {
    response = await fetch("/api/info");
  } catch {
    return; // the search itself reports an unreachable server
  }
  if (!response.ok) {
    const state = stateFromUrl();
    // With a query in the URL, its own answer reports the problem; don't race it for the status line.
    if (!state.q && !state.like && (response.status === 404 || response.status === 401)) {
      showError(await apiError(response), response.status);
    }
    return;
  }
  const info = await response.json();
  renderChannels(info.channels || []);
  const segs = Object.entries(info.segments).map(([k, v]) => `${v} ${k}`).join(", ");
  $("#footer").textContent = `${info.files} files · ${segs} · model ${info.model}${info.model_untrained ? " (untrained: test only)" : ""} · generation ${info.generation}`;
}

function wireDrop() {
  let depth = 0;
  const drop = $("#drop");
  window.addEventListener("dragenter", (e) => { e.preventDefault(); depth++; drop.hidden = false; });
  window.addEventListener("dragleave", () => { depth = Math.max(0, depth - 1); if (!depth) drop.hidden = true; });
  window.addEventListener("dragover", (e) => e.preventDefault());
  window.addEventListener("drop", (e) => {
    e.preventDefault();
    depth = 0;
    drop.hidden = true;
    const file = e.dataTransfer && e.dataTransfer.files[0];
    if (file) searchImage(file);
  });
  window.addEventListener("paste", (e) => {
    const item = [...(e.clipboardData ? e.clipboardData.items : [])].find((i) => i.type.startsWith("image/"));
    if (item) { e.preventDefault(); searchImage(item.getAsFile()); }
  });
}

// Opening /?token=T set the cookie that every later request carries: take the token out of the address bar, so
// that it does not end up in a shared link, a bookmark or the history.
function forgetTokenInUrl() {
  const p = new URLSearchParams(location.search);
  if (!p.has("token")) return;
  p.delete("token");
  history.replaceState(null, "", p.toString() ? `/?${p}` : "/");
}

document.addEventListener("DOMContentLoaded", () => {
  forgetTokenInUrl();
  $("#search").addEventListener("submit", (e) => {
    e.preventDefault();
    const state = stateFromForm();
    if (state.q) navigate(state);
  });
  for (const el of document.querySelectorAll("#filters select, #filters input")) el.addEventListener("change", filtersChanged);
  $("#image").addEventListener("change", (e) => searchImage(e.target.files[0]));
  // The file input is hidden: its label is the button, and the keyboard opens the picker like a click does.
  $("#pick").addEventListener("keydown", (e) => { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); $("#image").click(); } });
  $("#close").addEventListener("click", closePlayer);
  $("#player").addEventListener("close", closePlayer);
  $("#more").addEventListener("click", moreLikeThis);
  $("#more-results").addEventListener("click", moreResults);
  window.addEventListener("popstate", runFromUrl);
  wireDrop();
  showInfo();
  runFromUrl();
});
