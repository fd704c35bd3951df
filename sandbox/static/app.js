// duban sandbox page: polls /sandbox/api/state, draws each persona's chat, and acts as their
// Telegram client (messages, files, button presses) and as the hand on the clock.
"use strict";

const POLL_MS = 1000;
const HEADERS = { "X-Sandbox": "1" };
let labels = {};
const panes = new Map(); // persona key -> {root, list, shown, toasts:Set}
let polling = false;

const SVG_NS = "http://www.w3.org/2000/svg";

function icon(path) {
  const svg = document.createElementNS(SVG_NS, "svg");
  svg.setAttribute("viewBox", "0 0 24 24");
  svg.setAttribute("aria-hidden", "true");
  const shape = document.createElementNS(SVG_NS, "path");
  shape.setAttribute("d", path);
  shape.setAttribute("fill", "none");
  shape.setAttribute("stroke", "currentColor");
  shape.setAttribute("stroke-width", "2");
  shape.setAttribute("stroke-linecap", "round");
  shape.setAttribute("stroke-linejoin", "round");
  svg.append(shape);
  return svg;
}
// A paper clip and a sheet of paper, drawn here: no icon font, no emoji font needed.
const CLIP = "M21 11.5l-8.6 8.6a5.5 5.5 0 0 1-7.8-7.8l8.6-8.6a3.7 3.7 0 0 1 5.2 5.2l-8.6 8.6" +
  "a1.8 1.8 0 0 1-2.6-2.6l7.9-7.9";
const PAGE = "M14 3H7a2 2 0 0 0-2 2v14a2 2 0 0 0 2 2h10a2 2 0 0 0 2-2V8z M14 3v5h5";

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (key === "class") node.className = value;
    else if (key.startsWith("data-")) node.setAttribute(key, value);
    else node[key] = value;
  }
  for (const child of children) {
    if (child !== null && child !== undefined) node.append(child);
  }
  return node;
}

function status(text, isError) {
  const box = document.getElementById("status");
  box.textContent = text || "";
  box.classList.toggle("error", !!isError);
}

async function call(path, options) {
  const response = await fetch(path, options);
  let body = {};
  try {
    body = await response.json();
  } catch (e) {
    body = {};
  }
  if (!response.ok) throw new Error(body.error || response.statusText);
  return body;
}

function postJSON(path, data) {
  return call(path, {
    method: "POST",
    headers: { ...HEADERS, "Content-Type": "application/json" },
    body: JSON.stringify(data),
  });
}

async function act(promise) {
  try {
    await promise;
    status("");
  } catch (e) {
    status(e.message, true);
  }
  poll();
}

function applyLabels() {
  document.getElementById("heading").textContent = labels.heading;
  document.getElementById("intro").textContent = labels.intro;
  document.getElementById("clock-label").textContent = labels.clock;
  document.getElementById("deadline-label").textContent = labels.next_deadline;
  document.getElementById("loading").textContent = labels.loading;
  for (const button of document.querySelectorAll("[data-move]")) {
    button.textContent = labels["move_" + button.dataset.move];
  }
}

function formatSize(bytes) {
  if (bytes >= 1048576) return (bytes / 1048576).toFixed(1) + " MB";
  if (bytes >= 1024) return Math.round(bytes / 1024) + " KB";
  return bytes + " B";
}

function drawMessage(persona, message) {
  const bubble = el("div", {
    class: "msg " + (message.mine ? "mine" : "bot"),
    "data-id": String(message.id),
  });
  if (message.photo) {
    bubble.append(el("a", { href: message.photo, target: "_blank", class: "photo" },
      el("img", { src: message.photo, alt: "" })));
  }
  if (message.document) {
    bubble.append(el("a", {
      class: "doc", href: message.document.url, download: message.document.name,
      title: labels.download,
    }, el("span", { class: "doc-icon" }, icon(PAGE)),
    el("span", { class: "doc-name" }, message.document.name),
    el("span", { class: "doc-size" }, formatSize(message.document.size))));
  }
  if (message.html) {
    const text = el("div", { class: "text" });
    text.innerHTML = message.html; // escaped by the server; only Telegram's tags remain
    for (const cmd of text.querySelectorAll("a.cmd")) {
      cmd.addEventListener("click", (event) => {
        event.preventDefault();
        act(postJSON("/sandbox/api/send", { persona: persona, text: cmd.textContent }));
      });
    }
    bubble.append(text);
  }
  bubble.append(el("div", { class: "meta" },
    (message.edited ? labels.edited + " · " : "") + message.time));
  const wrap = el("div", { class: "row " + (message.mine ? "mine" : "bot") }, bubble);
  if (message.buttons && message.buttons.length) {
    const keyboard = el("div", { class: "kb" });
    for (const row of message.buttons) {
      const line = el("div", { class: "kb-row" });
      for (const button of row) {
        if (button.data !== undefined) {
          const b = el("button", { type: "button", "data-data": button.data }, button.text);
          b.addEventListener("click", () => act(postJSON("/sandbox/api/press", {
            persona: persona, message_id: message.id, data: button.data,
          })));
          line.append(b);
        } else {
          line.append(el("a", {
            class: "kb-link", href: button.url || "#", target: "_blank", rel: "noopener",
          }, button.text + " ↗"));
        }
      }
      keyboard.append(line);
    }
    wrap.append(keyboard);
  }
  return wrap;
}

