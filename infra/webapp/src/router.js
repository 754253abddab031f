// Hash routes (#/links, #/stats/abc123): every page is index.html, so nginx needs no fallback
// rule and a reload keeps the page.
import { useEffect, useState } from "preact/hooks";

const ROUTES = [
  ["shorten", /^\/?$/],
  ["links", /^\/links$/],
  ["edit", /^\/links\/([^/]+)\/edit$/],
  ["stats", /^\/stats\/([^/]+)$/],
  ["top", /^\/top$/],
];

export function parse(hash) {
  const path = decodeURIComponent(hash.replace(/^#/, "").split("?")[0] || "/");
  for (const [name, pattern] of ROUTES) {
    const match = pattern.exec(path);
    if (match) return { name, code: match[1] };
  }
  return { name: "missing", code: null };
}

export const href = {
  shorten: () => "#/",
  links: () => "#/links",
  edit: (code) => `#/links/${encodeURIComponent(code)}/edit`,
  stats: (code) => `#/stats/${encodeURIComponent(code)}`,
  top: () => "#/top",
};

export function navigate(to) {
  window.location.hash = to;
}

export function useRoute() {
  const [route, setRoute] = useState(() => parse(window.location.hash));
  useEffect(() => {
    const changed = () => setRoute(parse(window.location.hash));
    window.addEventListener("hashchange", changed);
    return () => window.removeEventListener("hashchange", changed);
  }, []);
  return route;
}
