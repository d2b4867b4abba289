"use strict";
// Citation chips open the cited resource's facts in place, read live by the service with the clinician's token.
// Each chip is a form posting the page's token; without this script it opens the same facts as a page.
function toggle(form, chip) {
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
  const body = new URLSearchParams(new FormData(form));
  body.set("fragment", "true");
  fetch(form.action, { method: "POST", body, credentials: "same-origin", headers: { Accept: "text/html" } })
    .then((response) => response.text().then((html) => {
      panel.innerHTML = html; // an escaped fragment rendered by this service
      if (response.ok) panel.dataset.loaded = "1";
    }))
    .catch(() => { panel.textContent = "The source could not be loaded."; });
}
document.addEventListener("DOMContentLoaded", () => {
  for (const form of document.querySelectorAll("form.chip")) {
    const chip = form.querySelector("button.chip");
    form.addEventListener("submit", (event) => { event.preventDefault(); toggle(form, chip); });
  }
});
