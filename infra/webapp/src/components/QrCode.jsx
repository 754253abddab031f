// The link's QR code from GET /api/v1/links/{code}/qr. The endpoint needs the API key, which an
// <img src> cannot send: the image is fetched with it and shown from a blob: URL.
import { useEffect, useState } from "preact/hooks";
import { api } from "../api.js";
import { ErrorBox } from "./common.jsx";

function useBlobUrl(load, deps) {
  const [state, setState] = useState({ url: null, error: null });
  useEffect(() => {
    let url = null;
    let live = true;
    load()
      .then((blob) => {
        url = URL.createObjectURL(blob);
        if (live) setState({ url, error: null });
      })
      .catch((error) => live && setState({ url: null, error }));
    return () => {
      live = false;
      if (url) URL.revokeObjectURL(url);
    };
  }, deps);
  return state;
}

export function QrCode({ code, shortUrl }) {
  const svg = useBlobUrl(() => api.qr(code, { format: "svg", size: 240 }), [code]);
  const png = useBlobUrl(() => api.qr(code, { format: "png", size: 1024 }), [code]);
  return (
    <figure class="qr">
      <ErrorBox error={svg.error} prefix="QR code unavailable:" />
      {svg.url ? <img src={svg.url} width="240" height="240" alt={`QR code of ${shortUrl}`} /> : null}
      <figcaption>
        {png.url ? (
          <a href={png.url} download={`${code}-qr.png`}>
            Download PNG
          </a>
        ) : null}
        {svg.url ? (
          <a href={svg.url} download={`${code}-qr.svg`}>
            Download SVG
          </a>
        ) : null}
      </figcaption>
    </figure>
  );
}