function makePane(persona) {
  const list = el("div", { class: "chat" });
  const input = el("textarea", { rows: 1, placeholder: labels.placeholder, class: "input" });
  const file = el("input", { type: "file", class: "file" });
  const send = el("button", { type: "button", class: "send" }, labels.send);
  const attach = el("button", { type: "button", class: "attach", title: labels.attach },
    icon(CLIP));
  const submit = () => {
    const text = input.value.trim();
    if (!text) return;
    input.value = "";
    act(postJSON("/sandbox/api/send", { persona: persona.key, text: text }));
  };
  send.addEventListener("click", submit);
  input.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey) {
      event.preventDefault();
      submit();
    }
  });
  const menu = el("div", { class: "menu", hidden: true });
  const slash = el("button", { type: "button", class: "slash", title: labels.commands }, "/");
  slash.addEventListener("click", () => { menu.hidden = !menu.hidden; });
  attach.addEventListener("click", () => file.click());
  file.addEventListener("change", () => {
    if (!file.files.length) return;
    const form = new FormData();
    form.append("persona", persona.key);
    form.append("file", file.files[0]);
    form.append("caption", input.value.trim());
    // Pictures go as photos, as a Telegram client sends them; anything else as a document.
    if (/^image\/(jpeg|png)$/.test(file.files[0].type)) form.append("as_photo", "1");
    input.value = "";
    file.value = "";
    act(call("/sandbox/api/upload", { method: "POST", headers: HEADERS, body: form }));
  });
  const initial = (persona.unit || persona.role_label).slice(0, 1);
  const root = el("section", { class: "pane role-" + persona.role, "data-persona": persona.key },
    el("header", { class: "pane-head" },
      el("div", { class: "avatar" }, initial),
      el("div", { class: "who" },
        el("div", { class: "name" }, persona.name),
        el("div", { class: "role" }, persona.unit
          ? persona.role_label + " · " + persona.unit : persona.role_label))),
    list,
    el("div", { class: "toasts" }),
    menu,
    el("footer", { class: "compose" }, slash, attach, file, input, send));
  return { root: root, list: list, shown: "", toasts: new Set(), menu: menu, commands: "" };
}

function drawMenu(pane, persona) {
  // The command menu the bot set for this person (setMyCommands), like Telegram's "/" list.
  const shown = JSON.stringify(persona.commands);
  if (shown === pane.commands) return;
  pane.commands = shown;
  pane.menu.replaceChildren(...persona.commands.map((c) => {
    const item = el("button", { type: "button", class: "menu-item" },
      el("span", { class: "menu-cmd" }, c.command),
      el("span", { class: "menu-desc" }, c.description));
    item.addEventListener("click", () => {
      pane.menu.hidden = true;
      act(postJSON("/sandbox/api/send", { persona: persona.key, text: c.command }));
    });
    return item;
  }));
}

function showToasts(pane, toasts) {
  const box = pane.root.querySelector(".toasts");
  for (const toast of toasts) {
    if (pane.toasts.has(toast.id)) continue;
    pane.toasts.add(toast.id);
    const note = el("div", { class: "toast" }, toast.text);
    box.append(note);
    setTimeout(() => note.remove(), 4000);
  }
}

function render(state) {
  document.getElementById("clock").textContent = state.clock.text;
  document.getElementById("deadline").textContent = state.deadline || labels.no_deadline_left;
  if (!state.ready) return;
  const container = document.getElementById("panes");
  const loading = document.getElementById("loading");
  if (loading) loading.remove();
  for (const persona of state.personas) {
    let pane = panes.get(persona.key);
    if (!pane) {
      pane = makePane(persona);
      panes.set(persona.key, pane);
      container.append(pane.root);
    }
    const shown = JSON.stringify(persona.messages);
    if (shown !== pane.shown) {
      const atBottom =
        pane.list.scrollHeight - pane.list.scrollTop - pane.list.clientHeight < 40;
      const grew = persona.messages.length !== (pane.count || 0);
      pane.list.replaceChildren(...persona.messages.map((m) => drawMessage(persona.key, m)));
      pane.shown = shown;
      pane.count = persona.messages.length;
      if (atBottom || grew) pane.list.scrollTop = pane.list.scrollHeight;
    }
    showToasts(pane, persona.toasts);
    drawMenu(pane, persona);
  }
}

async function poll() {
  if (polling) return;
  polling = true;
  try {
    const state = await call("/sandbox/api/state");
    if (!labels.heading) {
      labels = state.labels;
      applyLabels();
    }
    render(state);
    document.body.dataset.ready = state.ready ? "1" : "0";
  } catch (e) {
    status(e.message, true);
  } finally {
    polling = false;
  }
}

for (const button of document.querySelectorAll("[data-move]")) {
  button.addEventListener("click", async () => {
    for (const b of document.querySelectorAll("[data-move]")) b.disabled = true;
    try {
      await act(postJSON("/sandbox/api/clock", { move: button.dataset.move }));
    } finally {
      for (const b of document.querySelectorAll("[data-move]")) b.disabled = false;
    }
  });
}

poll();
setInterval(poll, POLL_MS);
