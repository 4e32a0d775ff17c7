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

// A "select all" box ticks or clears every row box of its table (bulk actions on the Orders page).
document.addEventListener("change", (event) => {
  const box = event.target;
  if (!(box instanceof HTMLInputElement) || !box.matches("[data-select-all]")) return;
  const table = box.closest("table");
  if (!table) return;
  table.querySelectorAll(`tbody input[type="checkbox"][name="${box.dataset.selectAll}"]`).forEach((row) => {
    row.checked = box.checked;
  });
});
