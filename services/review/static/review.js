"use strict";
// Citation chips open the cited resource's facts in place, read live by the service with the clinician's token.
// Without this script each chip is a plain link to the same facts.
function toggle(chip) {
  const panel = document.getElementById(chip.dataset.panel);
  if (chip.getAttribute("aria-expanded") === "true") {
    panel.hidden = true;
    chip.setAttribute("aria-expanded", "false");
    return;
  }
  chip.setAttribute("aria-expanded", "true");
  panel.hidden = false;
  if (panel.dataset.loaded) return;
  panel.textContent = "Loading the source…";
  fetch(chip.href + "&fragment=1", { credentials: "same-origin", headers: { Accept: "text/html" } })
    .then((response) => response.text().then((html) => {
      panel.innerHTML = html; // an escaped fragment rendered by this service
      if (response.ok) panel.dataset.loaded = "1";
    }))
    .catch(() => { panel.textContent = "The source could not be loaded."; });
}
document.addEventListener("DOMContentLoaded", () => {
  for (const chip of document.querySelectorAll("a.chip")) {
    chip.setAttribute("role", "button");
    chip.addEventListener("click", (event) => { event.preventDefault(); toggle(chip); });
    chip.addEventListener("keydown", (event) => {
      if (event.key === " ") { event.preventDefault(); toggle(chip); }
    });
  }
});
