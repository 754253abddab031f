// A link's stats (GET /api/v1/links/{code}/stats), updated as clicks arrive while "Live" is on:
// the live stream (GET /api/v1/links/{code}/live, api.live) adds each event's clicks to the
// counters and to the chart's bucket at once, and the page reads /stats again shortly after (unique
// visitors, referrers, countries and devices, and the exact counts: live counts are best-effort).
// Bots are counted apart: with "Show bot clicks" the page also asks with include_bots=true and
// draws the difference as its own series.
import { useEffect, useMemo, useRef, useState } from "preact/hooks";
import { api, live as openLive } from "../api.js";
import { ClicksChart } from "../components/ClicksChart.jsx";
import { ErrorBox, PageTitle, formatTime } from "../components/common.jsx";
import { href } from "../router.js";

const HOUR = 3600 * 1000;
const RANGES = [
  { id: "1h", label: "Last hour", ms: HOUR, intervals: ["minute"] },
  { id: "24h", label: "Last 24 hours", ms: 24 * HOUR, intervals: ["minute", "hour"] },
  { id: "7d", label: "Last 7 days", ms: 7 * 24 * HOUR, intervals: ["hour", "day"] },
  { id: "30d", label: "Last 30 days", ms: 30 * 24 * HOUR, intervals: ["hour", "day"] },
  { id: "365d", label: "Last 12 months", ms: 365 * 24 * HOUR, intervals: ["day"] },
];
// After a live event, /stats is read again this long after the last one (what live events
// cannot carry: unique visitors, breakdowns; and the exact counts).
const RECONCILE_MS = 1500;
const RECONNECT_MIN_MS = 1000;
const RECONNECT_MAX_MS = 30000;

const STEP_S = { minute: 60, hour: 3600, day: 86400 };

/** `stats` (a /stats answer) with a live event's clicks added: totals, lifetime and the bucket. */
function addLive(stats, event, { withBots }) {
  if (!stats) return stats;
  const added = event.clicks + (withBots ? event.bot_clicks : 0);
  const at = Date.parse(event.last_at);
  const step = STEP_S[stats.interval] * 1000;
  const inRange = at >= Date.parse(stats.from) && at < Date.parse(stats.to);
  return {
    ...stats,
    totals: { ...stats.totals, clicks: stats.totals.clicks + (inRange ? added : 0) },
    lifetime: {
      ...stats.lifetime,
      clicks: stats.lifetime.clicks + event.clicks,
      bot_clicks: stats.lifetime.bot_clicks + event.bot_clicks,
      last_click_at: event.last_at,
    },
    series: stats.series.map((p) => {
      const t = Date.parse(p.t);
      return at >= t && at < t + step ? { ...p, clicks: p.clicks + added } : p;
    }),
  };
}

let regionNames = null;
function country(code) {
  if (code === "ZZ" || !code) return "Unknown";
  try {
    regionNames ||= new Intl.DisplayNames(["en"], { type: "region" });
    return `${regionNames.of(code)} (${code})`;
  } catch {
    return code;
  }
}

