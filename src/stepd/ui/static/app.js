// stepd UI: "live" parts of a page. Every element with data-live="SECONDS" and an id is
// fetched again from the page's own URL and swapped for the server's fresh copy. The server
// renders (and escapes) all HTML; this script never builds markup from strings.
(function () {
  "use strict";
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
          if (next) old.replaceWith(document.importNode(next, true));
        });
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
})();
