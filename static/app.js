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

// A refused form: the first marked field takes the focus (and scrolls into view), so the seller starts
// at the first thing to correct rather than at the top of a long page.
document.addEventListener("DOMContentLoaded", () => {
  const first = document.querySelector('form[data-focus-error] [aria-invalid="true"]');
  if (first instanceof HTMLElement) first.focus();
});

// The General page: what is changed but not saved is marked per section and in the Save bar, and the
// browser asks before leaving with it. A section saved through HTMX is clean again and keeps the focus
// (its Save button, or its first field to correct).
(() => {
  const form = () => document.querySelector("form[data-unsaved]");

  function mark(section, dirty) {
    section.toggleAttribute("data-dirty", dirty);
    const marker = section.querySelector(".unsaved");
    if (marker) marker.hidden = !dirty;
    const page = form();
    if (!page) return;
    const any = page.querySelector(".settings-section[data-dirty]") !== null;
    page.querySelectorAll(".save-bar .unsaved").forEach((element) => {
      element.hidden = !any;
    });
  }

  function changed(event) {
    const page = form();
    const section = event.target instanceof Element && event.target.closest(".settings-section");
    if (page && section && page.contains(section)) mark(section, true);
  }
  document.addEventListener("input", changed);
  document.addEventListener("change", changed);

  document.addEventListener("DOMContentLoaded", () => {
    const page = form();
    if (page && page.hasAttribute("data-focus-error")) {
      page.querySelectorAll(".settings-section").forEach((section) => mark(section, true));
    }
  });

  let leaving = false;
  document.addEventListener("submit", (event) => {
    if (event.target === form()) leaving = true; // the whole page is being saved
  });
  window.addEventListener("beforeunload", (event) => {
    const page = form();
    if (leaving || !page || !page.querySelector(".settings-section[data-dirty]")) return;
    event.preventDefault();
    event.returnValue = ""; // older browsers ask only when a value is set
  });

  document.addEventListener("htmx:afterSettle", (event) => {
    const section = event.target; // the section that came back (an outerHTML swap: a new element)
    if (!(section instanceof Element) || !section.matches(".settings-section")) return;
    const refused = event.detail.xhr && event.detail.xhr.status === 422;
    mark(section, refused);
    const focus = refused
      ? section.querySelector('[aria-invalid="true"]')
      : section.querySelector("footer button");
    if (focus instanceof HTMLElement) focus.focus();
  });
})();

// A choice that applies at once (the Orders page's page size); without JavaScript a button does it.
document.addEventListener("change", (event) => {
  const select = event.target;
  if (select instanceof HTMLSelectElement && select.matches("[data-submit-on-change]") && select.form) {
    select.form.requestSubmit();
  }
});

// Orders that arrive while the seller reads further down: the list does not jump, a marker says how
// many came in on top, and takes the seller there.
(() => {
  const body = document.getElementById("orders-body");
  const marker = document.getElementById("new-orders");
  if (!body || !marker) return;
  const known = new Set([...body.rows].map((row) => row.id));
  let waiting = 0;

  const topInView = () => body.getBoundingClientRect().top >= 0;
  function show() {
    marker.textContent = waiting === 1 ? marker.dataset.one : marker.dataset.many.replace("{n}", waiting);
    marker.hidden = waiting === 0;
  }

  new MutationObserver((changes) => {
    let arrived = 0;
    for (const change of changes) {
      for (const node of change.addedNodes) {
        if (node instanceof HTMLTableRowElement && !known.has(node.id)) {
          known.add(node.id);
          arrived += 1;
        }
      }
    }
    if (arrived && !topInView()) {
      waiting += arrived;
      show();
    }
  }).observe(body, { childList: true });

  marker.addEventListener("click", () => {
    waiting = 0;
    show();
    body.closest("table").scrollIntoView({ behavior: "smooth" });
  });
  window.addEventListener("scroll", () => {
    if (waiting && topInView()) {
      waiting = 0;
      show();
    }
  }, { passive: true });
})();
