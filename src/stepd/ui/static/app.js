// stepd UI: "live" parts of a page, and the few write actions.
//
// Live: every element with data-live="SECONDS" and an id is fetched again from the page's
// own URL and swapped for the server's fresh copy. The server renders (and escapes) all
// HTML; this script never builds markup from strings.
//
// Writes: the user signs in with their own token (the box in the nav bar). It is kept in
// sessionStorage (this tab only, gone when the tab closes) and sent only as
// `Authorization: OAuth <token>` on fetch() calls to the JSON API: never in a URL, never
// in a cookie. A button with data-post="URL" (and data-method, data-body or data-body-from
// a textarea's id, data-body-merge: JSON fields set over that body, data-confirm,
// data-then, data-show: the id of an element that shows the answer's result instead of
// a reload) calls the API; its errors are shown as text.
(function () {
  "use strict";
  var TOKEN = "stepd.token";
  var USER = "stepd.user";
  // What a write's answer warned of, kept across the reload that shows the write's result.
  var NOTICE = "stepd.notice";
  var message = document.getElementById("ui-message");

  function show(text) {
    if (!message) return;
    message.textContent = text;
    message.hidden = !text;
  }

  function token() {
    try { return sessionStorage.getItem(TOKEN); } catch (e) { return null; }
  }

  // One call to the JSON API with the user's token; resolves to the JSON body, or
  // rejects with an Error whose message is the API's own: "HTTP 409 conflict: ...".
  function api(method, url, secret, body) {
    var headers = { Accept: "application/json", Authorization: "OAuth " + secret };
    if (body) headers["Content-Type"] = "application/json";
    return fetch(url, {
      method: method, headers: headers, body: body || undefined,
      cache: "no-store", credentials: "omit"
    }).then(function (response) {
      return response.text().then(function (text) {
        var json = null;
        try { json = JSON.parse(text); } catch (e) { json = null; }
        if (!response.ok) {
          var parts = ["HTTP " + response.status];
          if (json && json.error) parts.push(" " + json.error);
          parts.push(": " + (json && json.message ? json.message : text.slice(0, 500)));
          if (json && json.field) parts.push(" (field: " + json.field + ")");
          throw new Error(parts.join(""));
        }
        return json || {};
      });
    });
  }

  // The token box and every write button follow whether a token is kept.
  function updateAuth() {
    var secret = token();
    var user = secret ? sessionStorage.getItem(USER) || "?" : "";
    var form = document.getElementById("token-form");
    var who = document.getElementById("token-user");
    var forget = document.getElementById("token-forget");
    if (form) form.hidden = !!secret;
    if (who) { who.textContent = user; who.hidden = !secret; }
    if (forget) forget.hidden = !secret;
    Array.prototype.forEach.call(document.querySelectorAll("button[data-post]"), function (b) {
      b.disabled = !secret;
      b.title = secret ? "" : "sign in with a token (top right) first";
    });
    Array.prototype.forEach.call(document.querySelectorAll(".needs-token"), function (n) {
      n.hidden = !!secret;
    });
  }

  var form = document.getElementById("token-form");
  if (form) {
    form.addEventListener("submit", function (ev) {
      ev.preventDefault();
      var input = document.getElementById("token-input");
      var secret = input.value.trim();
      if (!secret) return;
      api("GET", "/api/v1/whoami", secret, null).then(function (json) {
        sessionStorage.setItem(TOKEN, secret);
        sessionStorage.setItem(USER, String(json.result && json.result.user));
        input.value = "";
        show("");
        updateAuth();
      }, function (err) {
        input.value = "";
        show("Sign-in failed: " + err.message);
      });
    });
  }
  var forget = document.getElementById("token-forget");
  if (forget) {
    forget.addEventListener("click", function () {
      sessionStorage.removeItem(TOKEN);
      sessionStorage.removeItem(USER);
      show("");
      updateAuth();
    });
  }

  document.addEventListener("click", function (ev) {
    var button = ev.target && ev.target.closest ? ev.target.closest("button[data-post]") : null;
    if (!button || button.disabled) return;
    var secret = token();
    if (!secret) { show("Sign in with a token (top right) first."); return; }
    var question = button.getAttribute("data-confirm");
    if (question && !window.confirm(question)) return;
    var source = button.getAttribute("data-body-from");
    var body = source ? document.getElementById(source).value : button.getAttribute("data-body");
    var merge = button.getAttribute("data-body-merge");
    if (merge) {
      // One textarea, two buttons (a run and its dry run): the button sets its own fields.
      var parsed = null;
      try { parsed = JSON.parse(body || "{}"); } catch (e) { parsed = null; }
      if (!parsed || typeof parsed !== "object" || Array.isArray(parsed)) {
        show("The text is not a JSON object: fix it and try again.");
        return;
      }
      body = JSON.stringify(Object.assign(parsed, JSON.parse(merge)));
    }
    var target = button.getAttribute("data-show");
    button.disabled = true;
    api(button.getAttribute("data-method") || "POST", button.getAttribute("data-post"), secret, body)
      .then(function (json) {
        var ids = json.ids || [];
        var warnings = json.warnings || [];
        if (warnings.length) {
          try { sessionStorage.setItem(NOTICE, "Saved, with warnings: " + warnings.join(" | ")); } catch (e) {}
        }
        if (target) {
          var place = document.getElementById(target);
          place.textContent = JSON.stringify(json.result, null, 2);
          place.hidden = false;
          show("");
          button.disabled = false;
        } else if (button.getAttribute("data-then") === "story" && ids.length) {
          window.location.assign("/ui/events/" + encodeURIComponent(ids[0]));
        } else if (button.getAttribute("data-then") === "task" && json.id) {
          window.location.assign("/ui/tasks/" + encodeURIComponent(String(json.id)));
        } else if (button.getAttribute("data-then") === "backfill" && json.id) {
          window.location.assign("/ui/backfills/" + encodeURIComponent(String(json.id)));
        } else {
          window.location.reload();
        }
      }, function (err) {
        show(err.message);
        button.disabled = false;
      });
  });
  updateAuth();
  try {
    var notice = sessionStorage.getItem(NOTICE);
    if (notice) { sessionStorage.removeItem(NOTICE); show(notice); }
  } catch (e) {}

  var toggle = document.getElementById("live");
  var KEY = "stepd.live";
  if (toggle) {
    toggle.checked = localStorage.getItem(KEY) !== "off";
    toggle.addEventListener("change", function () {
      localStorage.setItem(KEY, toggle.checked ? "on" : "off");
    });
  }
  function liveParts() {
    return Array.prototype.slice.call(document.querySelectorAll("[data-live][id]"));
  }
  // A group the reader opened (a story's collapsed configs) stays open in the fresh copy.
  function keepOpen(old, next) {
    var open = {};
    old.querySelectorAll("details[data-keep-open][open]").forEach(function (d) {
      open[d.getAttribute("data-keep-open")] = true;
    });
    next.querySelectorAll("details[data-keep-open]").forEach(function (d) {
      if (open[d.getAttribute("data-keep-open")]) d.open = true;
    });
    return next;
  }
  var busy = false;
  function refresh() {
    if (busy || document.hidden || (toggle && !toggle.checked)) return;
    if (liveParts().length === 0) return;
    busy = true;
    fetch(window.location.href, { headers: { Accept: "text/html" }, cache: "no-store" })
      .then(function (response) {
        if (!response.ok) throw new Error("HTTP " + response.status);
        return response.text();
      })
      .then(function (text) {
        var fresh = new DOMParser().parseFromString(text, "text/html");
        liveParts().forEach(function (old) {
          var next = fresh.getElementById(old.id);
          if (next) old.replaceWith(keepOpen(old, document.importNode(next, true)));
        });
        updateAuth();
        document.body.removeAttribute("data-live-error");
      })
      .catch(function (err) {
        document.body.setAttribute("data-live-error", String(err));
      })
      .then(function () { busy = false; });
  }
  var parts = liveParts();
  if (parts.length) {
    var seconds = parseFloat(parts[0].getAttribute("data-live")) || 2;
    window.setInterval(refresh, seconds * 1000);
  }

  // Follow: a running task's log pane (pre#log[data-follow="SECONDS"]) appends what the
  // task wrote since, from GET /api/v1/tasks/{id}/logs?offset=N, as text (never markup),
  // while the "follow" box is ticked; it stops when the answer says the task has ended.
  // A new attempt (a retry) starts the pane again from its beginning, unless the page
  // shows one attempt by its number (data-pinned).
  var pane = document.getElementById("log");
  var followBox = document.getElementById("log-follow");
  if (pane && pane.hasAttribute("data-follow")) {
    var taskId = pane.getAttribute("data-task");
    var attempt = parseInt(pane.getAttribute("data-attempt"), 10) || 0;
    var offset = parseInt(pane.getAttribute("data-offset"), 10) || 0;
    var pinned = pane.hasAttribute("data-pinned");
    var following = true;
    var reading = false;
    var timer = null;

    var atBottom = function () {
      return pane.scrollHeight - pane.scrollTop - pane.clientHeight < 24;
    };
    var append = function (text, fresh) {
      if (!text && !fresh) return;
      var stick = atBottom();
      if (fresh || pane.hasAttribute("data-empty")) {
        pane.textContent = text || "(no log yet)";
        if (text) pane.removeAttribute("data-empty"); else pane.setAttribute("data-empty", "1");
      } else {
        pane.appendChild(document.createTextNode(text));
      }
      if (stick) pane.scrollTop = pane.scrollHeight;
    };
    var ended = function (status) {
      following = false;
      window.clearInterval(timer);
      var box = document.getElementById("log-follow-box");
      if (box) box.hidden = true;
      var note = document.getElementById("log-follow-note");
      if (note) note.textContent = "the task ended (" + status + "): the log is complete";
      pane.removeAttribute("data-follow");
      pane.setAttribute("data-followed", status);
    };
    var readMore = function () {
      if (!following || reading || document.hidden || (followBox && !followBox.checked)) return;
      reading = true;
      var url = "/api/v1/tasks/" + encodeURIComponent(taskId) + "/logs?offset=" + offset;
      if (pinned && attempt) url += "&attempt=" + attempt;
      var headers = { Accept: "application/json" };
      var secret = token();  // a server with --private-reads needs it for reads too
      if (secret) headers.Authorization = "OAuth " + secret;
      fetch(url, { headers: headers, cache: "no-store", credentials: "omit" })
        .then(function (response) {
          if (!response.ok) throw new Error("HTTP " + response.status);
          return response.json();
        })
        .then(function (json) {
          var page = json.result;
          if (page.attempt !== attempt && !pinned) {
            // Another attempt began: its log is another text, read from its start (the
            // next tick).
            attempt = page.attempt;
            offset = 0;
            append("", true);
            return;
          }
          append(page.text, false);
          offset = page.next_offset;
          pane.setAttribute("data-offset", String(offset));
          if (page.finished) ended(page.status);
          pane.removeAttribute("data-follow-error");
        })
        .catch(function (err) {
          pane.setAttribute("data-follow-error", String(err));
        })
        .then(function () { reading = false; });
    };
    var every = parseFloat(pane.getAttribute("data-follow")) || 1.5;
    timer = window.setInterval(readMore, every * 1000);
    if (followBox) followBox.addEventListener("change", readMore);
  }
})();
