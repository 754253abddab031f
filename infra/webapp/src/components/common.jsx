import { useEffect, useRef, useState } from "preact/hooks";

/** The page title, focused on arrival so screen readers announce the new page. */
export function PageTitle({ children }) {
  const ref = useRef(null);
  useEffect(() => {
    ref.current?.focus();
    document.title = `${ref.current?.textContent || ""} · Shortlink`;
  }, []);
  return (
    <h1 ref={ref} tabIndex={-1}>
      {children}
    </h1>
  );
}

/** An API failure as the user sees it: the message, and the stable code for support. */
export function ErrorBox({ error, prefix }) {
  if (!error) return null;
  const wait = error.retryAfter ? ` Try again in ${error.retryAfter} s.` : "";
  return (
    <div class="error" role="alert">
      {prefix ? <strong>{prefix} </strong> : null}
      {error.message}
      {wait}
      {error.code ? <span class="error-code"> ({error.code})</span> : null}
    </div>
  );
}

export function CopyButton({ text, label = "Copy" }) {
  const [status, setStatus] = useState("");
  async function copy() {
    try {
      await navigator.clipboard.writeText(text);
      setStatus("Copied");
    } catch {
      setStatus("Copy failed: select the text and copy it");
    }
    window.setTimeout(() => setStatus(""), 2500);
  }
  return (
    <span class="copy">
      <button type="button" class="secondary" onClick={copy} aria-label={`${label} ${text}`}>
        {label}
      </button>
      <span class="copy-status" role="status" aria-live="polite">
        {status}
      </span>
    </span>
  );
}

export function formatTime(iso) {
  if (!iso) return "—";
  return new Date(iso).toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
}

export function Tags({ tags }) {
  if (!tags || tags.length === 0) return null;
  return (
    <ul class="tags" aria-label="Tags">
      {tags.map((tag) => (
        <li key={tag}>{tag}</li>
      ))}
    </ul>
  );
}