function ShareTable({ title, column, rows, name = (v) => v || "(none)" }) {
  const total = rows.reduce((sum, r) => sum + r.clicks, 0);
  return (
    <section class="share">
      <h2>{title}</h2>
      {rows.length === 0 ? (
        <p>No clicks in this range.</p>
      ) : (
        <table>
          <thead>
            <tr>
              <th scope="col">{column}</th>
              <th scope="col" class="num">Clicks</th>
              <th scope="col" class="num">Share</th>
            </tr>
          </thead>
          <tbody>
            {rows.map((r) => (
              <tr key={r.value}>
                <td class="break">{name(r.value)}</td>
                <td class="num">{r.clicks}</td>
                <td class="num">{total ? Math.round((100 * r.clicks) / total) : 0}%</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}

export function Stats({ code }) {
  const [rangeId, setRangeId] = useState("24h");
  const [interval, setInterval_] = useState("hour");
  const [showBots, setShowBots] = useState(false);
  const [live, setLive] = useState(true);
  const [stats, setStats] = useState(null);
  const [withBots, setWithBots] = useState(null);
  const [error, setError] = useState(null);
  const [tick, setTick] = useState(0);
  const [liveState, setLiveState] = useState("off"); // off | connecting | connected | retrying | refused
  const reconcile = useRef(null);
  const range = RANGES.find((r) => r.id === rangeId);

  function pickRange(id) {
    const next = RANGES.find((r) => r.id === id);
    setRangeId(id);
    if (!next.intervals.includes(interval)) setInterval_(next.intervals[next.intervals.length - 1]);
  }

  useEffect(() => {
    let current = true; // an answer that arrives after the range changed is dropped
    const query = { from: new Date(Date.now() - range.ms).toISOString(), interval };
    Promise.all([
      api.stats(code, { ...query, includeBots: false }),
      showBots ? api.stats(code, { ...query, includeBots: true }) : Promise.resolve(null),
    ]).then(
      ([humans, all]) => {
        if (!current) return;
        setStats(humans);
        setWithBots(all);
        setError(null);
      },
      (err) => current && setError(err),
    );
    return () => {
      current = false;
    };
  }, [code, rangeId, interval, showBots, tick]);

  // The live stream: reconnected with a growing delay (or the server's Retry-After) when it drops
  // or is refused for now, at once when it ends normally (its time was up); given up on 401/403.
  useEffect(() => {
    if (!live) {
      setLiveState("off");
      return undefined;
    }
    const controller = new AbortController();
    const { signal } = controller;
    function onEvent(name, data) {
      if (name === "ready") {
        setLiveState("connected");
        setTick((t) => t + 1); // the counters from now on: read /stats once the stream is open
      } else if (name === "clicks") {
        setStats((current) => addLive(current, data, { withBots: false }));
        setWithBots((current) => addLive(current, data, { withBots: true }));
        window.clearTimeout(reconcile.current);
        reconcile.current = window.setTimeout(() => setTick((t) => t + 1), RECONCILE_MS);
      }
    }
    (async () => {
      let delay = RECONNECT_MIN_MS;
      while (!signal.aborted) {
        setLiveState((state) => (state === "retrying" ? state : "connecting"));
        try {
          await openLive(code, { signal, onEvent });
          delay = RECONNECT_MIN_MS;
          continue;
        } catch (err) {
          if (err.name === "AbortError") return;
          // A key refused is final; a 404 is not: a link created a moment ago reaches analytics
          // a moment later (the stats above say so until then).
          if (err.status === 401 || err.status === 403) {
            setLiveState("refused");
            return;
          }
          setLiveState("retrying");
          const wait = err.retryAfter ? Number(err.retryAfter) * 1000 : delay;
          delay = Math.min(delay * 2, RECONNECT_MAX_MS);
          await new Promise((resolve) => {
            const timer = window.setTimeout(resolve, wait);
            signal.addEventListener("abort", () => (window.clearTimeout(timer), resolve()), { once: true });
          });
        }
      }
    })();
    return () => {
      controller.abort();
      window.clearTimeout(reconcile.current);
    };
  }, [code, live]);

  const points = useMemo(() => {
    if (!stats) return [];
    const all = new Map((withBots?.series || []).map((p) => [p.t, p.clicks]));
    return stats.series.map((p) => ({ ...p, bots: Math.max(0, (all.get(p.t) ?? p.clicks) - p.clicks) }));
  }, [stats, withBots]);
  const botClicks = withBots && stats ? withBots.totals.clicks - stats.totals.clicks : null;

  return (
    <>
      <PageTitle>Stats of {code}</PageTitle>
      <p class="actions">
        <a href={href.edit(code)}>Edit link</a>
        <a href={href.links()}>All my links</a>
      </p>
      <form class="filters" onSubmit={(e) => e.preventDefault()} aria-label="Stats options">
        <div class="field">
          <label for="range">Range</label>
          <select id="range" value={rangeId} onChange={(e) => pickRange(e.currentTarget.value)}>
            {RANGES.map((r) => (
              <option key={r.id} value={r.id}>
                {r.label}
              </option>
            ))}
          </select>
        </div>
        <div class="field">
          <label for="interval">Interval</label>
          <select id="interval" value={interval} onChange={(e) => setInterval_(e.currentTarget.value)}>
            {["minute", "hour", "day"].map((i) => (
              <option key={i} value={i} disabled={!range.intervals.includes(i)}>
                {i[0].toUpperCase() + i.slice(1)}
              </option>
            ))}
          </select>
        </div>
        <div class="field checkbox">
          <input id="show-bots" type="checkbox" checked={showBots} onChange={(e) => setShowBots(e.currentTarget.checked)} />
          <label for="show-bots">Show bot clicks</label>
        </div>
        <div class="field checkbox">
          <input id="live" type="checkbox" checked={live} onChange={(e) => setLive(e.currentTarget.checked)} />
          <label for="live">Live (updates as clicks arrive)</label>
        </div>
        <p class="live-state" role="status" data-testid="live-state">
          {{ off: "", connecting: "Connecting…", connected: "Live", retrying: "Reconnecting…", refused: "Live updates unavailable" }[liveState]}
        </p>
        <button type="button" class="secondary" onClick={() => setTick(tick + 1)}>
          Refresh
        </button>
      </form>
      <ErrorBox error={error} prefix="Could not load the stats:" />
      {stats ? (
        <>
          <dl class="totals" aria-live="polite">
            <div>
              <dt>Clicks</dt>
              <dd data-testid="total-clicks">{stats.totals.clicks}</dd>
            </div>
            <div>
              <dt>Unique visitors</dt>
              <dd data-testid="unique-visitors">{stats.totals.unique_visitors}</dd>
            </div>
            {botClicks !== null ? (
              <div>
                <dt>Bot clicks</dt>
                <dd data-testid="bot-clicks">{botClicks}</dd>
              </div>
            ) : null}
            <div>
              <dt>All-time clicks</dt>
              <dd data-testid="lifetime-clicks">{stats.lifetime.clicks}</dd>
            </div>
            <div>
              <dt>Last click</dt>
              <dd>{formatTime(stats.lifetime.last_click_at)}</dd>
            </div>
          </dl>
          <ClicksChart
            points={points}
            showBots={showBots}
            label={`Clicks per ${stats.interval}, ${formatTime(stats.from)} to ${formatTime(stats.to)}: ${stats.totals.clicks} clicks, ${stats.totals.unique_visitors} unique visitors`}
          />
          <details class="series-table">
            <summary>Show the numbers as a table</summary>
            <table>
              <thead>
                <tr>
                  <th scope="col">Time</th>
                  <th scope="col" class="num">Clicks</th>
                  <th scope="col" class="num">Unique</th>
                  {showBots ? <th scope="col" class="num">Bots</th> : null}
                </tr>
              </thead>
              <tbody>
                {points.filter((p) => p.clicks || p.bots).map((p) => (
                  <tr key={p.t}>
                    <td>{formatTime(p.t)}</td>
                    <td class="num">{p.clicks}</td>
                    <td class="num">{p.unique_visitors}</td>
                    {showBots ? <td class="num">{p.bots}</td> : null}
                  </tr>
                ))}
              </tbody>
            </table>
          </details>
          <div class="shares">
            <ShareTable title="Referrers" column="Referrer" rows={stats.top_referrers} name={(v) => v || "Direct / none"} />
            <ShareTable title="Countries" column="Country" rows={stats.countries} name={country} />
            <ShareTable title="Devices" column="Device" rows={stats.devices} />
          </div>
        </>
      ) : null}
    </>
  );
}
