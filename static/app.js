// Tells the seller when an HTMX request fails, instead of leaving the page silently as it was.
// The messages are written, translated, into the #request-error element by base.html.
(() => {
  const box = () => document.getElementById("request-error");

  function show(kind) {
    const element = box();
    if (!element) return;
    element.textContent = element.dataset[kind] || element.dataset.failed;
    element.hidden = false;
  }

  document.addEventListener("htmx:responseError", (event) => {
    const status = event.detail.xhr.status;
    show(status === 400 ? "stale" : status === 429 ? "limited" : "failed");
  });
  document.addEventListener("htmx:sendError", () => show("offline"));
  document.addEventListener("htmx:beforeRequest", () => {
    const element = box();
    if (element) element.hidden = true;
  });
})();
