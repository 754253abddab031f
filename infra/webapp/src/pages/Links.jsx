// My links: GET /api/v1/links?q=&tag=&cursor=&limit= (newest first, keyset cursor). The cursors of
// the pages already seen are kept, so "Previous" goes back without the API paging backwards.
import { useEffect, useState } from "preact/hooks";
import { api } from "../api.js";
import { CopyButton, ErrorBox, PageTitle, Tags, formatTime } from "../components/common.jsx";
import { DeleteButton } from "./Edit.jsx";
import { href } from "../router.js";

const PAGE_SIZE = 20;

export function Links() {
  const [filters, setFilters] = useState({ q: "", tag: "" });
  const [draft, setDraft] = useState({ q: "", tag: "" });
  const [cursors, setCursors] = useState([null]); // cursors[i]: the cursor of page i
  const [page, setPage] = useState(null);
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  const [notice, setNotice] = useState("");
  const cursor = cursors[cursors.length - 1];

  async function load() {
    setBusy(true);
    setError(null);
    try {
      setPage(await api.listLinks({ ...filters, cursor, limit: PAGE_SIZE }));
    } catch (err) {
      setPage(null);
      setError(err);
    } finally {
      setBusy(false);
    }
  }

  useEffect(() => {
    load();
  }, [filters, cursor]);

  function search(event) {
    event.preventDefault();
    setCursors([null]);
    setFilters({ q: draft.q.trim(), tag: draft.tag.trim() });
  }

  async function remove(code) {
    try {
      await api.deleteLink(code);
      setNotice(`Deleted ${code}.`);
      await load();
    } catch (err) {
      setError(err);
    }
  }

  return (
    <>
      <PageTitle>My links</PageTitle>
      <form class="filters" role="search" onSubmit={search}>
        <div class="field">
          <label for="q">Search</label>
          <input id="q" type="search" name="q" placeholder="code, alias or URL" value={draft.q}
                 onInput={(e) => setDraft({ ...draft, q: e.currentTarget.value })} />
        </div>
        <div class="field">
          <label for="tag-filter">Tag</label>
          <input id="tag-filter" type="text" name="tag" value={draft.tag}
                 onInput={(e) => setDraft({ ...draft, tag: e.currentTarget.value })} />
        </div>
        <button type="submit">Search</button>
      </form>
      <p role="status" class="saved">
        {notice}
      </p>
      <ErrorBox error={error} prefix="Could not list links:" />
      {busy && !page ? <p aria-busy="true">Loading…</p> : null}
      {page && page.links.length === 0 ? <p>No links{filters.q || filters.tag ? " match" : " yet"}.</p> : null}
      {page && page.links.length > 0 ? (
        <ul class="link-list" aria-label="Links">
          {page.links.map((link) => (
            <li key={link.code} class="link-card" data-code={link.code}>
              <p class="short-url">
                <a href={link.short_url} target="_blank" rel="noopener noreferrer">
                  {link.short_url}
                </a>
              </p>
              <p class="target break">{link.url}</p>
              <Tags tags={link.tags} />
              <p class="meta">
                Created {formatTime(link.created_at)}
                {link.expires_at ? ` · expires ${formatTime(link.expires_at)}` : ""}
                {link.max_clicks ? ` · max ${link.max_clicks} clicks` : ""}
                {` · ${link.redirect_type}`}
                {link.public_stats ? " · public stats" : ""}
              </p>
              <p class="actions">
                <CopyButton text={link.short_url} />
                <a class="button secondary" href={href.edit(link.code)} aria-label={`Edit ${link.code}`}>
                  Edit
                </a>
                <a class="button secondary" href={href.stats(link.code)} aria-label={`Stats of ${link.code}`}>
                  Stats
                </a>
                <DeleteButton code={link.code} busy={busy} onConfirm={() => remove(link.code)} />
              </p>
            </li>
          ))}
        </ul>
      ) : null}
      <nav class="pager" aria-label="Pages">
        <button type="button" class="secondary" disabled={busy || cursors.length < 2}
                onClick={() => setCursors(cursors.slice(0, -1))}>
          Previous page
        </button>
        <button type="button" class="secondary" disabled={busy || !page || !page.next_cursor}
                onClick={() => setCursors([...cursors, page.next_cursor])}>
          Next page
        </button>
      </nav>
    </>
  );
}
