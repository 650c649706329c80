"""`make bench`: every figure as the median of repeated runs, printed as one table and written
to bench/results.json (git-ignored)."""

from __future__ import annotations

import json
import platform
from pathlib import Path

from bench import collector, console, engine_paths, gate, gateway, hl, ingest, memory, signing, stops

ROWS = []  # (key, value, unit, target, note); a target > 0 is a ceiling, < 0 a floor (-50000: >= 50000)


def main() -> None:
    g50 = gate.measure(50)
    ROWS.append(("gate_p50_us", g50["p50_us"], "µs", 10, "one order, 22 policies, 50 positions"))
    ROWS.append(("gate_p99_us", g50["p99_us"], "µs", 25, "one order, 22 policies, 50 positions"))
    g500 = gate.measure(500)
    ROWS.append(("gate_p99_us_500", g500["p99_us"], "µs", 30, "the same with 500 positions"))
    replay = engine_paths.replay_bars_per_s()
    ROWS.append(("replay_bars_per_s", replay["week"], "bars/s", -50_000,
                 "replay of a seeded week of 1m bars, 10x long, default policies"))
    ROWS.append(("replay_crash_bars_per_s", replay["crash"], "bars/s", None,
                 "the same over the 87 bars of the 2021-05-19 crash (start-up and de-risk dominate)"))
    ROWS.append(("reaction_p99_ms", engine_paths.reaction_p99_ms(), "ms", 5, "mark crossing warnBuffer -> reducing order handed to the connector"))
    marks = ingest.measure()
    ROWS.append(("mark_ingest_per_s", marks["marks_per_s"], "marks/s", -200_000,
                 "allMids of 200 coins, raw JSON -> Book, counters, breakers; 150 positions, default policies"))
    rss = memory.measure()
    ROWS.append(("engine_rss_mb", rss["rss_mb"], "MB", 150,
                 f"engine, service, gateway app, 500 positions, after 1M audit rows appended and verified "
                 f"(verify {rss['verify_s']:.0f} s)"))
    collection = collector.measure()
    ROWS.append(("gc_pause_ms", collection["pause_ms"], "ms", 5,
                 f"a full garbage collection in a running paper engine (what its start built, "
                 f"{collection['frozen']:,} objects, is frozen)"))
    http = gateway.measure()
    ROWS.append(("gateway_p50_ms", http["gateway_p50_ms"], "ms", round(1.5 * http["bare_fastapi_p50_ms"], 2),
                 "POST /v1/orders dry run with a bot token over loopback; target 1.5 x bare FastAPI"))
    ROWS.append(("bare_fastapi_p50_ms", http["bare_fastapi_p50_ms"], "ms", None, "bare FastAPI, same body, same client, same run"))
    sig = signing.measure()
    third = sig["sdk_order_path_p50_us"] / 3
    ROWS.append(("order_path_p50_us", sig["order_path_p50_us"], "µs", 300,
                 "gate + order wire + fast signature + JSON body; also <= SDK/3 = "
                 f"{third:.1f} ({'met' if sig['order_path_p50_us'] <= third else 'MISSED'})"))
    ROWS.append(("sdk_order_path_p50_us", sig["sdk_order_path_p50_us"], "µs", None,
                 "the SDK's Exchange.order for the same order, to the JSON payload; same run"))
    ROWS.append(("signatures_identical", 1.0 if sig["signatures_identical"] else 0.0, "bool", -1,
                 "1,000 random orders: fast signature == the SDK's, byte for byte"))
    stop = stops.stop_placement_p99_ms()
    ROWS.append(("stop_placement_p99_ms", stop["p99_ms"], "ms", 50,
                 f"fill event -> venue stop acknowledged, strict fake over loopback (p50 {stop['p50_ms']:.1f} ms)"))
    orders = hl.order_paths()
    ROWS.append(("hl_order_p50_ms", orders["hl_order_p50_ms"], "ms",
                 round(1.5 * orders["direct_order_p50_ms"] + 0.5, 2),
                 "SDK resting order through /hl/exchange to the strict fake; target 1.5 x direct + 0.5 ms"))
    ROWS.append(("direct_order_p50_ms", orders["direct_order_p50_ms"], "ms", None,
                 "the same SDK order straight to the strict fake, same run, interleaved"))
    ROWS.append(("signer_recover_us", hl.signer_recover_us(), "µs", None,
                 "the signer of one SDK-signed order: action hash, EIP-712 digest, one key recovery"))
    cpu = console.measure_console_cpu()
    ROWS.append(("console_cpu_share", cpu["console_cpu_share"], "core", 0.25, "console, 200 positions, marks 10x a second"))
    ROWS.append(("console_idle_cpu_share", cpu["console_idle_cpu_share"], "core", 0.03, "console, no updates"))

    print(f"perpguard bench on {platform.python_implementation()} {platform.python_version()}, {platform.machine()}")
    print(f"{'figure':<24}{'value':>12}  {'unit':<6}{'target':>10}  note")
    for key, value, unit, target, note in ROWS:
        met = target is None or (value <= target if target > 0 else value >= -target)
        verdict = "" if target is None else ("  ok" if met else "  MISSED")
        goal = "" if target is None else (f"<= {target}" if target > 0 else f">= {-target}")
        print(f"{key:<24}{value:>12.2f}  {unit:<6}{goal:>10}  {note}{verdict}")
    out = Path(__file__).parent / "results.json"
    out.write_text(json.dumps({key: value for key, value, *_ in ROWS}, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
