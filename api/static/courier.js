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

// Signature pads: the receiver signs with a finger; on submit the drawing goes with
// the form as a PNG file (field "signature"), besides the photo.
(function () {
  for (const pad of document.querySelectorAll(".signature")) {
    const canvas = pad.querySelector("canvas");
    const input = pad.querySelector('input[name="signature"]');
    const ctx = canvas.getContext("2d");
    let drawing = false;
    let inked = false;
    ctx.lineWidth = 4;
    ctx.lineCap = "round";
    ctx.strokeStyle = "#1d2330";
    const point = (ev) => {
      const box = canvas.getBoundingClientRect();
      return [
        ((ev.clientX - box.left) * canvas.width) / box.width,
        ((ev.clientY - box.top) * canvas.height) / box.height,
      ];
    };
    canvas.addEventListener("pointerdown", (ev) => {
      drawing = true;
      canvas.setPointerCapture(ev.pointerId);
      const [x, y] = point(ev);
      ctx.beginPath();
      ctx.moveTo(x, y);
    });
    canvas.addEventListener("pointermove", (ev) => {
      if (!drawing) return;
      const [x, y] = point(ev);
      ctx.lineTo(x, y);
      ctx.stroke();
      inked = true;
    });
    const stop = () => {
      drawing = false;
    };
    canvas.addEventListener("pointerup", stop);
    canvas.addEventListener("pointercancel", stop);
    pad.querySelector("button.clear").addEventListener("click", () => {
      ctx.clearRect(0, 0, canvas.width, canvas.height);
      inked = false;
      input.value = "";
    });
    const form = pad.closest("form");
    form.addEventListener("submit", (ev) => {
      if (!inked || form.dataset.signed === "yes") return;
      ev.preventDefault();
      canvas.toBlob((blob) => {
        const files = new DataTransfer();
        files.items.add(new File([blob], "signature.png", { type: "image/png" }));
        input.files = files.files;
        form.dataset.signed = "yes";
        form.requestSubmit();
      }, "image/png");
    });
  }
})();
