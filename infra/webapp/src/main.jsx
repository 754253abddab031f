import { render } from "preact";
import { useState } from "preact/hooks";
import { session } from "./api.js";
import { Edit } from "./pages/Edit.jsx";
import { Links } from "./pages/Links.jsx";
import { Shorten } from "./pages/Shorten.jsx";
import { SignIn } from "./pages/SignIn.jsx";
import { Stats } from "./pages/Stats.jsx";
import { Top } from "./pages/Top.jsx";
import { href, useRoute } from "./router.js";
import "./style.css";

const NAV = [
  ["shorten", "Shorten", href.shorten()],
  ["links", "My links", href.links()],
  ["top", "Top links", href.top()],
];

function Page({ route }) {
  switch (route.name) {
    case "shorten":
      return <Shorten />;
    case "links":
      return <Links />;
    case "edit":
      return <Edit key={route.code} code={route.code} />;
    case "stats":
      return <Stats key={route.code} code={route.code} />;
    case "top":
      return <Top />;
    default:
      return (
        <p>
          No such page. <a href={href.shorten()}>Shorten a link</a>
        </p>
      );
  }
}

function App() {
  const [signedIn, setSignedIn] = useState(() => Boolean(session.key()));
  const route = useRoute();
  if (!signedIn) return <SignIn onSignedIn={() => setSignedIn(true)} />;
  const current = route.name === "edit" || route.name === "stats" ? "links" : route.name;
  return (
    <>
      <a class="skip" href="#main" onClick={(e) => (e.preventDefault(), document.getElementById("main")?.focus())}>
        Skip to content
      </a>
      <header class="top-bar">
        <a class="brand" href={href.shorten()}>
          Shortlink
        </a>
        <nav aria-label="Main">
          <ul>
            {NAV.map(([name, label, to]) => (
              <li key={name}>
                <a href={to} aria-current={current === name ? "page" : undefined}>
                  {label}
                </a>
              </li>
            ))}
          </ul>
        </nav>
        <button type="button" class="secondary sign-out" onClick={() => (session.signOut(), setSignedIn(false))}>
          Sign out
        </button>
      </header>
      <main id="main" tabIndex={-1}>
        <Page key={`${route.name}:${route.code}`} route={route} />
      </main>
    </>
  );
}

render(<App />, document.getElementById("root"));
