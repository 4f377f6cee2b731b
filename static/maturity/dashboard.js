// Maturity dashboard: draws the two charts from the numbers the page carries (json_script).
// The same numbers are in the tables beneath each chart, so without this script (or without
// Chart.js) nothing is lost but the picture. Colours come from dashboard.css, motion from the
// person's reduced-motion setting.
(function () {
  "use strict";

  function cssVar(name, fallback) {
    var value = getComputedStyle(document.documentElement).getPropertyValue(name).trim();
    return value || fallback;
  }

  function readData(canvas) {
    var source = document.getElementById(canvas.dataset.source);
    if (!source) return null;
    try {
      return JSON.parse(source.textContent);
    } catch (error) {
      return null;
    }
  }

  function levelColour(label) {
    // "L3" -> the colour of level 3
    return cssVar("--maturity-l" + String(label).replace(/\D/g, ""), "#6c757d");
  }

  function seriesColours() {
    return cssVar("--maturity-series", "#0072b2 #e69f00 #009e73 #cc79a7").split(/\s+/);
  }

  function baseOptions(reduced) {
    return {
      responsive: true,
      maintainAspectRatio: false,
      animation: reduced ? false : { duration: 400 },
      interaction: { mode: "index", intersect: false },
      plugins: {
        legend: { position: "bottom", labels: { boxWidth: 12, boxHeight: 12 } },
      },
    };
  }

  // Both charts stack whole numbers of models per bar.
  function stackedScales() {
    return {
      x: { stacked: true, grid: { display: false } },
      y: {
        stacked: true,
        beginAtZero: true,
        ticks: { precision: 0 },
        title: { display: true, text: "models" },
      },
    };
  }

  function distributionChart(canvas, data, reduced) {
    var palette = seriesColours();
    var background = cssVar("--bs-body-bg", "#fff");
    var options = baseOptions(reduced);
    options.scales = stackedScales();
    options.plugins.tooltip = {
      callbacks: {
        title: function (items) {
          var index = items.length ? items[0].dataIndex : 0;
          return data.labels[index] + " " + (data.level_names[index] || "");
        },
      },
    };
    return new window.Chart(canvas, {
      type: "bar",
      data: {
        labels: data.labels,
        datasets: data.datasets.map(function (dataset, index) {
          var colour = palette[index % palette.length];
          return {
            label: dataset.label,
            data: dataset.data,
            backgroundColor: colour,
            borderColor: background,
            borderWidth: 1,
          };
        }),
      },
      options: options,
    });
  }

  function trendChart(canvas, data, reduced) {
    var background = cssVar("--bs-body-bg", "#fff");
    var options = baseOptions(reduced);
    options.scales = stackedScales();
    options.scales.average = {
      position: "right",
      min: 0,
      max: 5,
      ticks: { stepSize: 1 },
      grid: { drawOnChartArea: false },
      title: { display: true, text: "average level" },
    };
    var datasets = data.datasets.map(function (dataset) {
      return {
        type: "bar",
        label: dataset.label,
        data: dataset.data,
        backgroundColor: levelColour(dataset.label),
        borderColor: background,
        borderWidth: 1,
        stack: "levels",
        order: 2,
      };
    });
    var averageColour = cssVar("--maturity-average", "#212529");
    datasets.push({
      type: "line",
      label: "Average level",
      data: data.averages,
      yAxisID: "average",
      borderColor: averageColour,
      backgroundColor: averageColour,
      borderWidth: 2,
      pointRadius: data.labels.length > 20 ? 0 : 3,
      tension: 0,
      order: 1,
    });
    return new window.Chart(canvas, {
      type: "bar",
      data: { labels: data.labels, datasets: datasets },
      options: options,
    });
  }

  function draw() {
    if (typeof window.Chart !== "function") return;
    var reduced = window.matchMedia && window.matchMedia("(prefers-reduced-motion: reduce)").matches;
    var body = getComputedStyle(document.body);
    window.Chart.defaults.color = body.color;
    window.Chart.defaults.font.family = body.fontFamily;
    window.Chart.defaults.borderColor = cssVar("--bs-border-color", "#dee2e6");
    var builders = { distribution: distributionChart, trend: trendChart };
    document.querySelectorAll("canvas[data-chart]").forEach(function (canvas) {
      var build = builders[canvas.dataset.chart];
      var data = readData(canvas);
      if (!build || !data) return;
      build(canvas, data, reduced);
      canvas.dataset.rendered = "true";
    });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", draw);
  } else {
    draw();
  }
})();
