// The session inspector's clocks: keeps every "in 29 min 40 s" on the page current. The server
// already rendered each value, so the page is complete without this file; it is a file, not an
// inline script, because the Content-Security-Policy allows scripts from this origin only.
"use strict";

(function () {
  const root = document.querySelector("[data-now]");
  if (!root) {
    return;
  }
  // The server's clock decides when a session ends, not this browser's: measure the difference
  // once, against the moment the server rendered the page.
  const skew = Number(root.dataset.now) - Date.now();
  const clocks = root.querySelectorAll("[data-unix-ms]");

  // The two largest units, as the server writes them (span_ms in src/routes/inspect.rs).
  function span(ms) {
    const total = Math.floor(ms / 1000);
    const days = Math.floor(total / 86400);
    const hours = Math.floor(total / 3600) % 24;
    const minutes = Math.floor(total / 60) % 60;
    const seconds = total % 60;
    if (days > 0) return days + " d " + hours + " h";
    if (hours > 0) return hours + " h " + minutes + " min";
    if (minutes > 0) return minutes + " min " + seconds + " s";
    return seconds + " s";
  }

  function tick() {
    const now = Date.now() + skew;
    for (const clock of clocks) {
      const delta = Number(clock.dataset.unixMs) - now;
      clock.textContent = delta >= 0 ? "in " + span(delta) : span(-delta) + " ago";
    }
  }

  tick();
  setInterval(tick, 1000);
})();
