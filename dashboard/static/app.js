// duban dashboard: sign in with the Mini App's initData, and refresh the figures by themselves.
// No framework, no CDN: this file ships with duban.
(function () {
  "use strict";

  function initData() {
    var fromHash = new URLSearchParams(location.hash.slice(1)).get("tgWebAppData");
    if (fromHash) return fromHash;
    var tg = window.Telegram && window.Telegram.WebApp;
    return tg && tg.initData ? tg.initData : "";
  }

  function signIn() {
    var data = initData();
    if (!data) return;
    document.getElementById("widget").hidden = true;
    document.getElementById("checking").hidden = false;
    fetch("/dash/auth/webapp", {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/x-www-form-urlencoded" },
      body: "init_data=" + encodeURIComponent(data),
    }).then(function (response) {
      if (response.ok) {
        // Reload without the fragment: the session cookie now answers for the person.
        location.replace(location.pathname + location.search);
      } else {
        document.getElementById("checking").hidden = true;
        document.getElementById("failed").hidden = false;
      }
    });
  }

  function busy(main) {
    // Never replace a page while someone is typing a reason into it.
    var active = document.activeElement;
    if (active && main.contains(active) && active.tagName === "INPUT") return true;
    var inputs = main.querySelectorAll("input[type=text]");
    for (var i = 0; i < inputs.length; i++) if (inputs[i].value) return true;
    return false;
  }

  function loadParts(root) {
    // Sections that are pages of their own (the ranking) fill in after the page shows.
    var parts = root.querySelectorAll("[data-load]");
    Array.prototype.forEach.call(parts, function (part) {
      fetch(part.getAttribute("data-load"), {
        credentials: "same-origin",
        headers: { "X-Duban-Fragment": "part" },
      })
        .then(function (response) { return response.ok ? response.text() : null; })
        .then(function (html) { if (html) part.innerHTML = html; })
        .catch(function () { /* the link to the page stays */ });
    });
  }

  function refresh(main, seconds) {
    setInterval(function () {
      if (document.hidden || busy(main)) return;
      fetch(location.href, { credentials: "same-origin", headers: { "X-Duban-Fragment": "1" } })
        .then(function (response) {
          if (response.status === 401) { location.reload(); return null; }
          return response.ok ? response.text() : null;
        })
        .then(function (html) {
          if (html === null || html === undefined) return;
          main.innerHTML = html;
          loadParts(main);
        })
        .catch(function () { /* offline for a moment: try again next time */ });
    }, seconds * 1000);
  }

  document.addEventListener("DOMContentLoaded", function () {
    if (document.getElementById("login")) signIn();
    var main = document.querySelector("main[data-refresh]");
    if (main) {
      loadParts(main);
      refresh(main, parseInt(main.getAttribute("data-refresh"), 10) || 30);
    }
    var tg = window.Telegram && window.Telegram.WebApp;
    if (tg && tg.ready) tg.ready();
  });
})();
