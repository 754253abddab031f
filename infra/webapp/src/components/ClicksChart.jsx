// The time series drawn by uPlot (canvas; about 50 KB). Resized with its container, so it fits a
// phone's width; a table of the same numbers sits under it for screen readers and keyboards.
import { useEffect, useRef } from "preact/hooks";
import uPlot from "uplot";
import "uplot/dist/uPlot.min.css";

const COLORS = { clicks: "#1f5fbf", unique: "#1b8a5a", bots: "#b5542b" };

function options(width, series) {
  return {
    width,
    height: 240,
    cursor: { drag: { x: false, y: false } },
    scales: { x: { time: true }, y: { range: (_u, _min, max) => [0, Math.max(1, max)] } },
    axes: [{}, { label: "clicks", size: 50 }],
    legend: { show: true },
    series: [
      {},
      ...series.map((s) => ({ label: s.label, stroke: s.color, width: 2, fill: s.fill, points: { show: false } })),
    ],
  };
}

/** `points`: [{t, clicks, unique_visitors, bots?}]; bots drawn only when `showBots`. */
export function ClicksChart({ points, showBots, label }) {
  const box = useRef(null);
  const plot = useRef(null);

  useEffect(() => {
    const series = [
      { label: "Clicks", color: COLORS.clicks, fill: "rgba(31,95,191,0.08)", values: points.map((p) => p.clicks) },
      { label: "Unique visitors", color: COLORS.unique, values: points.map((p) => p.unique_visitors) },
    ];
    if (showBots) series.push({ label: "Bot clicks", color: COLORS.bots, values: points.map((p) => p.bots || 0) });
    const data = [points.map((p) => Date.parse(p.t) / 1000), ...series.map((s) => s.values)];
    const element = box.current; // the ref is null once unmounted; a late resize callback keeps this
    plot.current = new uPlot(options(Math.max(280, element.clientWidth), series), data, element);
    const resize = new ResizeObserver(() => {
      plot.current?.setSize({ width: Math.max(280, element.clientWidth), height: 240 });
    });
    resize.observe(element);
    return () => {
      resize.disconnect();
      plot.current?.destroy();
      plot.current = null;
    };
  }, [points, showBots]);

  return <div class="chart" ref={box} role="img" aria-label={label} />;
}
