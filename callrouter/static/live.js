// The live view refreshes its rows every 5 seconds; the user can pause it (WCAG 2.2.2).
(function () {
  "use strict";
  var table = document.getElementById("live");
  var body = document.getElementById("live-rows");
  var toggle = document.getElementById("live-toggle");
  var status = document.getElementById("live-status");
  if (!table || !body) { return; }
  var paused = false;
  toggle.hidden = false;
  toggle.addEventListener("click", function () {
    paused = !paused;
    toggle.setAttribute("aria-pressed", paused ? "true" : "false");
    toggle.textContent = paused ? "Hervatten" : "Pauzeren";
    if (status) {
      status.textContent = paused ? "Verversen is gepauzeerd."
        : "Deze lijst ververst zich elke 5 seconden.";
    }
  });
  function refresh() {
    if (paused) { return; }
    fetch(table.getAttribute("data-source"), {credentials: "same-origin", cache: "no-store"})
      .then(function (r) {
        if (r.redirected || !r.ok) { window.location.reload(); return null; }
        return r.text();
      })
      .then(function (html) { if (html !== null) { body.innerHTML = html; } })
      .catch(function () { /* the next tick tries again */ });
  }
  window.setInterval(refresh, 5000);
}());
