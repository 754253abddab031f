// The fields of a link, for creating (with an alias) and for editing (only what changed is sent).
import { useState } from "preact/hooks";
import { ErrorBox } from "./common.jsx";

const pad = (n) => String(n).padStart(2, "0");

/** ISO time -> the value of <input type="datetime-local"> (the browser's local time). */
function toLocalInput(iso) {
  if (!iso) return "";
  const d = new Date(iso);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

export function parseTags(text) {
  const seen = new Set();
  for (const part of text.split(",")) {
    const tag = part.trim();
    if (tag) seen.add(tag);
  }
  return [...seen];
}

export function initialValues(link) {
  return {
    url: link?.url || "",
    alias: "",
    expires: toLocalInput(link?.expires_at),
    maxClicks: link?.max_clicks ? String(link.max_clicks) : "",
    redirectType: String(link?.redirect_type || 302),
    tags: (link?.tags || []).join(", "),
    publicStats: Boolean(link?.public_stats),
  };
}

/** The JSON body: on create, every field given; on edit, the fields that differ from `before`. */
export function requestBody(values, before) {
  const expires = values.expires ? new Date(values.expires).toISOString() : null;
  const maxClicks = values.maxClicks ? Number(values.maxClicks) : null;
  const fields = {
    url: values.url.trim(),
    expires_at: expires,
    max_clicks: maxClicks,
    redirect_type: Number(values.redirectType),
    tags: parseTags(values.tags),
    public_stats: values.publicStats,
  };
  if (!before) {
    // Optional fields are left out unless set: the API's defaults apply, and a server without
    // tags or public stats still accepts a plain link.
    const body = { url: fields.url, redirect_type: fields.redirect_type };
    if (values.alias.trim()) body.alias = values.alias.trim();
    if (expires) body.expires_at = expires;
    if (maxClicks) body.max_clicks = maxClicks;
    if (fields.tags.length) body.tags = fields.tags;
    if (fields.public_stats) body.public_stats = true;
    return body;
  }
  const old = requestBody(initialValues(before), null);
  const changes = {};
  if (fields.url !== before.url) changes.url = fields.url;
  // Compared at the input's precision (minutes), so an untouched expiry is not sent again.
  if (values.expires !== toLocalInput(before.expires_at)) changes.expires_at = expires;
  if (maxClicks !== (before.max_clicks ?? null)) changes.max_clicks = maxClicks;
  if (fields.redirect_type !== old.redirect_type) changes.redirect_type = fields.redirect_type;
  if (fields.tags.join("\n") !== (before.tags || []).join("\n")) changes.tags = fields.tags;
  if (fields.public_stats !== Boolean(before.public_stats)) changes.public_stats = fields.public_stats;
  return changes;
}

function Field({ id, label, hint, error, children }) {
  const describedBy = [hint ? `${id}-hint` : null, error ? `${id}-error` : null].filter(Boolean).join(" ");
  return (
    <div class={`field${error ? " invalid" : ""}`}>
      <label for={id}>{label}</label>
      {children({ id, "aria-describedby": describedBy || undefined, "aria-invalid": error ? "true" : undefined })}
      {hint ? (
        <p class="hint" id={`${id}-hint`}>
          {hint}
        </p>
      ) : null}
      {error ? (
        <p class="field-error" id={`${id}-error`}>
          {error}
        </p>
      ) : null}
    </div>
  );
}

export function LinkForm({ link, submitLabel, busy, error, onSubmit }) {
  const [values, setValues] = useState(() => initialValues(link));
  const set = (name) => (event) =>
    setValues({ ...values, [name]: event.currentTarget.type === "checkbox" ? event.currentTarget.checked : event.currentTarget.value });
  const fieldError = (...names) => (error && names.includes(error.field) ? error.message : null);
  const editing = Boolean(link);

  function submit(event) {
    event.preventDefault();
    onSubmit(requestBody(values, link), values);
  }

  return (
    <form class="link-form" onSubmit={submit} noValidate={false}>
      <Field id="url" label="Long URL" error={fieldError("url")}>
        {(a) => (
          <input {...a} type="url" name="url" required autoComplete="url" inputMode="url"
                 placeholder="https://example.com/a/long/page" value={values.url} onInput={set("url")} />
        )}
      </Field>
      {editing ? null : (
        <Field id="alias" label="Custom alias (optional)" hint="3–64 letters, digits, - or _"
               error={fieldError("alias")}>
          {(a) => (
            <input {...a} type="text" name="alias" pattern="[A-Za-z0-9_\-]{3,64}" autoComplete="off"
                   spellcheck={false} value={values.alias} onInput={set("alias")} />
          )}
        </Field>
      )}
      <div class="row">
        <Field id="expires" label="Expires (optional)" hint="Your local time" error={fieldError("expires_at")}>
          {(a) => <input {...a} type="datetime-local" name="expires" value={values.expires} onInput={set("expires")} />}
        </Field>
        <Field id="max-clicks" label="Max clicks (optional)" error={fieldError("max_clicks")}>
          {(a) => (
            <input {...a} type="number" name="max_clicks" min="1" step="1" inputMode="numeric"
                   value={values.maxClicks} onInput={set("maxClicks")} />
          )}
        </Field>
        <Field id="redirect-type" label="Redirect type" error={fieldError("redirect_type")}>
          {(a) => (
            <select {...a} name="redirect_type" value={values.redirectType} onChange={set("redirectType")}>
              <option value="302">302 Found (temporary)</option>
              <option value="301">301 Moved Permanently</option>
            </select>
          )}
        </Field>
      </div>
      <Field id="tags" label="Tags (optional)" hint="Separated by commas, e.g. newsletter, spring"
             error={fieldError("tags")}>
        {(a) => <input {...a} type="text" name="tags" autoComplete="off" value={values.tags} onInput={set("tags")} />}
      </Field>
      <div class={`field checkbox${fieldError("public_stats") ? " invalid" : ""}`}>
        <input id="public-stats" type="checkbox" name="public_stats" checked={values.publicStats}
               onChange={set("publicStats")} aria-describedby="public-stats-hint" />
        <label for="public-stats">Public stats</label>
        <p class="hint" id="public-stats-hint">Anyone with the code may read this link's stats, without a key.</p>
        {fieldError("public_stats") ? <p class="field-error">{fieldError("public_stats")}</p> : null}
      </div>
      <ErrorBox error={error && !["url", "alias", "expires_at", "max_clicks", "redirect_type", "tags", "public_stats"].includes(error.field) ? error : null} />
      {error && error.field ? (
        <p class="visually-hidden" role="alert">
          {error.message}
        </p>
      ) : null}
      <button type="submit" disabled={busy}>
        {busy ? "Working…" : submitLabel}
      </button>
    </form>
  );
}
