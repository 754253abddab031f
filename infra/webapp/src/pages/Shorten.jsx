import { useState } from "preact/hooks";
import { api } from "../api.js";
import { CopyButton, PageTitle, Tags } from "../components/common.jsx";
import { LinkForm } from "../components/LinkForm.jsx";
import { QrCode } from "../components/QrCode.jsx";
import { href } from "../router.js";

export function Shorten() {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState(null);
  const [created, setCreated] = useState(null);
  const [formKey, setFormKey] = useState(0);

  async function create(body) {
    setBusy(true);
    setError(null);
    try {
      setCreated(await api.createLink(body));
      setFormKey(formKey + 1); // a fresh, empty form for the next link
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  }

  return (
    <>
      <PageTitle>Shorten a link</PageTitle>
      <LinkForm key={formKey} submitLabel="Shorten" busy={busy} error={error} onSubmit={create} />
      {created ? (
        <section class="result" aria-labelledby="result-title">
          <h2 id="result-title">Your short link</h2>
          <p class="short-url">
            <a href={created.short_url} target="_blank" rel="noopener noreferrer" data-testid="short-url">
              {created.short_url}
            </a>{" "}
            <CopyButton text={created.short_url} />
          </p>
          <p class="target">
            → <span class="break">{created.url}</span>
          </p>
          <Tags tags={created.tags} />
          <QrCode code={created.code} shortUrl={created.short_url} />
          <p class="actions">
            <a href={href.stats(created.code)}>View stats</a>
            <a href={href.edit(created.code)}>Edit</a>
            <a href={href.links()}>All my links</a>
          </p>
        </section>
      ) : null}
    </>
  );
}
