import { useEffect, useState } from "preact/hooks";
import { api } from "../api.js";
import { ErrorBox, PageTitle } from "../components/common.jsx";
import { href } from "../router.js";

const POLL_MS = 5000;

export function Top() {
  const [window_, setWindow] = useState("24h");
  const [tag, setTag] = useState("");
  const [draftTag, setDraftTag] = useState("");
  const [includeBots, setIncludeBots] = useState(false);
  const [top, setTop] = useState(null);
  const [error, setError] = useState(null);
  const [tick, setTick] = useState(0);

  // Refreshed while the tab is visible, like the stats page: the ranking moves with the clicks.
  useEffect(() => {
    const timer = window.setInterval(() => document.visibilityState === "visible" && setTick((t) => t + 1), POLL_MS);
    return () => window.clearInterval(timer);
  }, []);

  useEffect(() => {
    let current = true;
    api.top({ window: window_, limit: 20, tag, includeBots }).then(
      (answer) => current && (setTop(answer), setError(null)),
      (err) => current && (setTop(null), setError(err)),
    );
    return () => {
      current = false;
    };
  }, [window_, tag, includeBots, tick]);

  return (
    <>
      <PageTitle>Top links</PageTitle>
      <p class="hint">Refreshed every {POLL_MS / 1000} s.</p>
      <form class="filters" onSubmit={(e) => (e.preventDefault(), setTag(draftTag.trim()))}>
        <div class="field">
          <label for="window">Window</label>
          <select id="window" value={window_} onChange={(e) => setWindow(e.currentTarget.value)}>
            <option value="1h">Last hour</option>
            <option value="24h">Last 24 hours</option>
            <option value="7d">Last 7 days</option>
          </select>
        </div>
        <div class="field">
          <label for="top-tag">Tag</label>
          <input id="top-tag" type="text" value={draftTag} onInput={(e) => setDraftTag(e.currentTarget.value)} />
        </div>
        <div class="field checkbox">
          <input id="top-bots" type="checkbox" checked={includeBots} onChange={(e) => setIncludeBots(e.currentTarget.checked)} />
          <label for="top-bots">Include bots</label>
        </div>
        <button type="submit">Apply</button>
      </form>
      <ErrorBox error={error} prefix="Could not load the top links:" />
      {top && top.links.length === 0 ? <p>No clicks in this window.</p> : null}
      {top && top.links.length > 0 ? (
        <div class="table-scroll">
          <table>
            <caption class="visually-hidden">Most clicked links</caption>
            <thead>
              <tr>
                <th scope="col" class="num">#</th>
                <th scope="col">Link</th>
                <th scope="col" class="num">Clicks</th>
                <th scope="col" class="num">Unique visitors</th>
              </tr>
            </thead>
            <tbody>
              {top.links.map((link, i) => (
                <tr key={link.code}>
                  <td class="num">{i + 1}</td>
                  <td>
                    <a href={href.stats(link.code)}>{link.code}</a>
                  </td>
                  <td class="num">{link.clicks}</td>
                  <td class="num">{link.unique_visitors}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      ) : null}
    </>
  );
}
