"""CPU the country lookup adds to building a click (`just bench geoip`).

Builds the same raw clicks (a browser User-Agent, a trusted loopback proxy, X-Forwarded-For from a
pool of public IPv4 and IPv6 addresses) with the redirect's ClickFactory twice per round, with and
without the offline IP database (adapters/geoip.py), alternating the order each round, and prints
us per click for both and the difference (process CPU time, so the machine's other load counts
less than wall time would). The reference is the builder without the lookup. Run with
`python -P` (as `just bench geoip` does): this folder's redirect.py would hide the redirect package.
"""

import argparse
import json
import random
import time

from redirect.adapters.geoip import country_of
from redirect.domain.click_factory import ClickFactory, RawClick
from redirect.domain.ids import new_event_ids
from redirect.domain.useragent import make_classifier, warm_up
from redirect.domain.visitor import TrustedProxies, VisitorKeys, parse_networks

UA = b"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36"


def addresses(count: int, rng: random.Random) -> list[bytes]:
    out = []
    for i in range(count):
        if i % 5 == 0:
            out.append(f"2a0{rng.randrange(10)}:{rng.randrange(65536):x}::{rng.randrange(65536):x}".encode())
        else:
            out.append(".".join(str(rng.randrange(1, 223)) for _ in range(4)).encode())
    return out


def factory(*, geo: bool) -> ClickFactory:
    return ClickFactory(
        visitor_keys=VisitorKeys(b"bench"),
        proxies=TrustedProxies(parse_networks("127.0.0.1")),
        classify=make_classifier(),
        country_of=country_of if geo else (lambda _a: None),
    )


def cpu_per_click(f: ClickFactory, raws: list[RawClick]) -> float:
    ids = new_event_ids(len(raws))
    start = time.process_time()
    for raw, event_id in zip(raws, ids, strict=True):
        f.build(raw, event_id)
    return (time.process_time() - start) / len(raws) * 1e6


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--clicks", type=int, default=50_000, help="clicks per round and variant")
    p.add_argument("--rounds", type=int, default=6)
    args = p.parse_args()
    warm_up()
    rng = random.Random(7)
    now = time.time()
    raws: list[RawClick] = [
        ("benchcode", now, [(b"user-agent", UA), (b"x-forwarded-for", a)], "127.0.0.1")
        for a in addresses(args.clicks, rng)
    ]
    with_geo, without = factory(geo=True), factory(geo=False)
    cpu_per_click(with_geo, raws[:1000])
    cpu_per_click(without, raws[:1000])
    results: dict[str, list[float]] = {"with_geoip": [], "without": []}
    for round_ in range(args.rounds):
        order = [("with_geoip", with_geo), ("without", without)]
        for name, f in order if round_ % 2 == 0 else reversed(order):
            results[name].append(cpu_per_click(f, raws))
    best = {name: min(values) for name, values in results.items()}
    resolved = sum(1 for raw in raws if with_geo.build(raw, new_event_ids(1)[0]).country != "ZZ") / len(raws)
    print(
        json.dumps(
            {
                "us_per_click_build_with_geoip": round(best["with_geoip"], 3),
                "us_per_click_build_without": round(best["without"], 3),
                "geoip_us_per_click": round(best["with_geoip"] - best["without"], 3),
                "ratio": round(best["with_geoip"] / best["without"], 3),
                "share_resolved": round(resolved, 3),
                "clicks": args.clicks,
                "rounds": args.rounds,
            }
        )
    )


if __name__ == "__main__":
    main()
