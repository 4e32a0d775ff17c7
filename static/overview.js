// The Overview's charts: each canvas carries its data (data-chart, as Chart.js reads it); drawn on load
// and again when the page's poll brings new figures.
(() => {
  // One colour per series, readable on white, in the order the series come.
  const COLOURS = ["#1565c0", "#ef6c00", "#2e7d32", "#6a1b9a", "#00838f", "#ad1457", "#5d4037"];

  function draw(canvas) {
    const data = JSON.parse(canvas.dataset.chart);
    const stacked = canvas.hasAttribute("data-stacked");
    data.datasets.forEach((set, index) => {
      set.backgroundColor = COLOURS[index % COLOURS.length];
      set.borderColor = COLOURS[index % COLOURS.length];
    });
    const previous = window.Chart.getChart(canvas);
    if (previous) previous.destroy();
    new window.Chart(canvas, {
      type: data.type,
      data: { labels: data.labels, datasets: data.datasets },
      options: {
        animation: false,
        maintainAspectRatio: false,
        scales: {
          x: { stacked },
          y: { stacked, beginAtZero: true, ticks: { precision: 0 } },
        },
        plugins: { legend: { display: data.datasets.length > 1 } },
      },
    });
  }

  function drawAll(root) {
    if (!window.Chart) return;
    root.querySelectorAll("canvas[data-chart]").forEach(draw);
  }

  document.addEventListener("DOMContentLoaded", () => drawAll(document));
  document.addEventListener("htmx:afterSettle", (event) => {
    if (event.target instanceof Element && event.target.id === "overview-live") drawAll(event.target);
  });
})();
