"""CPU the redirect's click pipeline spends per click, in-process (part of `just bench redirect`).

Drives the service's own pipeline (redirect.bootstrap.click_pipeline: ClickFactory, BatchFormer,
KafkaClickSink with the service's settings, publishing to TOPIC_CLICKS, a throwaway topic) over
raw clicks shaped like the bench's requests: the captured headers of redirect.lua's GETs (Host,
the browser User-Agent, the Referer), a loopback peer, the bench codes in turn. Clicks go in by
flushes of --per-flush (what the redirect case gathered per flush interval at its measured rate),
and each stage's process CPU time (time.process_time: this process, all threads) is summed:
  build    raw tuple -> Click (headers, client IP, UA class from its cache, visitor key, event id)
  form     group by partition, encode the ClicksBatched records (one msgspec call per batch)
  publish  aiokafka: record batches, the produce request, the ack (waiting costs no CPU)
The request path's part (`ClickBuffer.add`, one deque append) is not in it: it is in the
redirect case's own CPU per request. Prints one JSON line: us per click per stage and "total".
"""

import argparse
import asyncio
import json
import time
from pathlib import Path

from redirect.bootstrap import click_pipeline
from redirect.domain import useragent
from redirect.settings import RedirectSettings

USER_AGENT = b"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36"
HEADERS = [(b"host", b"127.0.0.1"), (b"user-agent", USER_AGENT), (b"referer", b"https://bench.example/page")]


async def measure(codes: list[str], per_flush: int, minimum: int) -> dict[str, float]:
    settings = RedirectSettings()
    useragent.warm_up()
    buffer, sink = click_pipeline(settings, hot=None, client_id="redirect-bench-clicks")
    buffer.max_events = max(buffer.max_events, per_flush)
    spent = {"build": 0.0, "form": 0.0, "publish": 0.0}
    done, warm = 0, True
    try:
        await sink.warm_up()
        while done < minimum:
            now = time.time()
            for i in range(per_flush):
                buffer.add(codes[(done + i) % len(codes)], now, HEADERS, "127.0.0.1")
            t0 = time.process_time()
            buffer.build_some(per_flush)
            t1 = time.process_time()
            await buffer.form_batches()
            t2 = time.process_time()
            while await buffer.send_once():
                pass
            t3 = time.process_time()
            if warm:  # the first flush fills the UA cache and the partitioner's memo: not counted
                warm = False
                continue
            spent["build"] += t1 - t0
            spent["form"] += t2 - t1
            spent["publish"] += t3 - t2
            done += per_flush
    finally:
        await buffer.close(5.0)
    out = {stage: seconds / done * 1e6 for stage, seconds in spent.items()}
    out["total"] = sum(out.values())
    out["clicks"] = done
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--per-flush", type=int, required=True, help="clicks per flush (batch formation)")
    parser.add_argument("--codes", type=Path, required=True, help="file of bench codes, one per line")
    parser.add_argument("--clicks", type=int, default=60_000, help="at least this many clicks are measured")
    args = parser.parse_args()
    codes = args.codes.read_text().split()
    print(json.dumps(asyncio.run(measure(codes, args.per_flush, args.clicks))))


if __name__ == "__main__":
    main()
