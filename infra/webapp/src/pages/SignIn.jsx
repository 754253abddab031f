import { useState } from "preact/hooks";
import { ApiError, call, session } from "../api.js";
import { ErrorBox, PageTitle } from "../components/common.jsx";

/** The key is checked by reading a link that cannot exist: 401 for a wrong key, 404 for a good
 * one (the key is checked before the code), and nothing is written. */
async function keyAccepted() {
  try {
    await call("/api/v1/links/-");
    return true;
  } catch (error) {
    if (error instanceof ApiError && error.status === 404) return true;
    throw error;
  }
}

export function SignIn({ onSignedIn }) {
  const [key, setKey] = useState("");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState(null);

  async function submit(event) {
    event.preventDefault();
    setBusy(true);
    setError(null);
    session.signIn(key);
    try {
      await keyAccepted();
      onSignedIn();
    } catch (err) {
      session.signOut();
      setError(err);
    } finally {
      setBusy(false);
    }
  }

  return (
    <main id="main" class="signin">
      <PageTitle>Sign in</PageTitle>
      <p>Use your workspace's API key. It is kept in this tab only and forgotten when you close it.</p>
      <form onSubmit={submit}>
        <div class="field">
          <label for="api-key">API key</label>
          <input id="api-key" type="password" name="api_key" required autoComplete="off" spellcheck={false}
                 value={key} onInput={(e) => setKey(e.currentTarget.value)} />
        </div>
        <ErrorBox error={error} prefix="Sign-in failed:" />
        <button type="submit" disabled={busy || !key.trim()}>
          {busy ? "Checking…" : "Sign in"}
        </button>
      </form>
    </main>
  );
}
