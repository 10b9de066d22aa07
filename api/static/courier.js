// The courier page works without this script; it only keeps a second tap on a
// slow network from sending the same form again.
"use strict";

(function () {
  const sending = document.body.dataset.sending || "…";
  for (const form of document.querySelectorAll("form[data-once]")) {
    form.addEventListener("submit", () => {
      for (const button of form.querySelectorAll("button[type=submit]")) {
        button.disabled = true;
        button.textContent = sending;
      }
    });
  }
})();
