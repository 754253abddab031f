import { useEffect, useState } from "preact/hooks";
import { api } from "../api.js";
import { CopyButton, ErrorBox, PageTitle } from "../components/common.jsx";
import { LinkForm } from "../components/LinkForm.jsx";
import { QrCode } from "../components/QrCode.jsx";
import { href, navigate } from "../router.js";

export function Edit({ code }) {
  const [link, setLink] = useState(null);
  const [loadError, setLoadError] = useState(null);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState(null);
  const [saved, setSaved] = useState("");

  useEffect(() => {
    api.getLink(code).then(setLink, setLoadError);
  }, [code]);

  async function save(changes) {
    setError(null);
    setSaved("");
    if (Object.keys(changes).length === 0) {
      setSaved("Nothing changed.");
      return;
    }
    setBusy(true);
    try {
      setLink(await api.updateLink(code, changes));
      setSaved("Saved.");
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  }

  async function remove() {
    setBusy(true);
    try {
      await api.deleteLink(code);
      navigate(href.links());
    } catch (err) {
      setError(err);
      setBusy(false);
    }
  }

  return (
    <>
      <PageTitle>Edit {code}</PageTitle>
      <ErrorBox error={loadError} prefix="Could not load the link:" />
      {link ? (
        <>
          <p class="short-url">
            <a href={link.short_url} target="_blank" rel="noopener noreferrer">
              {link.short_url}
            </a>{" "}
            <CopyButton text={link.short_url} />
          </p>
          <LinkForm key={link.code} link={link} submitLabel="Save changes" busy={busy} error={error} onSubmit={save} />
          <p role="status" class="saved">
            {saved}
          </p>
          <QrCode code={link.code} shortUrl={link.short_url} />
          <DeleteButton code={code} busy={busy} onConfirm={remove} />
        </>
      ) : null}
    </>
  );
}

/** Two steps (Delete, then Confirm) instead of a browser dialog: keyboard- and test-friendly. */
export function DeleteButton({ code, busy, onConfirm }) {
  const [asking, setAsking] = useState(false);
  if (!asking) {
    return (
      <button type="button" class="danger-outline" disabled={busy} onClick={() => setAsking(true)}
              aria-label={`Delete ${code}`}>
        Delete
      </button>
    );
  }
  return (
    <span class="confirm" role="group" aria-label={`Delete ${code}?`}>
      <span>Delete {code}? Its code is never reused.</span>
      <button type="button" class="danger" disabled={busy} onClick={onConfirm} autoFocus>
        Confirm delete
      </button>
      <button type="button" class="secondary" onClick={() => setAsking(false)}>
        Cancel
      </button>
    </span>
  );
}
