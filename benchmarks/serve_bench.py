"""Serving benchmark: the server's latency (p50/p95/p99) and throughput at several concurrency levels, over REST and
gRPC, for short (one sentence) and long (full review) inputs, against the same SavedModel called in-process.

    python -m benchmarks.serve_bench                                  # the toy model, built on the fly
    python -m benchmarks.serve_bench --model_base_path serving_model/bert_imdb --duration 8

Every request carries one input: a sentence (``short``) or a full movie review of 340-370 BERT word pieces (``long``,
more than any exported ``max_seq_length``, so the model always fills its longest sequence). For each protocol x input x
concurrency level (``--concurrency 1 8 32``) the server runs with batching on (``max_batch_size`` = the highest level);
with batching off only the highest level is measured, for short inputs (``--no_batching_off`` skips it). The
in-process reference runs the model layer directly: one input per call, one call after another (latency), and batches
of the highest concurrency level in one call (throughput: the limit the server approaches).

Loops are bounded by ``--duration`` and ``--max_requests`` and only talk to 127.0.0.1. Client and server share this
machine's cores, so server figures include the client's CPU cost. Every model the benchmark serves must have the
pipeline's ``serving_default`` signature (a ``text`` input); the toy model is the tests' double
(``tests/doubles/toy_model.py``). Prints a table, writes
``benchmarks/results/serve.json`` (headline keys at the top; ``..._c32`` means the highest concurrency level measured,
``headline_concurrency``) and a latency-vs-concurrency plot next to it (``benchmarks/plots.py``).
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from benchmarks.common import RESULTS_DIR, print_table, write_result

if TYPE_CHECKING:
    from model_server.model import ServableModel

SIGNATURE = "serving_default"  # the pipeline's serving contract (pipeline_modules/features.py)
TEXT_INPUT = "text"

SENTENCES = [
    "A wonderful film with a great cast.",
    "The plot was boring and the acting was awful.",
    "I loved every minute of it.",
    "Not the worst movie I have seen, but close.",
    "An excellent, moving story that stays with you.",
    "Dull, predictable and far too long.",
    "The soundtrack is brilliant and the photography superb.",
    "I wanted to like it, but it was a waste of time.",
]

# Eight full-length reviews (about 300 words, 340-370 word pieces each), alternately positive and negative.
REVIEWS = [
    # 1 positive
    "I went into The Lighthouse Keeper's Daughter expecting a slow, handsome period piece and came out having seen "
    "one of the most quietly devastating films of the year. The story is simple enough: a widowed keeper on a rocky "
    "island off the Scottish coast raises his teenage daughter alone, and when a shipwrecked sailor washes up on "
    "their shore the fragile balance of their small world begins to shift. What makes it remarkable is the "
    "patience of the direction. Scenes are allowed to breathe, and the camera lingers on faces long enough that "
    "you start to read every flicker of doubt and tenderness in them. The lead actress, who I had never seen "
    "before, gives a performance of astonishing control; she says very little, but you always know exactly what "
    "she is thinking, and the moment she finally raises her voice at her father is more shocking than any "
    "explosion in a summer blockbuster. The father is played with gruff warmth and a buried sadness that slowly "
    "rises to the surface, and the sailor is charming without ever becoming a cliche. The cinematography is "
    "gorgeous: grey seas, wet stone, lamplight on weathered wood, and a storm sequence in the second act that is "
    "genuinely frightening. The score is sparse, mostly a lone cello, and it never tells you how to feel. If I "
    "have a complaint it is that the final ten minutes tie things up a little too neatly, and one subplot about a "
    "letter from the mainland goes nowhere. But these are small flaws in a film that trusts its audience, respects "
    "its characters and earns every one of its tears. I saw it with a friend who usually hates anything without "
    "car chases, and she was crying by the end. Highly recommended, ideally on the biggest screen you can find, "
    "with the phone switched off and nothing else planned for the evening.",
    # 2 negative
    "There is a decent thirty minute film buried somewhere inside Quantum Vendetta, but you have to sit through "
    "two and a half hours of noise, shaky camera work and recycled dialogue to find it. The premise sounds fun on "
    "paper: a disgraced physicist discovers that her former employer is using a prototype time machine to rig "
    "stock markets, and she teams up with a cynical bounty hunter to stop them. Unfortunately the script has no "
    "idea what to do with its own ideas. The rules of time travel change from scene to scene whenever the plot "
    "needs a way out of a corner, characters die and come back without any emotional weight, and the villain's "
    "plan makes less sense the more he explains it, which he does at great length, twice. The action scenes are "
    "edited so frantically that I could not tell who was hitting whom, and the special effects look unfinished, "
    "with green screen edges visible around the actors in the big rooftop finale. The lead is a talented actress "
    "who has been excellent elsewhere, but here she is stuck delivering lines like 'time is the one thing we "
    "cannot afford to waste' with a straight face, and you can almost see her wondering how she ended up here. "
    "Her co-star mumbles through every scene as if he is reading the script for the first time. There is no "
    "chemistry between them, yet the film insists on a romance that arrives out of nowhere in the third act. The "
    "soundtrack is a wall of pounding drums that never lets up, so even the quiet scenes feel exhausting. I kept "
    "checking my watch, and when the post credits scene promised a sequel, several people in my screening "
    "actually groaned out loud. Save your money and your evening; rewatch a classic time travel film instead.",
    # 3 positive
    "Comedies this sharp are rare, and Bread and Circuses is the funniest film I have seen in years. It follows a "
    "struggling family bakery in a small Italian town that accidentally becomes famous after a food critic mistakes "
    "a burnt loaf for an avant-garde masterpiece. What follows is a wonderfully escalating farce as the family "
    "tries to reproduce a mistake they do not understand, while tourists, investors and a suspicious health "
    "inspector descend on their tiny shop. The writing is smart and generous. Every character, even the ones who "
    "appear for a single scene, gets at least one great line, and the jokes land because they come out of who "
    "these people are rather than from pop culture references that will date in a year. The grandmother, played "
    "by a veteran stage actress, steals every scene she is in with a deadpan delivery that had my whole row "
    "laughing so hard we missed the next joke. The younger brother's doomed attempts to run the bakery's social "
    "media account are a running gag that pays off beautifully in the final act. Beneath the laughs there is a "
    "real warmth about family, pride and the fear of being found out as a fraud, and the film handles its "
    "sentimental moments with a light touch so they never become syrupy. The direction is brisk, the town looks "
    "sun-drenched and inviting, and the music, a mix of old Italian pop songs and a playful original score, keeps "
    "the energy high. It is not perfect; a subplot about a rival bakery feels a little underdeveloped, and one "
    "slapstick sequence in a flour warehouse goes on slightly too long. But I left the cinema grinning, hungry and "
    "already planning to see it again with my parents. A delightful, big-hearted comedy that deserves a large "
    "audience and will probably become a favourite to rewatch over the holidays.",
    # 4 negative
    "I am a big fan of the original novel, so I was excited when I heard that The Winter Orchard was finally being "
    "adapted. What a disappointment. The filmmakers have taken a rich, layered story about three generations of "
    "women running a failing apple farm and turned it into a dull, shapeless melodrama that somehow manages to be "
    "both rushed and boring. Entire characters from the book are missing, and the ones who remain have been "
    "flattened into types: the stern mother, the rebellious daughter, the wise grandmother who speaks only in "
    "proverbs. The screenplay skips the slow build of resentment that made the novel so powerful, so when the big "
    "confrontations happen they feel unearned and shrill. Worse, the film invents a ridiculous new subplot about a "
    "developer who wants to buy the land, complete with a villainous businessman who might as well twirl his "
    "moustache. The performances are uneven. The grandmother is played with real dignity, and she is the only "
    "reason I did not walk out, but the daughter's performance is all sulking and shouting, and the mother seems "
    "to be acting in a different, much gloomier film. The pacing is a mess: the first hour drifts along with "
    "endless shots of frosty branches and people staring out of windows, then the last twenty minutes cram in a "
    "fire, a funeral, a wedding and a reconciliation as if the editors had suddenly noticed the running time. The "
    "dialogue is painfully on the nose, with characters explaining their feelings to each other in complete "
    "paragraphs. Even the photography, which should have been the easy part given the setting, is murky and flat. "
    "Fans of the book will be frustrated, and newcomers will wonder why anyone loved this story in the first "
    "place. Read the novel instead; it is a far better use of two hours.",
    # 5 positive
    "Documentaries about climbing usually rely on spectacular footage to carry them, and Thin Air certainly has "
    "that, but what makes it extraordinary is how honest it is about the people behind the ropes. The film follows "
    "a small team attempting a new route on a remote Himalayan peak, and the director, who climbed with them, "
    "captures not only the beauty and terror of the mountain but the arguments, the exhaustion and the quiet "
    "moments of doubt in the tent at night. The climbers are articulate and funny, and the film lets them be "
    "contradictory: brave and selfish, reckless and careful, devoted to each other and secretly competitive. One "
    "of the most moving sequences has nothing to do with climbing at all; it is a phone call home from base camp "
    "in which the youngest member of the team tries to explain to his mother why he keeps going back. The "
    "mountain footage is breathtaking, shot with small cameras strapped to helmets and packs, and the sound design "
    "puts you right on the ice, every crunch of crampons and howl of wind. The editing is superb, building tension "
    "through the summit push so effectively that I was gripping my armrest even though I knew how the story "
    "ended. The film also takes time to acknowledge the local porters and guides whose work makes such expeditions "
    "possible, which too many climbing films ignore. A few interview segments in the middle slow the momentum, and "
    "I would have liked to hear more from the one woman on the team, who is clearly the most experienced climber "
    "but gets less screen time than the men. Still, this is a gripping, thoughtful and beautifully made film that "
    "will stay with you long after the credits. Even if you have never worn a harness, you should see it.",
    # 6 negative
    "Midnight at the Grand Hotel wants to be a clever murder mystery in the tradition of the great country house "
    "whodunits, but it is a tedious, self-satisfied mess that mistakes a large cast for a good story. A famous "
    "novelist is found dead in a snowbound luxury hotel, and a retired detective staying there for his "
    "anniversary reluctantly takes the case. So far, so familiar, and there is nothing wrong with a familiar setup "
    "if the puzzle is good. This one is not. The clues are either painfully obvious or withheld from the audience "
    "entirely, so the final reveal, delivered in a twenty minute monologue in the ballroom, feels like a cheat "
    "rather than a satisfying click. The suspects are a parade of cliches, the jealous young wife, the bitter "
    "business partner, the mysterious foreign countess, and none of them is given enough time to become a real "
    "person. The film tries to make up for this with constant quirky touches, whimsical music, characters "
    "breaking the fourth wall, a running joke about the hotel's terrible soup, but the humour is forced and most "
    "of the jokes fall flat. The detective is played by an actor I usually enjoy, but here he is saddled with an "
    "absurd accent and a collection of tics that quickly become irritating. The production design is lavish, all "
    "velvet and chandeliers, and I will admit the hotel looks wonderful, but a beautiful set cannot disguise the "
    "fact that nothing interesting happens in it. At nearly two and a half hours the film is at least forty "
    "minutes too long, with a pointless flashback sequence in the middle that adds nothing except running time. "
    "By the end I did not care who the killer was; I just wanted to leave. A waste of a talented cast and a "
    "promising premise.",
    # 7 positive
    "Animated films aimed at children rarely make me cry, but Paper Lanterns had me reaching for tissues twice "
    "before the halfway point. It tells the story of a shy girl who moves with her father to a new city after her "
    "mother's death and discovers that the paper lanterns she folds at night come to life and carry her wishes "
    "across the rooftops. It sounds whimsical, and it is, but the film is also a remarkably honest portrait of "
    "grief and of a parent and child struggling to talk to each other. The animation is stunning, a mix of "
    "hand-drawn backgrounds and softly glowing computer animation that makes every night scene look like a "
    "painting come to life. The flight through the lantern festival in the middle of the film is one of the most "
    "beautiful sequences I have seen in any animated feature. The voice cast is excellent, especially the young "
    "actress playing the girl, who never sounds like a cute cartoon character but like a real, sometimes sullen, "
    "sometimes funny child. The father's quiet, tired voice performance is heartbreaking in its restraint. The "
    "screenplay is careful not to talk down to its audience; it trusts children to understand sadness and trusts "
    "adults to enjoy the humour, which includes a grumpy pigeon who gets all the best lines. The songs are "
    "lovely and, mercifully, there are only three of them. The pacing sags a little in the third act, when an "
    "unnecessary villain appears to give the story a conventional climax, and younger viewers may find a couple "
    "of scenes frightening. But overall this is a tender, gorgeous and wise film that the whole family can share. "
    "My eight year old asked to fold paper lanterns the moment we got home, and honestly, so did I.",
    # 8 negative
    "I really wanted to like Steel Horizon. The trailers promised a serious, grounded war drama about a tank crew "
    "in the final months of the war, and the cast is full of actors I admire. Instead, the film is a confused, "
    "overlong and oddly hollow experience that never decides what it wants to say. The opening battle is "
    "impressive, loud and chaotic and genuinely tense, and for about twenty minutes I thought we were in for "
    "something special. Then the story stalls. The crew drives from one village to another, meets a series of "
    "characters who deliver speeches about the meaning of war, and then drives on. None of these encounters "
    "builds on the last, so the film feels like a collection of deleted scenes rather than a story. The "
    "characters inside the tank are barely sketched: we learn that one has a girlfriend back home, one is "
    "religious, one is angry, and that is about all. When some of them die in the final battle, it is hard to "
    "feel much beyond a vague sense that we are supposed to be moved. The dialogue is stiff and full of "
    "anachronisms, and the director's habit of cutting to slow motion shots of ash falling whenever something "
    "important happens becomes unintentionally funny by the third time. Technically the film is competent, with "
    "solid sound design and convincing period detail, but the grey colour grading makes every scene look the same, "
    "and the night battles are so dark that I honestly could not see what was happening. The score swells "
    "constantly, trying to supply the emotion that the script fails to create. There are far better war films "
    "about the same period, several of them made decades ago on a fraction of this budget. This one is "
    "forgettable and, for long stretches, simply boring.",
]

INPUTS: dict[str, list[str]] = {"short": SENTENCES, "long": REVIEWS}
PROTOCOLS = ("rest", "grpc")


# --- measurement -----------------------------------------------------------------------------------------------------


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    k = (len(ordered) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def _ms(seconds: float) -> float | None:
    return None if math.isnan(seconds) else round(seconds * 1000, 3)


def closed_loop(
    make_call: Callable[[], Callable[[int], int]], concurrency: int, duration: float, max_requests: int, warmup: int = 3
) -> dict:
    """``concurrency`` threads, each with its own client, send requests back to back until the time or count
    budget is spent. A call returns how many instances it scored. Latencies of failed calls are not counted."""
    counter = itertools.count()
    latencies: list[list[float]] = [[] for _ in range(concurrency)]
    instances = [0] * concurrency
    errors: list[str] = []
    warm = threading.Barrier(concurrency + 1)
    go = threading.Event()
    window: dict[str, float] = {}

    def worker(i: int) -> None:
        call = make_call()
        try:
            for j in range(warmup):
                call(i + j * concurrency)
        except Exception as exc:  # noqa: BLE001 - reported with the phase
            errors.append("warm-up: " + repr(exc)[:200])
        warm.wait()
        go.wait()
        end = window["end"]
        while time.perf_counter() < end:
            n = next(counter)
            if n >= max_requests:
                break
            start = time.perf_counter()
            try:
                instances[i] += call(n)
            except Exception as exc:  # noqa: BLE001 - counted and reported, the run goes on
                errors.append(repr(exc)[:200])
                continue
            latencies[i].append(time.perf_counter() - start)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(concurrency)]
    for t in threads:
        t.start()
    warm.wait()  # every client is connected and warm
    begin = time.perf_counter()
    window["end"] = begin + duration
    go.set()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - begin
    flat = [x for per in latencies for x in per]
    return {
        "concurrency": concurrency,
        "requests": len(flat),
        "instances": sum(instances),
        "errors": len(errors),
        "first_errors": errors[:3],
        "seconds": round(elapsed, 3),
        "throughput_rps": round(len(flat) / elapsed, 2),
        "instances_per_s": round(sum(instances) / elapsed, 2),
        "p50_ms": _ms(_percentile(flat, 0.50)),
        "p95_ms": _ms(_percentile(flat, 0.95)),
        "p99_ms": _ms(_percentile(flat, 0.99)),
        "mean_ms": round(statistics.fmean(flat) * 1000, 3) if flat else None,
    }


# --- clients ---------------------------------------------------------------------------------------------------------


def rest_call_factory(url: str, model: str, texts: Sequence[str]) -> Callable[[], Callable[[int], int]]:
    from model_server.client import RestClient

    bodies = [json.dumps({"instances": [s]}).encode() for s in texts]
    path = f"/v1/models/{model}:predict"

    def make() -> Callable[[int], int]:
        client = RestClient(url, timeout=120)

        def call(n: int) -> int:
            status, _, data = client.request("POST", path, bodies[n % len(bodies)])
            if status != 200:
                raise RuntimeError(f"HTTP {status}: {data[:100]!r}")
            return 1

        return call

    return make


def grpc_call_factory(target: str, model: str, texts: Sequence[str]) -> Callable[[], Callable[[int], int]]:
    from model_server.client import GrpcClient

    def make() -> Callable[[int], int]:
        client = GrpcClient(target, timeout=120)
        requests = [client.predict_request(model, {TEXT_INPUT: [s.encode()]}, SIGNATURE) for s in texts]

        def call(n: int) -> int:
            client.prediction.Predict(requests[n % len(requests)], timeout=120)
            return 1

        return call

    return make


def in_process_factory(model: ServableModel, texts: Sequence[str], batch: int) -> Callable[[], Callable[[int], int]]:
    import numpy as np

    def make() -> Callable[[int], int]:
        inputs = []
        for k in range(len(texts)):
            arr = np.empty(batch, dtype=object)
            arr[:] = [texts[(k + j) % len(texts)].encode() for j in range(batch)]
            inputs.append({TEXT_INPUT: arr})

        def call(n: int) -> int:
            model.predict(SIGNATURE, inputs[n % len(inputs)])
            return batch

        return call

    return make


# --- the run ---------------------------------------------------------------------------------------------------------


def run_server_phases(
    args: argparse.Namespace, base_path: str, batching: bool, workdir: str, plan: Sequence[tuple[str, int]]
) -> dict[str, object]:
    """Start a server, measure each (input, concurrency) of ``plan`` over both protocols, stop it.

    Returns ``{protocol: {input: {"c<n>": stats}}, "metrics_excerpt": [...], "server_exit_code": int}``."""
    from model_server.process import start_server

    top = max(args.concurrency)
    extra = [
        "--access_log_path=",
        f"--file_system_poll_wait_seconds={args.poll_seconds}",
        f"--max_instances_per_request={max(1024, top)}",
    ]
    if batching:
        params = Path(workdir) / "batching.txt"
        params.write_text(
            f"max_batch_size {{ value: {top} }}\n"
            f"batch_timeout_micros {{ value: {args.batch_timeout_micros} }}\n"
            f"max_enqueued_batches {{ value: 1000 }}\n"
            + (f"num_batch_threads {{ value: {args.num_batch_threads} }}\n" if args.num_batch_threads else "")
        )
        extra += ["--enable_batching", f"--batching_parameters_file={params}"]
    server = start_server(
        model_name=args.model_name,
        model_base_path=base_path,
        extra_args=extra,
        log_path=str(Path(workdir) / f"server-batching-{batching}.log"),
    )
    phases: dict[str, object] = {}
    try:
        server.wait_for_model(args.model_name, timeout=args.load_timeout)
        for protocol in PROTOCOLS:
            per_input: dict[str, dict[str, dict]] = {}
            for kind, concurrency in plan:
                texts = INPUTS[kind]
                factory = (
                    rest_call_factory(server.rest_url, args.model_name, texts)
                    if protocol == "rest"
                    else grpc_call_factory(server.grpc_target, args.model_name, texts)
                )
                stats = closed_loop(factory, concurrency, args.duration, args.max_requests, args.warmup_requests)
                per_input.setdefault(kind, {})[f"c{concurrency}"] = stats
                print(
                    f"  batching {'on ' if batching else 'off'} {protocol:4s} {kind:5s} c{concurrency:<3d} "
                    f"p50 {_fmt(stats['p50_ms'])} ms, {stats['instances_per_s']:.1f} inst/s, "
                    f"{stats['errors']} errors",
                    flush=True,
                )
            phases[protocol] = per_input
        with server.rest_client() as rest:
            phases["metrics_excerpt"] = [
                line
                for line in rest.metrics_text().splitlines()
                if line.startswith(("model_server_batch_size_sum", "model_server_batch_size_count"))
            ]
    finally:
        code = server.stop()
    phases["server_exit_code"] = code
    return phases


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def _get(tree: dict, *keys: str) -> dict | None:
    for key in keys:
        if not isinstance(tree, dict) or key not in tree:
            return None
        tree = tree[key]
    return tree


def headline(in_process: dict, server: dict, top: int) -> dict[str, object]:
    """The issue's top-level figures. ``_c32`` stands for the highest concurrency level measured (``top``)."""
    c_top = f"c{top}"
    limit = _get(in_process, "short", f"batch{top}")
    best_protocol, best = None, None
    for protocol in PROTOCOLS:
        stats = _get(server, "batching_on", protocol, "short", c_top)
        if stats and (best is None or stats["instances_per_s"] > best["instances_per_s"]):
            best_protocol, best = protocol, stats
    short_c1 = _get(server, "batching_on", "rest", "short", "c1")
    long_top = _get(server, "batching_on", "rest", "long", c_top)
    in_process_eps = limit["instances_per_s"] if limit else None
    server_eps = best["instances_per_s"] if best else None
    return {
        "in_process_examples_per_s": in_process_eps,
        "server_examples_per_s_c32": server_eps,
        "server_examples_per_s_c32_protocol": best_protocol,
        "server_vs_in_process_c32": round(server_eps / in_process_eps, 3) if in_process_eps and server_eps else None,
        "p50_ms_short_c1": short_c1["p50_ms"] if short_c1 else None,
        "p99_ms_long_c32": long_top["p99_ms"] if long_top else None,
        "headline_concurrency": top,
        "headline_note": (
            f"_c32 keys are at concurrency {top} (the highest level measured) with batching on, "
            f"in-process batch = {top}; throughput and p50 use short inputs, p99_ms_long_c32 long ones (REST)"
        ),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model_base_path", default="", help="served model (default: build the toy model)")
    p.add_argument("--model_name", default="sentiment")
    p.add_argument("--duration", type=float, default=5.0, help="seconds per measured phase")
    p.add_argument("--max_requests", type=int, default=20_000, help="request cap per measured phase")
    p.add_argument("--warmup_requests", type=int, default=3, help="unmeasured requests per client before a phase")
    p.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 32], help="concurrency levels")
    p.add_argument("--inputs", nargs="+", choices=sorted(INPUTS), default=["short", "long"], help="input kinds")
    p.add_argument("--no_batching_off", action="store_true", help="skip the batching-off server (short, top level)")
    p.add_argument(
        "--toy_work_layers",
        type=int,
        default=0,
        help="toy model only: dense layers of per-instance work, to mimic an encoder's cost",
    )
    p.add_argument("--batch_timeout_micros", type=int, default=0)
    p.add_argument("--num_batch_threads", type=int, default=0)
    p.add_argument("--poll_seconds", type=float, default=30.0)
    p.add_argument("--load_timeout", type=float, default=600.0)
    p.add_argument("--output", default=str(RESULTS_DIR / "serve.json"))
    p.add_argument(
        "--plot_output",
        default="",
        help="latency-vs-concurrency PNG (default: next to --output, latency-vs-concurrency.png for serve.json, "
        "<output stem>-latency-vs-concurrency.png otherwise)",
    )
    p.add_argument("--no_plot", action="store_true", help="do not draw the plot")
    args = p.parse_args(argv)
    if any(c < 1 for c in args.concurrency):
        p.error("--concurrency levels must be positive")
    args.concurrency = sorted(set(args.concurrency))
    kinds = [k for k in INPUTS if k in args.inputs]  # canonical order, no duplicates
    top = max(args.concurrency)

    from model_server.model import ServableModel, import_op_libraries
    from model_server.repository import list_versions
    from tests.doubles.toy_model import build_toy_model

    workdir = tempfile.mkdtemp(prefix="serve_bench-")
    base_path = args.model_base_path
    model_kind = "given"
    if not base_path:
        base_path = os.path.join(workdir, args.model_name)
        build_toy_model(os.path.join(base_path, "1"), work_layers=args.toy_work_layers)
        model_kind = "toy keyword model (tests/doubles/toy_model.py)"
        if args.toy_work_layers:
            model_kind += f" with {args.toy_work_layers} dense 768-wide layers of work per instance"
    versions = list_versions(base_path)
    if not versions:
        p.error(f"no integer version directory under {base_path}")
    version = max(versions)

    print(
        f"model: {base_path} (version {version}); {args.duration:g}s per phase, inputs {' '.join(kinds)}, "
        f"concurrency {' '.join(map(str, args.concurrency))}",
        flush=True,
    )
    import_op_libraries()  # as the server does: the pipeline's models tokenize with TF Text ops
    model = ServableModel(args.model_name, version, versions[version])
    model.load(warmup=True, warmup_batch_sizes=(1, top))
    in_process: dict[str, dict] = {}
    for kind in kinds:
        texts = INPUTS[kind]
        in_process[kind] = {
            "c1_batch1": closed_loop(
                in_process_factory(model, texts, 1), 1, args.duration, args.max_requests, args.warmup_requests
            ),
            f"batch{top}": closed_loop(
                in_process_factory(model, texts, top), 1, args.duration, args.max_requests, args.warmup_requests
            ),
        }
        print(f"  in-process {kind} done", flush=True)
    model.unload()

    server: dict[str, dict] = {
        "batching_on": run_server_phases(
            args, base_path, True, workdir, [(kind, c) for kind in kinds for c in args.concurrency]
        )
    }
    if not args.no_batching_off and "short" in kinds:
        server["batching_off"] = run_server_phases(args, base_path, False, workdir, [("short", top)])

    c_top = f"c{top}"
    ratios = {}
    for mode, phases in server.items():
        for protocol in PROTOCOLS:
            for kind, levels in phases[protocol].items():
                if c_top in levels:
                    limit = in_process[kind][f"batch{top}"]["instances_per_s"]
                    ratios[f"{mode}_{protocol}_{kind}_{c_top}_vs_in_process_batched"] = (
                        round(levels[c_top]["instances_per_s"] / limit, 3) if limit else None
                    )

    rows = []
    for kind in kinds:
        for key, stats in in_process[kind].items():
            label = "c1" if key == "c1_batch1" else f"batch {top}"
            rows.append(["in-process", "-", kind, label, *_row(stats), None])
    for mode, phases in server.items():
        for protocol in PROTOCOLS:
            for kind, levels in phases[protocol].items():
                for level, stats in levels.items():
                    ratio = (
                        ratios.get(f"{mode}_{protocol}_{kind}_{level}_vs_in_process_batched")
                        if level == c_top
                        else None
                    )
                    rows.append([protocol, mode.split("_")[1], kind, level, *_row(stats), ratio])
    print()
    print_table(
        [
            "path",
            "batching",
            "input",
            "conc.",
            "requests",
            "p50 ms",
            "p95 ms",
            "p99 ms",
            "mean ms",
            "inst/s",
            "errors",
            "vs limit",
        ],
        rows,
    )
    print(
        f"\n(in-process: c1 = one input per call; batch {top} = {top} inputs in one call, the limit the server "
        f"approaches; vs limit = server inst/s / in-process batch {top} inst/s for the same input)"
    )

    payload = {
        **headline(in_process, server, top),
        "settings": {
            "model_base_path": args.model_base_path or "(toy model built on the fly)",
            "model": model_kind,
            "version": version,
            "duration_s": args.duration,
            "max_requests": args.max_requests,
            "warmup_requests_per_client": args.warmup_requests,
            "concurrency": args.concurrency,
            "inputs": {
                kind: {
                    "texts": len(INPUTS[kind]),
                    "mean_words": round(statistics.fmean(len(t.split()) for t in INPUTS[kind]), 1),
                }
                for kind in kinds
            },
            "batching_off_measured": "batching_off" in server,
            "batch_timeout_micros": args.batch_timeout_micros,
            "num_batch_threads": args.num_batch_threads or os.cpu_count(),
            "max_batch_size": top,
            "request": "one input (a sentence or a full review) per request",
            "client": "Python threads on the same machine (model_server.client), one client per thread",
        },
        "in_process": in_process,
        "server": server,
        "ratios": ratios,
    }
    out = write_result("serve", payload, args.output)
    print(f"wrote {out}")
    if not args.no_plot:
        from benchmarks.plots import plot_latency_vs_concurrency

        png = Path(args.plot_output) if args.plot_output else _default_plot_path(out)
        print(f"wrote {plot_latency_vs_concurrency(out, png)}")
    shutil.rmtree(workdir, ignore_errors=True)  # the toy model and server logs; kept when a phase raised
    return 0


def _row(stats: dict) -> list:
    return [
        stats["requests"],
        _fmt(stats["p50_ms"]),
        _fmt(stats["p95_ms"]),
        _fmt(stats["p99_ms"]),
        _fmt(stats["mean_ms"]),
        f"{stats['instances_per_s']:.1f}",
        stats["errors"],
    ]


def _default_plot_path(output: Path) -> Path:
    name = "latency-vs-concurrency.png"
    return output.with_name(name if output.stem == "serve" else f"{output.stem}-{name}")


if __name__ == "__main__":
    sys.exit(main())
